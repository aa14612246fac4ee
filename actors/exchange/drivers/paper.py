"""Paper trading: a simulated spot venue and a ccxt-style client for it.

`PaperVenue` is the exchange (shared, thread-safe, optionally persistent);
`PaperExchange` is a client with the sync ccxt method signatures, so the
daemon can drive the venue exactly as it drives a real exchange, with
optional injected faults (latency, transient errors, ambiguous timeouts,
rejections, an outage window) and, if asked, binance's request limits.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ccxt.base.errors import (
    ExchangeNotAvailable,
    InvalidOrder,
    NetworkError,
    RequestTimeout,
)

import venue.rules as rules
from venue.book import PaperVenue
from venue.limits import VenueLimiter
from venue.weights import (
    ACCOUNT,
    ALL_ORDERS,
    EXCHANGE_INFO,
    MY_TRADES,
    OPEN_ORDERS,
    ORDER_CANCEL,
    ORDER_GET,
    ORDER_NEW,
    TICKER_24HR,
    Endpoint,
    weight_of,
)

__all__ = ["PaperExchange", "PaperFaults", "PaperVenue"]

LOCAL_ADDRESS = "in-process"
"""The client address the limits count in-process requests under (all clients share it)."""

# Transient failures cycle through these, so callers meet every kind.
_TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    RequestTimeout,
    ExchangeNotAvailable,
    NetworkError,
)


@dataclass(frozen=True)
class PaperFaults:
    """Faults a PaperExchange injects, deterministically for a given seed and clock."""

    latency_ms: float = 0
    """Delay before each request, spent outside the venue lock."""
    error_rate: float = 0
    """Chance a request fails with a transient error before it reaches the venue."""
    ambiguous_rate: float = 0
    """Chance a create_order is booked but the caller gets RequestTimeout anyway."""
    reject_rate: float = 0
    """Chance a create_order is refused with InvalidOrder without being booked."""
    outage_after_s: float | None = None
    """Seconds after the client's creation when an outage begins (None: never)."""
    outage_duration_s: float = 0
    """Length of the outage; every request in it raises ExchangeNotAvailable."""
    outage_file: str | None = None
    """An absolute path: while a file is there, the same outage holds (one a test or a
    drill starts and ends when it chooses, by creating and removing the file)."""
    seed: int = 0
    """Seed of the client's own fault RNG."""

    def __post_init__(self) -> None:
        """ValueError('field: why') for a value out of range; the config loader puts the
        section's key in front."""
        for name in ("error_rate", "ambiguous_rate", "reject_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name}: must be from 0 to 1")
        for name in ("latency_ms", "outage_duration_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must not be negative")
        if self.outage_file is not None and not os.path.isabs(self.outage_file):
            raise ValueError("outage_file: must be an absolute path")


def _decimal(value: Any, name: str) -> Decimal:
    """Amounts and prices arrive as float, int, str or Decimal; str() keeps 0.1 exact."""
    if isinstance(value, bool) or value is None:
        raise InvalidOrder(f"paper: {name} must be a number, got {value!r}")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise InvalidOrder(f"paper: {name} must be a number, got {value!r}") from None
    if not result.is_finite():
        raise InvalidOrder(f"paper: {name} must be finite, got {value!r}")
    return result


class PaperExchange:
    """A ccxt-style client of a PaperVenue, for one account; use one per thread.

    Mirrors the sync `ccxt.Exchange` signatures the daemon uses. Faults are
    applied around the venue call; the venue lock is only held for the book
    work, never during simulated latency. With a `limiter` (shared by the clients
    of one exchange entry) each call is charged binance's weight for the request
    ccxt would send; a refusal raises what ccxt's binance raises (DDoSProtection,
    for 429 and 418 alike) and, as ccxt does, `last_response_headers` holds the
    answer's headers (`Retry-After`, `X-MBX-USED-WEIGHT-1M`, order counts). A `meter`
    (see actors/exchange/metering.py) is told of each request, with that weight, before
    it goes out, and of its answer.
    """

    id = "paper"
    name = "Paper"

    def __init__(
        self,
        venue: PaperVenue,
        *,
        account: str = "default",
        faults: PaperFaults | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        started: float | None = None,
        limiter: VenueLimiter | None = None,
    ) -> None:
        self.venue = venue
        self.limiter = limiter
        if limiter is not None:  # binance's unfilled order count: a first fill gives back
            venue.on_first_fill = limiter.filled
        self.meter: Any = None
        """Told of each request and its answer (the daemon's request budget), if set."""
        self.last_response_headers: dict[str, str] = {}
        self.account = account
        self.faults = faults if faults is not None else PaperFaults()
        self.markets: dict[str, Any] = {}
        self.symbols: list[str] = []
        self._sleep = sleep
        self._clock = clock
        # outage windows count from here: the daemon's start, not this client's
        self._started = clock() if started is None else started
        self._rng = random.Random(self.faults.seed)
        self._transient_count = 0
        # Clients are meant for one thread, but a shared one must not corrupt its RNG.
        self._fault_lock = threading.Lock()

    # -- ccxt methods ----------------------------------------------------------

    def load_markets(self, reload: bool = False) -> dict[str, Any]:
        if self.markets and not reload:
            return self.markets  # cached, as ccxt does: no request
        self._request(EXCHANGE_INFO)
        self.markets = self.venue.markets()
        self.symbols = sorted(self.markets)
        return self.markets

    def set_markets_from_exchange(self, source: PaperExchange) -> PaperExchange:
        self.markets, self.symbols = source.markets, source.symbols
        return self

    def create_order(
        self,
        symbol: str,
        type: str,
        side: str,
        amount: Any,
        price: Any = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        params = params or {}
        self._request(ORDER_NEW)
        if self._chance(self.faults.reject_rate):
            raise InvalidOrder("rejected by venue (simulated)")
        order = self.venue.create_order(
            self.account,
            symbol,
            str(type).lower(),
            str(side).lower(),
            _decimal(amount, "amount"),
            None if price is None else _decimal(price, "price"),
            client_order_id=params.get("clientOrderId"),
            time_in_force=str(params.get("timeInForce", "GTC")).upper(),
            post_only=params.get("postOnly") is True,
        )
        if self._chance(self.faults.ambiguous_rate):
            # Booked, but the reply is "lost": the caller cannot tell it landed.
            raise RequestTimeout("paper POST /order timed out (simulated)")
        return order

    def fetch_order(
        self, id: str | None, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self._request(ORDER_GET)
        client_order_id = (params or {}).get("clientOrderId")
        return self.venue.fetch_order(
            self.account, id, client_order_id=client_order_id, symbol=symbol
        )

    def cancel_order(
        self, id: str | None, symbol: str | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        self._request(ORDER_CANCEL)
        client_order_id = (params or {}).get("clientOrderId")
        return self.venue.cancel_order(
            self.account, id, client_order_id=client_order_id, symbol=symbol
        )

    def fetch_open_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        self._request(OPEN_ORDERS, {"symbol": symbol} if symbol else None)
        return self.venue.open_orders(self.account, symbol, since, limit)

    def fetch_orders(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        self._request(ALL_ORDERS)
        return self.venue.orders(self.account, symbol, since, limit)

    def fetch_my_trades(
        self,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        self._request(MY_TRADES)
        from_id = (params or {}).get("fromId")  # binance's: trades from that id on
        if from_id is not None:
            return self.venue.my_trades(self.account, symbol, None, limit,
                                        from_id=rules.parse_id(str(from_id)))
        return self.venue.my_trades(self.account, symbol, since, limit)

    def fetch_order_trades(
        self,
        id: str,
        symbol: str | None = None,
        since: int | None = None,
        limit: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        self._request(MY_TRADES, {"orderId": str(id)})  # what ccxt's binance asks
        try:
            order_id = int(id)
        except (TypeError, ValueError):
            return []
        trades = self.venue.order_trades(self.account, order_id)
        from_id = (params or {}).get("fromId")  # binance's: from that trade id on
        if from_id is not None:
            trades = [t for t in trades if int(t["id"]) >= rules.parse_id(str(from_id))]
        return trades

    def fetch_balance(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._request(ACCOUNT)
        return self.venue.balance(self.account)

    def fetch_ticker(self, symbol: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._request(TICKER_24HR, {"symbol": symbol})
        return self.venue.ticker(symbol)

    # -- faults ------------------------------------------------------------------

    def in_outage(self) -> bool:
        """Whether the outage fault holds now: every request fails, and the user-data
        stream of the entry is down (see paper_stream)."""
        outage_file = self.faults.outage_file
        if outage_file is not None and os.path.exists(outage_file):
            return True
        outage_after_s = self.faults.outage_after_s
        if outage_after_s is None:
            return False
        begins = self._started + outage_after_s
        return begins <= self._clock() < begins + self.faults.outage_duration_s

    def _request(self, endpoint: Endpoint, params: dict[str, str] | None = None) -> None:
        """What every request goes through before the venue sees it."""
        meter, faults = self.meter, self.faults
        if meter is not None:
            meter.sending(f"{endpoint[0]} {endpoint[1]}", weight_of(*endpoint, params or {}),
                          endpoint[0])
        if faults.latency_ms > 0:
            self._sleep(faults.latency_ms / 1000)
        if self.in_outage():
            raise ExchangeNotAvailable("venue outage (simulated)")
        if self.limiter is not None:
            verdict = self.limiter.admit(LOCAL_ADDRESS, self.account, endpoint, params)
            self.last_response_headers = verdict.headers
            if meter is not None:
                refusal = verdict.refusal
                meter.answered(200 if refusal is None else refusal.status, verdict.headers,
                               None if refusal is None else refusal.code)
            if verdict.refusal is not None:
                raise verdict.error(self.id)
        elif meter is not None:
            meter.answered(200, None)
        if self._chance(faults.error_rate):
            with self._fault_lock:
                error = _TRANSIENT_ERRORS[self._transient_count % len(_TRANSIENT_ERRORS)]
                self._transient_count += 1
            raise error("paper request failed (simulated transient error)")

    def _chance(self, rate: float) -> bool:
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        with self._fault_lock:
            return self._rng.random() < rate
