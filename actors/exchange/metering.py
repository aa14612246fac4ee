"""Each request of a client through its exchange's RequestBudget.

A `Meter` belongs to one client (one worker thread). The client tells it of every
HTTP request just before it goes out (`sending`, with the request's weight) and of
every answer (`answered`, with its status and headers); the worker says what kind
of call comes next (`start`: creates and cancels have the reserve, lookups do not)
and that it is over (`finish`: a request left without an answer stays spent).

ccxt is hooked on the client instance, not guessed by method name: its `fetch2`
asks `calculate_rate_limiter_cost` for the cost of the endpoint being called (from
its API tables, binance's weight / 5) and passes it to `throttle`, which we make a
no-op (the budget decides instead); `on_rest_response` sees every answer's status
and headers before ccxt turns a 429 or 418 into DDoSProtection.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import ccxt

from actors.exchange.budget import NotSent, RequestBudget
from actors.exchange.limits import limits_of

ORDER_OPS = frozenset({"create", "cancel"})
"""Calls that never queue behind others (see ExchangeLink)."""
STREAM_OP = "stream"
"""The user-data stream's requests (connecting, subscribing, heartbeats)."""
RESERVED_OPS = ORDER_OPS | {STREAM_OP}
"""Calls that may use the reserved share of the weight: orders, and the stream, whose
loss would cost tracking's reads of every symbol, far more weight than it spends."""
WAIT_SLICE_S = 0.1
"""How long a waiting lookup sleeps before it asks the budget again."""
WEIGHT_PER_COST = {"binance": 5.0}
"""ccxt's cost of an endpoint times this is the exchange's request weight (binance's
tables give weight 1 a cost of 0.2: 6,000 a minute at its 50 ms rateLimit)."""
NO_HEADERS: Mapping[str, str] = {}


class Meter:
    """One client's requests through the budget of its exchange entry."""

    def __init__(self, budget: RequestBudget, sleep: Callable[[float], None] = time.sleep,
                 lookup_wait_s: float = 0.0) -> None:
        """`lookup_wait_s`: how long a lookup may wait for weight before it is given up
        (0 for a worker that also sends orders: they never queue behind it)."""
        self.budget = budget
        self._sleep = sleep
        self._lookup_wait_s = lookup_wait_s
        self._for_orders = False
        self._creating = False
        self._pending: tuple[float, float, bool] | None = None
        """(weight, when taken, new order) of the request awaiting its answer."""

    def start(self, op: str) -> None:
        """The next requests belong to a call of kind `op` (create, cancel, fetch, read,
        stream)."""
        self._for_orders = op in RESERVED_OPS
        self._creating = op == "create"

    def sending(self, endpoint: str, weight: float, method: str) -> None:
        """A request is about to go out; NotSent keeps it from going."""
        self._settle()
        new_order = self._creating and method == "POST"
        taken = self._take(endpoint, weight, new_order)
        self._pending = (weight, taken, new_order)

    def _take(self, endpoint: str, weight: float, new_order: bool) -> float:
        waited = 0.0
        while True:
            try:
                return self.budget.take(weight, self._for_orders, new_order, endpoint)
            except NotSent as refused:
                left = self._lookup_wait_s - waited
                if self._for_orders or refused.reason == "paused" or refused.retry_after_s > left:
                    self.budget.waited(refused.reason)
                    raise
                if waited == 0.0:
                    self.budget.waited(refused.reason)
                pause = min(WAIT_SLICE_S, refused.retry_after_s)
                self._sleep(pause)
                waited += pause

    def answered(self, status: int, headers: Mapping[str, str] | None,
                 code: int | None = None) -> None:
        """The answer to the request that went out last (`code`: its body's error code)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            weight, taken, new_order = pending
            self.budget.answered(weight, taken, new_order, status, headers or NO_HEADERS,
                                 code)

    def finish(self) -> None:
        """The call is over: a request that got no answer stays spent."""
        self._settle()
        self._for_orders = self._creating = False

    def _settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            self.budget.unanswered(*pending)


def attach(client: Any, meter: Meter) -> bool:
    """Route `client`'s requests through `meter`: a ccxt client is hooked, a client with a
    `meter` attribute (the paper venue's) is given it. False: the client has neither."""
    if isinstance(client, ccxt.Exchange):
        hook_ccxt(client, meter, WEIGHT_PER_COST.get(client.id, 1.0))
        return True
    if hasattr(client, "meter"):
        client.meter = meter
        return True
    return False


def hook_ccxt(client: Any, meter: Meter, weight_per_cost: float) -> None:
    """Make a ccxt client (sync, or asyncio as ccxt.pro's) ask `meter` before each
    request and tell it each answer."""
    # a client hooked before (an embedder's factory returning one client to each
    # configuration) is hooked anew from its own methods, not through the old meter
    originals = client.__dict__.setdefault(
        "_orderd_unhooked", (client.calculate_rate_limiter_cost, client.on_rest_response))
    cost_of, answer_of = originals
    apis: dict[str, Any] = client.urls.get("api") or {}
    labels: dict[tuple[str, str, str], str] = {}

    def calculate_rate_limiter_cost(api: Any, method: str, path: str, params: Any,
                                    config: Any = None) -> Any:
        cost = cost_of(api, method, path, params, config or {})
        name = api[0] if isinstance(api, list) and api else str(api)
        key = (name, method, path)
        label = labels.get(key)
        if label is None:
            label = labels[key] = endpoint_label(apis.get(name), method, path)
        meter.sending(label, round(float(cost) * weight_per_cost, 3), method)
        return cost

    def on_rest_response(code: Any, reason: Any, url: str, method: str, headers: Any,
                         body: Any, request_headers: Any, request_body: Any) -> Any:
        meter.answered(int(code), headers,
                       refusal_code(client, int(code), body, request_headers))
        if int(code) == 200 and urlsplit(url).path.endswith("/exchangeInfo"):
            learn_limits(meter.budget, body)
        return answer_of(code, reason, url, method, headers, body, request_headers,
                         request_body)

    async def go_now(cost: Any = None) -> None:
        return None

    client.calculate_rate_limiter_cost = calculate_rate_limiter_cost
    # the budget has decided when it goes; an asyncio client (ccxt.pro's) awaits it
    client.throttle = (go_now if inspect.iscoroutinefunction(client.throttle)
                       else lambda cost=None: None)
    client.on_rest_response = on_rest_response
    client.enableRateLimit = True  # else fetch2 asks no cost


def refusal_code(client: Any, status: int, body: Any, request_headers: Any) -> int | None:
    """The error code the budget needs of an answer: a 429's tells the order count
    (-1015) from the weight, as only the first holds nothing but new orders; a 401's
    tells a key disabled for a ban (-2015), but only for a request that carried the key,
    once the key has worked (ccxt's test too): before, it is a key that never was, and
    the exchange halts instead."""
    if status == 429:
        return error_code(body)
    if status == 401 and client.options.get("hasAlreadyAuthenticatedSuccessfully") and any(
            str(name).lower() == "x-mbx-apikey" for name in request_headers or {}):
        return error_code(body)
    return None


def error_code(body: Any) -> int | None:
    """The `code` of an error answer's body (binance: {"code": -1015, "msg": ...})."""
    try:
        found = json.loads(body).get("code")
    except (TypeError, ValueError, AttributeError):
        return None
    return found if isinstance(found, int) else None


def endpoint_label(base: Any, method: str, path: str) -> str:
    """`GET /api/v3/order`: the method and the URL path, as the exchange documents them."""
    prefix = urlsplit(base).path.rstrip("/") if isinstance(base, str) else ""
    return f"{method} {prefix}/{path}"


def learn_limits(budget: RequestBudget, body: Any) -> None:
    """The limits in an exchangeInfo answer's `rateLimits`, if it lists them. Only that
    array is parsed: the rest of the answer (every market) is ccxt's to read."""
    if not isinstance(body, str):
        return
    start = body.find('"rateLimits"')
    start = body.find("[", start) if start >= 0 else -1
    if start < 0:
        return
    try:
        rows, _end = json.JSONDecoder().raw_decode(body, start)
    except ValueError:
        return
    if isinstance(rows, list):
        budget.set_limits(limits_of([row for row in rows if isinstance(row, dict)]))
