"""OrderActor's messages: the client commands, the exchange's reports, ticks, stream
events and reconciliation's repairs; frozen records, dispatched by type in one place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actors.exchange.messages import ErrorInfo, OrderView, TradeView
from actors.runtime import Reply
from protocol.errors import ProtocolError
from protocol.messages import CancelAllArgs, ListArgs, OrderRef, OrderSpec, Wait

# --- the client commands ---------------------------------------------------

@dataclass(frozen=True, slots=True)
class Submit:
    """Place an order (the `submit` command)."""

    spec: OrderSpec
    """Validated spec, not yet normalized."""
    wait: Wait
    """accepted or durable."""
    reply: Reply
    """Receives `{"order": Order}` or an error."""


@dataclass(frozen=True, slots=True)
class GetStatus:
    """The `status` command."""

    ref: OrderRef
    """Which order."""
    reply: Reply
    """Receives `{"order": Order}` or an error."""


@dataclass(frozen=True, slots=True)
class Cancel:
    """The `cancel` command."""

    ref: OrderRef
    """Which order."""
    reply: Reply
    """Receives `{"order": Order}` or an error."""


@dataclass(frozen=True, slots=True)
class CancelAll:
    """The `cancel_all` command: every live order in scope is asked to cancel."""

    args: CancelAllArgs
    """The scope: an exchange, a symbol, both or neither (everything)."""
    reply: Reply
    """Receives `{"orders": [Order]}`, each as recorded once its cancel was asked."""


@dataclass(frozen=True, slots=True)
class ListOrders:
    """The `list` command."""

    args: ListArgs
    """Filters and paging."""
    reply: Reply
    """Receives `{"orders": [...], "next": cursor}`."""


@dataclass(frozen=True, slots=True)
class GetStats:
    """Tell: execution statistics to `reply`."""

    reply: Reply
    """Receives the statistics, or the error that kept them."""


@dataclass(frozen=True, slots=True)
class RecordHalt:
    """Tell: record the daemon's halt (or its end) in the ledger now; `reply` gets
    `{"state"}` once it is written."""

    reply: Reply
    """Receives the daemon's state, or the error that kept it from the ledger."""


# --- from the actor itself and the system ---------------------------------

@dataclass(frozen=True, slots=True)
class Flush:
    """Commit everything staged; sent by the actor to itself so a batch forms."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: expire waiting replies, refresh what is due."""

    now: float
    """Clock value when the tick was sent."""


@dataclass(frozen=True, slots=True)
class IsRecovered:
    """Ask: True once every order found unresolved at start is resolved."""


@dataclass(frozen=True, slots=True)
class Prices:
    """Last traded prices on one exchange (the reference for market orders' notional)."""

    exchange: str
    """Exchange name."""
    last: dict[str, Decimal]
    """Symbol -> last price."""


# --- from the exchange's workers and stream --------------------------------

@dataclass(frozen=True, slots=True)
class ExchangeReport:
    """The outcome of one exchange operation on one order."""

    client_order_id: str
    """Which order."""
    op: str
    """create, cancel or fetch."""
    outcome: str
    """ok, rejected (permanent), unknown (ambiguous) or failed (known not done)."""
    view: OrderView | None = None
    """The order as the exchange showed it, when it did."""
    error: ErrorInfo | None = None
    """Why, when not ok."""
    worker: str = ""
    """The ExchangeActor that did it."""
    sends: int = 0
    """Requests actually sent to the exchange (attempts)."""
    retries: int = 0
    """Of those, retries after a failure."""
    latency_s: float = 0.0
    """Time from the worker taking the request to its outcome."""
    trades: tuple[TradeView, ...] = ()
    """The order's trade records, when the exchange showed more filled than was counted."""
    more: bool = False
    """Another report of the same request follows (a create's verifying fetch): the
    worker is still busy with it."""
    source: str = ""
    """Where the view came from: create, lookup, cancel (that request's answer) or
    open_orders (the symbol's open orders, read for tracking)."""
    trades_source: str = "trades"
    """Where the trades came from: the create's answer (create) or the order's own trade
    records (trades)."""


@dataclass(frozen=True, slots=True)
class SymbolTracked:
    """What one look at a symbol's open orders found (the answer to TrackSymbol)."""

    exchange: str
    """Exchange name."""
    symbol: str
    """Market."""
    reports: tuple[ExchangeReport, ...]
    """One per tracked order: as the list shows it, or as the lookup of an order no
    longer in the list found it (its final state)."""
    error: ErrorInfo | None = None
    """Why the open orders could not be read (then there are no reports)."""


@dataclass(frozen=True, slots=True)
class StreamConnected:
    """Tell OrderActor: the exchange's stream is subscribed (again), or lost events;
    read every symbol with tracked orders now, then tell the health it is caught up."""

    exchange: str
    """Which exchange."""
    epoch: int
    """The connection this catch-up is for."""


@dataclass(frozen=True, slots=True)
class StreamEvents:
    """Tell OrderActor: what the stream showed, one report per event."""

    exchange: str
    """Which exchange."""
    reports: tuple[ExchangeReport, ...]
    """Each event as a lookup's report (source `stream`)."""


# --- from the reconciler ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class Repair:
    """One safe correction of the ledger from the exchange's records."""

    kind: str
    """adopt_view (status and fills of an order), adopt_trades, or adopt_order (an orphan)."""
    exchange: str
    """Which exchange."""
    client_order_id: str
    """Which order."""
    reason: str
    """The discrepancy it repairs, for the trail."""
    view: OrderView | None = None
    """The exchange's view of the order (adopt_view, adopt_order)."""
    trades: tuple[TradeView, ...] = ()
    """Trade records to count (adopt_trades)."""


@dataclass(frozen=True, slots=True)
class ApplyRepairs:
    """Apply repairs and store the exchange's trade cursors, in one commit."""

    run_id: str
    """The reconciliation run, recorded in each trail entry."""
    repairs: tuple[Repair, ...]
    """What to apply, in order."""
    cursors: tuple[tuple[str, str], ...]
    """(meta key, value) of each trade cursor to store (one per symbol read, and the
    run's), those that moved."""
    reply: Callable[[list[dict[str, Any]] | ProtocolError], None]
    """Receives one result per repair once committed."""
