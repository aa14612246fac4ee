"""ReconcilerActor's messages: runs, and discrepancies found outside them. (Its asks to
ExchangeActor are in actors/exchange/messages.py, its repairs in actors/order/messages.py.)"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
