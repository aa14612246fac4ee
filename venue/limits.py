"""binance's request limits for the paper venue: weight and order counts, 429 and 418
(each endpoint's weight: venue.weights).

binance counts request weight per client address in a calendar minute, raw
requests per address in 5 minutes, and new orders per account in 10 seconds
and per UTC day. Over a limit it answers 429 with `Retry-After`; a client that
sends anything before that time is up is banned (418) for 2 minutes, twice as
long for each ban after that, up to 3 days. The order count is the account's and
of new orders only: a new order over it is refused (429, -1015, with Retry-After
until the window ends, as binance's docs say since December 2025), and nothing
else is held, so a cancel or a lookup meanwhile is answered. Every answer carries
the used weight, order answers the order counts. The HTTP venue and the in-process
`PaperExchange` both ask one `VenueLimiter`; a limit of 0 is no limit.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from http import HTTPStatus
from typing import Any

from ccxt.base.errors import DDoSProtection

from venue.weights import DAY_S, ORDER_NEW, Endpoint, interval, span, weight_of

# ccxt's binance.py raises DDoSProtection for 418 and for 429 alike (its
# handle_errors looks at the status before the body's code).
FIRST_BAN_S = 120
MAX_BAN_S = 3 * 24 * 3600
LARGEST_LIMIT = 1_000_000_000
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-"
ORDER_HEADER = "X-MBX-ORDER-COUNT-"
AVOID_POLLING = "Please use WebSocket Streams for live updates to avoid polling the API."
TOO_MANY_ORDERS = -1015
WINDOW_RANGES = {"weight_window_s": (1, DAY_S), "orders_window_s": (1, DAY_S - 1)}
"""The lengths a window may have: the orders window is shorter than the day's, which
is counted apart."""


@dataclass(frozen=True)
class VenueLimits:
    """binance's limits (its defaults); 0 turns a limit off (the count goes on)."""

    weight_per_minute: int = 6000
    """Request weight per client address per weight window (REQUEST_WEIGHT 1 MINUTE)."""
    orders_per_10s: int = 100
    """New orders per account per orders window (ORDERS 10 SECOND)."""
    orders_per_day: int = 200_000
    """New orders per account per UTC day (ORDERS 1 DAY)."""
    raw_requests_per_5m: int = 61_000
    """Requests per client address per 5-minute window (RAW_REQUESTS 5 MINUTE)."""
    weight_window_s: int = 60
    """The weight's calendar window in seconds (binance's: a minute); tests shorten it."""
    orders_window_s: int = 10
    """The calendar window of `orders_per_10s` in seconds (binance's: 10 s); tests pick
    one that ends when they need it to. Shorter than the day, whose count is apart."""

    def __post_init__(self) -> None:
        """ValueError('field: why'); the config loader puts the section's key in front."""
        for item in fields(self):
            value = getattr(self, item.name)
            least, most = WINDOW_RANGES.get(item.name, (0, LARGEST_LIMIT))
            if (isinstance(value, bool) or not isinstance(value, int)
                    or not least <= value <= most):
                raise ValueError(f"{item.name}: must be a whole number from {least} to {most}")

    def rate_limits(self) -> list[dict[str, Any]]:
        """`exchangeInfo.rateLimits` as binance lists them (limits that are off left out)."""
        rows = (("REQUEST_WEIGHT", *interval(self.weight_window_s), self.weight_per_minute),
                ("ORDERS", *interval(self.orders_window_s), self.orders_per_10s),
                ("ORDERS", "DAY", 1, self.orders_per_day),
                ("RAW_REQUESTS", "MINUTE", 5, self.raw_requests_per_5m))
        return [{"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}
                for kind, interval, num, limit in rows if limit > 0]

    def changed(self, body: Mapping[str, Any]) -> VenueLimits:
        """These limits with the keys of a JSON object replaced; ValueError names a bad key."""
        known = {item.name for item in fields(self)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ValueError(f"unknown limits: {', '.join(unknown)}")
        return replace(self, **body)


class Window:
    """A count in fixed calendar windows: binance resets each at the window's end."""

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self.index = -1
        self.count = 0

    def _roll(self, now: float) -> None:
        index = math.floor(now / self.seconds)
        if index != self.index:
            self.index, self.count = index, 0

    def used(self, now: float) -> int:
        self._roll(now)
        return self.count

    def add(self, amount: int, now: float) -> int:
        self._roll(now)
        self.count += amount
        return self.count

    def take_back(self, amount: int, now: float) -> None:
        """Lower the current window's count, never below 0 (binance gives no credit)."""
        self._roll(now)
        self.count = max(0, self.count - amount)

    def ends(self, now: float) -> float:
        self._roll(now)
        return float((self.index + 1) * self.seconds)


@dataclass
class _Address:
    weight: Window
    requests: Window = field(default_factory=lambda: Window(300))
    not_before: float = 0.0
    """Until when a 429 told this address to wait."""
    banned_until: float = 0.0
    bans: int = 0
    weight_total: int = 0
    """Every weight counted since the start (or a reset), across windows."""
    http_429: int = 0
    http_418: int = 0


@dataclass
class _Account:
    orders: Window
    """The short ORDERS window, binance's 10 s (`orders_window_s`)."""
    orders_1d: Window = field(default_factory=lambda: Window(DAY_S))


@dataclass(frozen=True)
class Refusal:
    """A 429 or 418 answer."""

    status: int
    code: int
    msg: str
    retry_after_s: int
    """The Retry-After header: whole seconds until the client may send again."""

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


@dataclass(frozen=True)
class Verdict:
    """What the limits say about one request."""

    headers: dict[str, str]
    """The used weight (X-MBX-USED-WEIGHT-1M in binance's minute), on order answers the
    order counts, on a refusal Retry-After."""
    refusal: Refusal | None = None

    def error(self, exchange_id: str) -> DDoSProtection:
        """The exception ccxt's binance raises for this refusal (same message form)."""
        assert self.refusal is not None
        status = self.refusal.status
        return DDoSProtection(f"{exchange_id} {status} {HTTPStatus(status).phrase} "
                              f"{json.dumps(self.refusal.body())}")


def _seconds(wait: float) -> int:
    """A wait as Retry-After says it: whole seconds, at least 1."""
    return max(1, math.ceil(wait))


class VenueLimiter:
    """binance's limits over every client address and account of one venue. Thread-safe."""

    def __init__(self, limits: VenueLimits | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.limits = limits or VenueLimits()
        self._clock = clock
        self._lock = threading.Lock()
        self._addresses: dict[str, _Address] = {}
        self._accounts: dict[str, _Account] = {}

    def admit(self, address: str, account: str, endpoint: Endpoint,
              params: Mapping[str, str] | None = None) -> Verdict:
        """Count one request from `address` for `account`; its headers and any refusal."""
        weight = weight_of(*endpoint, params or {})
        placing = endpoint == ORDER_NEW
        with self._lock:
            now = self._clock()
            client = self._addresses.setdefault(
                address, _Address(Window(self.limits.weight_window_s)))
            refusal = self._banned(client, now) or self._count(client, account, weight,
                                                               placing, now)
            window = client.weight
            headers = {WEIGHT_HEADER + span(window.seconds): str(window.used(now))}
            if placing:
                orders = self._account(account)
                for window in (orders.orders, orders.orders_1d):
                    headers[ORDER_HEADER + span(window.seconds)] = str(window.used(now))
            if refusal is not None:
                headers["Retry-After"] = str(refusal.retry_after_s)
            return Verdict(headers, refusal)

    def _banned(self, client: _Address, now: float) -> Refusal | None:
        """418 while banned; a request before a 429's Retry-After is up earns a new ban."""
        if now >= client.banned_until and now < client.not_before:
            client.bans += 1
            client.banned_until = now + min(MAX_BAN_S, FIRST_BAN_S * 2 ** (client.bans - 1))
            client.not_before = 0.0
        if now >= client.banned_until:
            return None
        client.http_418 += 1
        until_ms = int(client.banned_until * 1000)
        return Refusal(418, -1003, f"Way too much request weight used; IP banned until "
                       f"{until_ms}. Please use WebSocket Streams for live updates to avoid "
                       "bans.", _seconds(client.banned_until - now))

    def _count(self, client: _Address, account: str, weight: int, placing: bool,
               now: float) -> Refusal | None:
        limits = self.limits
        used = client.weight.add(weight, now)
        client.weight_total += weight
        requests = client.requests.add(1, now)
        refusal: tuple[int, str, float] | None = None
        if limits.weight_per_minute and used > limits.weight_per_minute:
            unit, number = interval(client.weight.seconds)
            refusal = (-1003, f"Too much request weight used; current limit is "
                       f"{limits.weight_per_minute} request weight per {number} {unit}. "
                       + AVOID_POLLING, client.weight.ends(now))
        elif limits.raw_requests_per_5m and requests > limits.raw_requests_per_5m:
            refusal = (-1003, f"Too many requests; current limit is "
                       f"{limits.raw_requests_per_5m} requests per 5 MINUTE. "
                       + AVOID_POLLING, client.requests.ends(now))
        elif placing:
            refusal = self._place(self._account(account), now)
        if refusal is None:
            return None
        code, msg, until = refusal
        client.http_429 += 1
        if code != TOO_MANY_ORDERS:  # the address's limits; the order count holds new orders
            client.not_before = until
        return Refusal(429, code, msg, _seconds(until - now))

    def _place(self, orders: _Account, now: float) -> tuple[int, str, float] | None:
        """Count a new order, or refuse it (-1015) if a window of the account is full.
        The day is checked first: when both are full, the client waits for the later end."""
        for window, limit in ((orders.orders_1d, self.limits.orders_per_day),
                              (orders.orders, self.limits.orders_per_10s)):
            if limit and window.used(now) >= limit:
                unit, number = interval(window.seconds)
                return (TOO_MANY_ORDERS, f"Too many new orders; current limit is {limit} "
                        f"orders per {number} {unit}.", window.ends(now))
        orders.orders.add(1, now)
        orders.orders_1d.add(1, now)
        return None

    def filled(self, account: str) -> None:
        """An order of `account` filled for the first time: binance lowers the unfilled
        order count by one in every ORDERS window, the current one whenever the order
        was placed ("New order fills decrease your *current* unfilled order count"),
        never below 0. (It may lower it by more for a first fill as maker or a large
        one; its docs give no figure, so the venue takes one.)"""
        with self._lock:
            orders = self._accounts.get(account)
            if orders is None:
                return  # nothing counted since the start or a reset
            now = self._clock()
            orders.orders.take_back(1, now)
            orders.orders_1d.take_back(1, now)

    def order_counts(self, account: str) -> dict[int, int]:
        """The unfilled order count of `account` in each current order window, by its
        length in seconds (what `GET /api/v3/rateLimit/order` shows)."""
        with self._lock:
            orders = self._accounts.get(account) or self._new_account()
            now = self._clock()
            return {window.seconds: window.used(now)
                    for window in (orders.orders, orders.orders_1d)}

    def _account(self, account: str) -> _Account:
        """The counts of `account`, begun at 0 if it has none (under the lock)."""
        return self._accounts.setdefault(account, self._new_account())

    def _new_account(self) -> _Account:
        return _Account(Window(self.limits.orders_window_s))

    # -- operator view ----------------------------------------------------------------

    def configure(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a `POST /_venue/limits` object: limit keys, and `reset` to forget every
        count, 429 and ban. Checked in full before anything changes."""
        body = dict(body)
        reset = body.pop("reset", False)
        if not isinstance(reset, bool):
            raise ValueError("reset must be true or false")
        limits = self.limits.changed(body)
        with self._lock:
            if limits.weight_window_s != self.limits.weight_window_s:
                for client in self._addresses.values():  # a new length: a new window
                    client.weight = Window(limits.weight_window_s)
            if limits.orders_window_s != self.limits.orders_window_s:
                for orders in self._accounts.values():
                    orders.orders = Window(limits.orders_window_s)
            self.limits = limits
            if reset:
                self._addresses.clear()
                self._accounts.clear()
        return asdict(limits)

    def rate_limits(self) -> list[dict[str, Any]]:
        return self.limits.rate_limits()

    def usage(self) -> dict[str, Any]:
        """`GET /_venue/usage`: the limits, what each address and account used in the
        current windows, 429s and 418s answered, and bans."""
        with self._lock:
            now = self._clock()
            addresses = {name: {
                f"weight_{span(client.weight.seconds).lower()}": client.weight.used(now),
                "weight_total": client.weight_total,
                "raw_requests_5m": client.requests.used(now),
                "http_429": client.http_429, "http_418": client.http_418,
                "bans": client.bans,
                "banned_for_s": max(0, math.ceil(client.banned_until - now)),
            } for name, client in self._addresses.items()}
            accounts = {name: {f"orders_{span(window.seconds).lower()}": window.used(now)
                               for window in (orders.orders, orders.orders_1d)}
                        for name, orders in self._accounts.items()}
            return {"limits": asdict(self.limits), "addresses": addresses,
                    "accounts": accounts,
                    "http_429": sum(a["http_429"] for a in addresses.values()),
                    "http_418": sum(a["http_418"] for a in addresses.values())}


LIMIT_ROUTES = ("/_venue/usage", "/_venue/limits")


def limits_route(limiter: VenueLimiter, method: str, path: str,
                 body: Any) -> tuple[int, Any]:
    """The operator routes of the limits: `GET /_venue/usage`, `GET|POST /_venue/limits`."""
    if (method, path) == ("GET", "/_venue/usage"):
        return 200, limiter.usage()
    if (method, path) == ("GET", "/_venue/limits"):
        return 200, asdict(limiter.limits)
    if (method, path) != ("POST", "/_venue/limits") or not isinstance(body, dict):
        return 404, {"error": f"no route {method} {path} (POST routes take a JSON object)"}
    try:
        return 200, limiter.configure(body)
    except (TypeError, ValueError) as exc:
        return 400, {"error": str(exc)}
