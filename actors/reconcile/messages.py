"""Messages of reconciliation: asks to ExchangeActor, repairs to OrderActor, runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.messages import OrderTicket, OrderView, TradeView
from protocol.errors import ProtocolError

# --- asks to ExchangeActor (answered with data, or the exchange's exception) ---


@dataclass(frozen=True, slots=True)
class FetchOpenOrders:
    """Ask: every open order of the account, as OrderViews."""


@dataclass(frozen=True, slots=True)
class FetchTrades:
    """Ask: one symbol's trades, oldest first, as a TradePage: from the trade id
    `from_id` on where the exchange pages by id, else from `since`."""

    symbol: str
    """Market (binance lists trades one symbol at a time)."""
    since: int | None
    """Exchange time in milliseconds (inclusive), used when `from_id` is not."""
    from_id: str | None
    """The first trade id to list, where the exchange pages by id."""
    limit: int
    """Page size."""


@dataclass(frozen=True, slots=True)
class TradePage:
    """The answer to FetchTrades."""

    trades: tuple[TradeView, ...]
    """The trades listed."""
    by_id: bool
    """The exchange pages by trade id: the next page can start at an id."""


@dataclass(frozen=True, slots=True)
class LookupOrder:
    """Ask: one order by id (or client id), as an OrderView."""

    ticket: OrderTicket
    """Which order."""


# --- to OrderActor --------------------------------------------------------------


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


# --- to ReconcilerActor -----------------------------------------------------------

RECONCILER = "reconciler"
"""ReconcilerActor's registry name (here, so OrderActor can tell it without a cycle)."""


@dataclass(frozen=True, slots=True)
class RecordDiscrepancy:
    """A discrepancy OrderActor found outside a run (an overfill): appended to the
    reports as an entry of its own, and counted."""

    exchange: str
    """Which exchange."""
    entry: dict[str, Any]
    """One discrepancy, as a run lists it (kind, client_order_id, ledger, exchange, ...)."""


@dataclass(frozen=True, slots=True)
class RunReconciliation:
    """Run one reconciliation now; runs queue behind each other, never overlap."""

    exchange: str | None = None
    """One exchange, or all when None."""
    reply: Callable[[Any], None] | None = None
    """Receives `{"report": ...}`; the handler also returns the report (for ask)."""
