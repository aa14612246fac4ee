"""The ledger's grouped commit: any number of orders and fills in one transaction."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from actors.ledger import Ledger
from actors.messages import TradeView
from actors.sqlite_rows import MAX_ROWS
from tests.recon_support import ledger_order

MANY = 2 * MAX_ROWS + 7  # more than one statement's worth, and not a multiple of it


def test_a_group_larger_than_one_statement_is_written_and_updated_whole(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    for i in range(MANY):
        ledger.stage(ledger_order(f"od-{i:04d}", order_id=f"x{i}"))
    assert ledger.commit() == MANY
    for i in range(0, MANY, 2):
        ledger.stage(ledger_order(f"od-{i:04d}", order_id=f"x{i}", status="canceled"))
    ledger.commit()
    ledger.close()

    reopened = Ledger(tmp_path / "ledger.sqlite")
    assert reopened.count() == MANY
    assert reopened.counts_by_status() == {"canceled": (MANY + 1) // 2, "open": MANY // 2}
    last = reopened.get(f"od-{MANY - 1:04d}")
    assert last is not None and last.order_id == f"x{MANY - 1}"
    reopened.close()


def test_a_trade_staged_twice_in_one_group_is_counted_once_with_its_later_fee(
        tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.stage(ledger_order("od-f", order_id="x1", status="filled", filled="0.02"))

    def trade(trade_id: str, fee: str) -> TradeView:
        return TradeView(trade_id, "x1", "od-f", Decimal("0.01"), Decimal("1000"),
                         Decimal(fee), "USD", 1_700_000_000_000)

    for i in range(MANY):
        ledger.stage_fill("paper", "od-f", trade(f"t{i}", "0.1"))
    ledger.stage_fill("paper", "od-f", trade("t0", "0.2"))  # a fee correction
    ledger.commit()

    fills = ledger.fills_of("paper", "od-f")
    assert len(fills) == MANY
    assert fills["t0"].fee_cost == Decimal("0.2") and fills["t1"].fee_cost == Decimal("0.1")
    ledger.close()
