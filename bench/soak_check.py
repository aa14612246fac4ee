"""The soak's verdict: the ledger (through the daemon) against the venue's book.

An order acknowledged by the daemon must be in its ledger, and on the venue when the
ledger says it got there; no client order id may be placed twice; nothing may fill
past its amount or past what the venue filled; nothing may stay unresolved once the
faults stop; and the venue may hold no order the ledger does not account for.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from protocol.client import OrderdClient

UNSETTLED = ["pending_submit", "unknown", "pending_cancel"]
VENUE_STATUS = {"NEW": "open", "PARTIALLY_FILLED": "partially_filled", "FILLED": "filled",
                "CANCELED": "canceled", "EXPIRED": "expired", "REJECTED": "rejected"}


def settle(client: OrderdClient, timeout_s: float) -> float | None:
    """Seconds until no order waits for its outcome (None: some still do at the end)."""
    began = time.monotonic()
    pause = threading.Event()
    while time.monotonic() - began < timeout_s:
        if not client.list(status=UNSETTLED, limit=1)["orders"]:
            return time.monotonic() - began
        pause.wait(0.2)
    return None


def ledger_orders(client: OrderdClient) -> dict[str, dict[str, Any]]:
    """Every order of the ledger, by client order id (`list`, page by page)."""
    orders: dict[str, dict[str, Any]] = {}
    after = None
    while True:
        page = client.list(limit=1000, after=after)
        orders.update((o["client_order_id"], o) for o in page["orders"])
        after = page.get("next")
        if not after or not page["orders"]:
            return orders


@dataclass
class Verdict:
    lost: list[str] = field(default_factory=list)
    """Acked, but absent from the ledger, or from the venue while the ledger has its id."""
    duplicated: list[str] = field(default_factory=list)
    """More than one venue order for one client order id."""
    overfilled: list[str] = field(default_factory=list)
    """Filled beyond the amount, or beyond what the venue filled."""
    unresolved: list[str] = field(default_factory=list)
    """Still pending_submit, unknown or pending_cancel at the end."""
    ghosts: list[str] = field(default_factory=list)
    """On the venue, but unknown to the ledger, or under another id, or marked unsent."""
    disagree: list[str] = field(default_factory=list)
    """Final on both sides but with another status (informational)."""
    statuses: Counter[str] = field(default_factory=Counter)
    expired_unsent: int = 0
    """Acked orders that expired without reaching the venue (their send deadline passed)."""


def judge(acked: set[str], ledger: dict[str, dict[str, Any]],
          venue: list[dict[str, Any]]) -> Verdict:
    verdict = Verdict()
    on_venue: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for placed in venue:
        on_venue[placed["clientOrderId"]].append(placed)
    verdict.duplicated = sorted(cid for cid, placed in on_venue.items() if len(placed) > 1)
    for cid in sorted(acked):
        order = ledger.get(cid)
        if order is None or (order["order_id"] is not None and not on_venue.get(cid)):
            verdict.lost.append(cid)
        elif order["status"] == "expired" and (order["last_error"] or {}).get(
                "code") == "not_sent":
            verdict.expired_unsent += 1
    for cid, order in sorted(ledger.items()):
        verdict.statuses[order["status"]] += 1
        if order["status"] in UNSETTLED:
            verdict.unresolved.append(cid)
        if Decimal(order["filled"]) > Decimal(order["amount"]):
            verdict.overfilled.append(cid)
    for cid in sorted(on_venue):
        check_placed(verdict, ledger.get(cid), on_venue[cid])
    return verdict


def check_placed(verdict: Verdict, order: dict[str, Any] | None,
                 placed: list[dict[str, Any]]) -> None:
    """One client order id's venue orders against its ledger record."""
    cid = placed[0]["clientOrderId"]
    ids = {str(p["orderId"]) for p in placed}
    if order is None or order["order_id"] not in ids:
        verdict.ghosts.append(cid)
        return
    mine = next(p for p in placed if str(p["orderId"]) == order["order_id"])
    executed = Decimal(mine["executedQty"])
    beyond = executed > Decimal(mine["origQty"]) or Decimal(order["filled"]) > executed
    if beyond and cid not in verdict.overfilled:
        verdict.overfilled.append(cid)
    status = VENUE_STATUS.get(mine["status"], mine["status"])
    final = ("filled", "canceled", "expired", "rejected")
    if status != order["status"] and (status in final or order["status"] in final):
        verdict.disagree.append(f"{cid} ledger {order['status']} venue {status}")
