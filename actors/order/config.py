"""The sections OrderActor is built from: `[orders]`, `[tracking]` and each
exchange's `[exchanges.risk]` (daemon/wiring.py turns them into its settings)."""

from __future__ import annotations

import re
from dataclasses import dataclass

CLIENT_ID_PREFIX = re.compile(r"[A-Za-z0-9_-]{0,8}")


@dataclass(frozen=True)
class OrdersConfig:
    """[orders]: how orders are handled."""

    accept_timeout_s: float = 5.0
    """The submit deadline for wait=accepted and the cancel deadline."""
    client_id_prefix: str = "od-"
    """Prefix of the client order ids the daemon makes."""
    send_deadline_s: float = 30.0
    """An order not sent within this long of its submission expires instead."""
    max_backlog: int = 2000
    """Orders sent to one exchange's workers whose create is not yet answered, from which
    on a new submit to it is answered `rate_limited` rather than left to expire unsent.
    Kept below OrderActor's window of recently finished orders (4096), so the late
    verification of an order that filled at once finds it in memory, not in the ledger."""
    start_halted: bool = False
    """Start halted (recorded like any halt): submits wait for `resume`."""

    def check(self) -> None:
        if not 0.01 <= self.accept_timeout_s <= 300:
            raise ValueError("accept_timeout_s: must be from 0.01 to 300")
        if not CLIENT_ID_PREFIX.fullmatch(self.client_id_prefix):
            raise ValueError("client_id_prefix: up to 8 of [A-Za-z0-9_-]")
        if self.send_deadline_s < self.accept_timeout_s:
            raise ValueError("send_deadline_s: must be at least accept_timeout_s")
        if self.max_backlog < 1:
            raise ValueError("max_backlog: must be at least 1")


@dataclass(frozen=True)
class TrackingConfig:
    """[tracking]: how often open orders are looked up until they are terminal."""

    interval_s: float = 2.0
    young_interval_s: float = 0.5
    young_age_s: float = 60.0
    stream: bool = True
    """Listen to each exchange's user-data stream where its driver has one (binance,
    paper)."""
    safety_interval_s: float = 60.0
    """How often a symbol is read while its exchange's stream is live."""
    stream_stale_s: float = 10.0
    """A stream with no event and no heartbeat for this long is stale: tracking takes
    over at its normal pace, and the stream is connected again."""

    def check(self) -> None:
        for name in ("interval_s", "young_interval_s", "safety_interval_s",
                     "stream_stale_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be greater than 0")
        if self.young_age_s < 0:
            raise ValueError("young_age_s: must not be negative")


@dataclass(frozen=True)
class RiskConfig:
    """[exchanges.risk]: limits checked before an order is recorded or sent; 0 is no limit."""

    max_order_notional: float = 0.0
    """Largest amount x price of one order, in the quote currency."""
    max_open_orders: int = 0
    """Most orders not yet terminal on this exchange."""
    max_open_orders_per_symbol: int = 0
    """Most orders not yet terminal on one market."""
    symbols: tuple[str, ...] = ()
    """The only markets that may be traded; empty allows all."""
    client_submit_rate_per_s: float = 0.0
    """Submits per second one client may send to this exchange."""
    client_submit_burst: int = 0
    """Submits one client may send at once; 0 means max(1, the rate)."""

    def check(self) -> None:
        for name in ("max_order_notional", "max_open_orders", "max_open_orders_per_symbol",
                     "client_submit_rate_per_s", "client_submit_burst"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must not be negative")
        for symbol in self.symbols:
            if not re.fullmatch(r"[A-Za-z0-9]+/[A-Za-z0-9]+", symbol):
                raise ValueError(f"symbols: {symbol!r} is not BASE/QUOTE")
