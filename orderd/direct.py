"""Direct calls to one exchange account for BasicOrderExecutor: one client, one request
at a time, retried as the retry policy and the error table allow. An exchange's error
is classified here, where it enters, and goes on as CallFailed with its rule.

Every request goes through the account's RequestBudget, as the daemon's workers' do
(see actors/exchange/budget.py): it is kept back while the exchange's limits would
refuse it, and after a 429 or 418 nothing goes out until its Retry-After (or the ban)
is over. binance bans an address that sends before then, for longer each time."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Callable
from typing import Any

from actors.exchange.budget import NotSent, RequestBudget
from actors.exchange.client import ExchangeClient, balances_of, view_of
from actors.exchange.drivers.ccxt_driver import lookup_params, signing_params
from actors.exchange.errors import classify
from actors.exchange.failure import REFUSED, CallFailed
from actors.exchange.link import NOT_SENT, Attempts, header_retry_after, wait_after
from actors.exchange.messages import ErrorInfo, OrderView
from actors.exchange.metering import Meter, attach
from actors.exchange.order_params import ParamRefused, create_params
from actors.exchange.retry import RetryPolicy
from actors.orders import Order
from actors.runtime import Clock
from orderd.accounts import Placement
from protocol.errors import ProtocolError

Request = Callable[[ExchangeClient], Any]


class DirectExchange:
    """One exchange client used from worker threads, never two requests at once
    (a ccxt instance is not thread-safe)."""

    def __init__(self, name: str, client: ExchangeClient, policy: RetryPolicy,
                 rng: random.Random, requests: RequestBudget, clock: Clock,
                 placement: Placement) -> None:
        """`requests`: the account's request budget, which the client's requests go
        through; a client it cannot hook (an embedder's) only waits out a Retry-After.
        `clock` signs the creates; `placement` says where the entry's orders are (see
        orderd.accounts)."""
        self.name = name
        self.placement = placement
        self.clock = clock
        self.client = client
        self.policy = policy
        self.rng = rng
        self.requests = requests
        # no waiting for weight, as in the daemon's order workers: orders share this
        # client and must not queue behind a lookup that waits
        meter = Meter(requests)
        self._meter = meter if attach(client, meter) else None
        self._retry_after = header_retry_after(client)
        self._lock = threading.Lock()
        self._markets: dict[str, Any] | None = None

    async def call(self, op: str, request: Request, attempts: Attempts) -> Any:
        """The request's result, sent again after full-jitter backoff while the policy
        allows (an ambiguous create never is); CallFailed with the last error otherwise.
        A 429 or 418 is not sent again: the caller is told how long to wait instead, as
        the daemon's workers do."""
        while True:
            attempts.sends += 1
            try:
                return await asyncio.to_thread(self._locked, op, request)
            except NotSent as exc:  # the budget kept it back: nothing reached the exchange
                attempts.sends -= 1
                raise CallFailed(exc, NOT_SENT, attempts.sends, attempts.retries,
                                 exc.retry_after_s) from exc
            except Exception as exc:
                rule = classify(exc)
                retry_after, paused = wait_after(self._retry_after(exc), self.requests, op)
                if paused or not self.policy.allows(op, exc, rule, attempts.retries):
                    raise CallFailed(exc, rule, attempts.sends, attempts.retries,
                                     retry_after) from exc
                attempts.retries += 1
                await asyncio.sleep(self.policy.delay(attempts.retries, self.rng, retry_after))

    def _locked(self, op: str, request: Request) -> Any:
        with self._lock:
            meter = self._meter
            if meter is None:
                return request(self.client)
            meter.start(op)
            try:
                return request(self.client)
            finally:
                meter.finish()

    async def markets(self, attempts: Attempts) -> dict[str, Any]:
        """The exchange's markets, loaded once."""
        if self._markets is None:
            self._markets = dict(await self.call("read", lambda c: c.load_markets(), attempts))
        return self._markets

    async def create(self, order: Order, attempts: Attempts) -> OrderView:
        """Send the order; refused (a rejection, not sent) when its params are not its
        driver's. Each send is signed anew with a time recorded as the order's
        `signed_at`: the exchange may book it until that time's window is over, and
        an unclear outcome is resolved no sooner (see landing_deadline)."""
        try:
            params = create_params(self.client.id, order.client_order_id, order)
        except ParamRefused as exc:
            raise CallFailed(exc, REFUSED, attempts.sends, attempts.retries, None) from exc
        amount = float(order.amount)
        price = None if order.price is None else float(order.price)

        def send(client: ExchangeClient) -> Any:
            # set on a worker thread while the order's task awaits it: nothing else
            # writes the field meanwhile
            order.signed_at = self.clock.now()
            signed = {**params, **signing_params(client.id, order.signed_at)}
            return client.create_order(order.symbol, order.type, order.side, amount,
                                       price, signed)

        return self._view(await self.call("create", send, attempts))

    async def fetch(self, order: Order, attempts: Attempts) -> OrderView:
        """The order as the exchange shows it, found by its id or else our client id."""
        params = self._lookup(order)
        raw = await self.call("fetch", lambda c: c.fetch_order(
            order.order_id, order.symbol, params), attempts)
        return self._view(raw)

    async def cancel(self, order: Order, attempts: Attempts) -> OrderView:
        params = self._lookup(order)
        raw = await self.call("cancel", lambda c: c.cancel_order(
            order.order_id, order.symbol, params), attempts)
        return self._view(raw)

    async def open_orders(self, attempts: Attempts) -> list[OrderView]:
        raw = await self.call("read", lambda c: c.fetch_open_orders(), attempts)
        return [self._view(item) for item in raw]

    async def balances(self, attempts: Attempts) -> dict[str, dict[str, str | None]]:
        return balances_of(await self.call("read", lambda c: c.fetch_balance(), attempts))

    def _lookup(self, order: Order) -> dict[str, Any]:
        if order.order_id is not None:
            return {}
        return lookup_params(self.client.id, order.client_order_id)

    def _view(self, raw: dict[str, Any]) -> OrderView:
        return view_of(raw, (self._markets or {}).get(str(raw.get("symbol"))))


def wait_for(error: ErrorInfo, default_s: float) -> float:
    """How long the caller should wait before asking again: after a rate limit, the
    exchange's Retry-After or ban, or the budget's window (asking sooner earns a 418),
    else `default_s`."""
    if error.code == "rate_limited" and error.retry_after_s is not None:
        return round(error.retry_after_s, 3)
    return default_s


def try_later(message: str, error: ErrorInfo, default_s: float) -> ProtocolError:
    """`rate_limited` or `exchange_unavailable`, with how long to wait."""
    code = "rate_limited" if error.code == "rate_limited" else "exchange_unavailable"
    return ProtocolError(code, message, retry_after_s=wait_for(error, default_s))
