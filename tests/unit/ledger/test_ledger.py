"""The ledger's grouped commit: any number of orders and fills in one transaction, and
event numbers that never repeat across restarts."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal
from enum import StrEnum
from pathlib import Path

import pytest

from actors.exchange.messages import TradeView
from actors.ledger.reader import LedgerReader
from actors.ledger.sqlite_rows import MAX_ROWS
from actors.ledger.store import SCHEMA, Ledger
from actors.order.batch import Batch
from protocol.messages import OrderStatus, OrderType, Side, TimeInForce
from tests.recon_support import ledger_order


def counts_by_status(folder: Path) -> dict[str, int]:
    reader = LedgerReader(folder / "ledger.sqlite")
    try:
        return reader.counts_by_status()
    finally:
        reader.close()

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
    assert counts_by_status(tmp_path) == {"canceled": (MANY + 1) // 2, "open": MANY // 2}
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


def test_commits_with_and_without_the_disk_read_back_at_once_and_after_a_restart(
        tmp_path: Path) -> None:
    """Commits that wait for the disk and those that do not go through connections of
    their own: every read sees the latest of both, in the order they were made."""
    ledger = Ledger(tmp_path / "ledger.sqlite")

    def trade(trade_id: str) -> TradeView:
        return TradeView(trade_id, "x1", "od-a", Decimal("0.01"), Decimal("1000"),
                         Decimal("0.1"), "USD", 1_700_000_000_000)

    steps = [("pending_submit", True, None), ("partially_filled", False, "t1"),
             ("pending_cancel", True, None), ("filled", False, "t2")]
    for status, sync, trade_id in steps:
        ledger.stage(ledger_order("od-a", order_id="x1", status=status, amount="0.02"))
        if trade_id is not None:
            ledger.stage_fill("paper", "od-a", trade(trade_id))
        ledger.commit(sync=sync)
        read = ledger.get("od-a")
        assert read is not None and read.status == status
    assert set(ledger.fills_of("paper", "od-a")) == {"t1", "t2"}
    ledger.close()

    reopened = Ledger(tmp_path / "ledger.sqlite")
    assert counts_by_status(tmp_path) == {"filled": 1}
    assert set(reopened.fills_of("paper", "od-a")) == {"t1", "t2"}
    reopened.close()


class Published:
    """An event sink keeping the event numbers published."""

    def __init__(self) -> None:
        self.seqs: list[int] = []

    def publish(self, frames: list[bytes]) -> None:
        self.seqs.append(json.loads(frames[1])["seq"])


def _publish_orders(path: Path, cids: list[str]) -> tuple[Ledger, Batch, Published]:
    ledger, events = Ledger(path), Published()
    batch = Batch(ledger, events)
    for cid in cids:
        batch.stage(ledger_order(cid, status="pending_submit", price=None))
        batch.flush()
    return ledger, batch, events


def test_event_numbers_continue_after_a_clean_stop(tmp_path: Path) -> None:
    ledger, batch, first = _publish_orders(tmp_path / "ledger.sqlite", ["a", "b"])
    batch.close()
    ledger.close()
    ledger, _batch, second = _publish_orders(tmp_path / "ledger.sqlite", ["c"])
    ledger.close()
    assert first.seqs + second.seqs == [1, 2, 3]


def test_event_numbers_are_never_reused_after_a_crash(tmp_path: Path) -> None:
    """Without a clean stop the next run starts above the durable bound: a gap, never
    a number a subscriber has already seen for another event."""
    ledger, _batch, first = _publish_orders(tmp_path / "ledger.sqlite", ["a", "b"])
    ledger.close()  # no Batch.close: the process died
    ledger, _batch, second = _publish_orders(tmp_path / "ledger.sqlite", ["c", "d"])
    ledger.close()
    assert first.seqs == [1, 2]
    assert second.seqs[0] > first.seqs[-1] + 1 and second.seqs[1] == second.seqs[0] + 1


class RecordingLedger(Ledger):
    """A ledger that records whether each commit waited for the disk, and can fail one."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.syncs: list[bool] = []
        self.fail_next = False

    def commit(self, sync: bool = True) -> int:
        if self.fail_next:
            self.fail_next = False
            raise sqlite3.OperationalError("disk I/O error")
        self.syncs.append(sync)
        return super().commit(sync)


def test_only_intents_rejections_and_new_event_bounds_wait_for_the_disk(tmp_path: Path) -> None:
    ledger = RecordingLedger(tmp_path / "ledger.sqlite")
    batch = Batch(ledger, Published())
    for status in ("pending_submit", "open", "pending_cancel", "filled", "rejected", "canceled"):
        batch.stage(ledger_order(f"od-{status}", status=status), publish=False)
        batch.flush()
    batch.stage(ledger_order("od-first-event", status="open"))  # the first event: a new bound
    batch.flush()
    batch.stage(ledger_order("od-next-event", status="open"))
    batch.flush()
    assert ledger.syncs == [True, False, True, False, True, False, True, False]
    ledger.close()


def test_after_the_commit_replies_go_first_then_exchange_requests_then_events(
        tmp_path: Path) -> None:
    """Clients wait on replies, and an order's create should not wait for the events of
    every other order in its batch: events are published last."""
    seen: list[str] = []

    class Sink:
        def publish(self, frames: list[bytes]) -> None:
            seen.append("event")

    ledger = Ledger(tmp_path / "ledger.sqlite")
    batch = Batch(ledger, Sink())
    batch.stage(ledger_order("od-a", status="pending_submit"))
    batch.after_commit(lambda: seen.append("request"))
    batch.reply(lambda: seen.append("reply"))
    batch.flush()
    assert seen == ["reply", "request", "event"]
    ledger.close()


def test_a_failed_commit_keeps_what_waited_for_it(tmp_path: Path) -> None:
    ledger, events, answered = RecordingLedger(tmp_path / "ledger.sqlite"), Published(), []
    batch = Batch(ledger, events)
    batch.stage(ledger_order("od-a", status="pending_submit"))
    batch.reply(lambda: answered.append("od-a"))
    ledger.fail_next = True
    with pytest.raises(sqlite3.OperationalError):
        batch.flush()
    assert answered == [] and events.seqs == [] and batch.pending
    batch.flush()
    assert answered == ["od-a"] and events.seqs == [1]
    assert ledger.get("od-a") is not None and ledger.syncs == [True]
    ledger.close()


def test_an_order_that_cannot_be_written_out_is_refused_before_it_is_staged(
        tmp_path: Path) -> None:
    ledger, events = Ledger(tmp_path / "ledger.sqlite"), Published()
    batch = Batch(ledger, events)
    with pytest.raises(ArithmeticError):  # decimal.Overflow formatting the amount
        batch.stage(ledger_order("huge", status="pending_submit", amount="1e999999999"))
    batch.stage(ledger_order("calm", status="pending_submit"))
    batch.flush()  # the refused order does not poison the commit of the next one
    assert ledger.get("huge") is None
    calm = ledger.get("calm")
    assert calm is not None and calm.status == "pending_submit"
    assert events.seqs == [1]


def test_a_ledger_from_before_signing_times_gains_them_and_keeps_its_orders(
        tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    old = sqlite3.connect(path)  # the orders table as the first ledgers made it
    old.executescript(SCHEMA.replace(", signed_at REAL", ""))
    old.execute(
        "INSERT INTO orders (client_order_id, order_id, exchange, symbol, side, type, amount,"
        " price, time_in_force, params, status, filled, average_price, fee_currency, fee_cost,"
        " created_at, updated_at, attempts, last_error, trail) VALUES ('od-old', NULL,"
        " 'paper', 'BTC/USD', 'buy', 'market', '0.01', NULL, NULL, '{}', 'unknown', '0',"
        " NULL, NULL, NULL, 1.0, 1.0, 1, NULL, '[]')")
    old.commit()
    old.close()

    ledger = Ledger(path)
    before = ledger.get("od-old")
    assert before is not None and before.status == "unknown"
    assert before.signed_at is None, "not recorded then: resolution takes it as signed now"
    fresh = ledger_order("od-new", status="pending_submit")
    fresh.signed_at = 1_700_000_123.25
    ledger.stage(fresh)
    ledger.commit()
    ledger.close()

    reopened = Ledger(path)  # the column is added once
    new = reopened.get("od-new")
    assert new is not None and new.signed_at == 1_700_000_123.25
    assert [o.client_order_id for o in reopened.live()] == ["od-old", "od-new"]
    reopened.close()


def test_the_words_are_stored_as_plain_text_and_read_back_as_members(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    ledger.stage(ledger_order("od-w", status="partially_filled", side="sell"))
    ledger.stage(ledger_order("od-m", status="pending_submit", price=None))
    ledger.commit()
    raw = sqlite3.connect(path)
    columns = "side, typeof(side), type, time_in_force, typeof(time_in_force), status"
    rows = raw.execute(f"SELECT {columns} FROM orders ORDER BY row").fetchall()
    assert rows == [("sell", "text", "limit", "GTC", "text", "partially_filled"),
                    ("buy", "text", "market", None, "null", "pending_submit")]
    read = ledger.get("od-w")
    assert read is not None
    assert (read.side, read.type, read.time_in_force, read.status) == (
        Side.SELL, OrderType.LIMIT, TimeInForce.GTC, OrderStatus.PARTIALLY_FILLED)
    assert all(isinstance(word, StrEnum)
               for word in (read.side, read.type, read.time_in_force, read.status))
    # a word the ledger should never hold is named, not taken as an order's status
    raw.execute("UPDATE orders SET status = 'filed' WHERE client_order_id = 'od-w'")
    raw.commit()
    raw.close()
    with pytest.raises(ValueError, match="'filed', not a valid OrderStatus"):
        ledger.get("od-w")
    ledger.close()


def test_an_order_id_names_every_order_it_is_of_staged_or_written(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    ledger.stage(ledger_order("on-btc", order_id="7"))
    ledger.stage(ledger_order("other", order_id="8"))
    ledger.commit()
    assert [o.client_order_id for o in ledger.by_order_id("7")] == ["on-btc"]
    ledger.stage(ledger_order("on-eth", order_id="7", symbol="ETH/USD"))
    assert {o.client_order_id for o in ledger.by_order_id("7")} == {"on-btc", "on-eth"}
    ledger.stage(ledger_order("on-btc", order_id="7", status="canceled"))  # staged wins
    assert {o.status for o in ledger.by_order_id("7")} == {"canceled", "open"}
    assert ledger.by_order_id("9") == []
    ledger.close()


def test_a_lookup_by_order_id_reads_an_index_in_old_ledgers_too(tmp_path: Path) -> None:
    """It scanned every order ever written (24 ms at 200,000), on the thread every order
    waits for: the index on (exchange, order_id) could not serve a lookup by order id
    alone. It served counts and symbols by exchange, on the reconciler's connection,
    which now scan (about 38 ms per exchange at 200,000 orders, once a run)."""
    old = sqlite3.connect(tmp_path / "ledger.sqlite")
    old.executescript(SCHEMA.split("DROP INDEX")[0] + "CREATE INDEX orders_by_exchange_id "
                      "ON orders (exchange, order_id);")
    old.close()
    Ledger(tmp_path / "ledger.sqlite").close()
    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    indexes = {row[1]: [c[2] for c in db.execute(f"PRAGMA index_info({row[1]})")]
               for row in db.execute("PRAGMA index_list(orders)")}
    db.close()
    assert indexes.get("orders_by_order_id") == ["order_id"]
    assert "orders_by_exchange_id" not in indexes  # one index written per order, as before


def _fill(trade_id: str, order_id: str, cid: str, amount: str, fee: str) -> TradeView:
    return TradeView(trade_id, order_id, cid, Decimal(amount), Decimal("1000"),
                     Decimal(fee), "USD", 1_700_000_000_000)


def test_two_symbols_trades_with_the_same_id_are_both_kept(tmp_path: Path) -> None:
    """binance numbers each symbol's trades on their own: a BTC and an ETH order of one
    account can each have a trade 7. Each is its order's fill, neither overwrites the
    other, before and after a restart."""
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger(path)
    ledger.stage(ledger_order("od-btc", order_id="11", status="filled", filled="0.01"))
    ledger.stage(ledger_order("od-eth", order_id="11", status="filled", filled="0.5",
                              symbol="ETH/USD", amount="0.5"))
    ledger.stage_fill("bx", "od-btc", _fill("7", "11", "od-btc", "0.01", "0.6"))
    ledger.commit()
    ledger.stage_fill("bx", "od-eth", _fill("7", "11", "od-eth", "0.5", "1.5"))
    ledger.commit()
    ledger.close()

    reopened = Ledger(path)
    btc, eth = reopened.fills_of("bx", "od-btc"), reopened.fills_of("bx", "od-eth")
    assert [(t.amount, t.fee_cost) for t in btc.values()] == [(Decimal("0.01"), Decimal("0.6"))]
    assert [(t.amount, t.fee_cost) for t in eth.values()] == [(Decimal("0.5"), Decimal("1.5"))]
    reopened.close()


def test_a_ledger_keying_fills_by_trade_id_alone_is_rekeyed_and_keeps_them(
        tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    old = sqlite3.connect(path)  # the fills table as the first ledgers made it
    old.executescript(SCHEMA.replace("PRIMARY KEY (exchange, client_order_id, trade_id)",
                                     "PRIMARY KEY (exchange, trade_id)"))
    old.execute("INSERT INTO fills VALUES ('bx', '7', 'od-btc', '11', '0.01', '1000', '0.6',"
                " 'USD', 1700000000000)")
    old.commit()
    old.close()

    ledger = Ledger(path)
    assert set(ledger.fills_of("bx", "od-btc")) == {"7"}
    ledger.stage_fill("bx", "od-eth", _fill("7", "11", "od-eth", "0.5", "1.5"))
    ledger.stage_fill("bx", "od-btc", _fill("7", "11", "od-btc", "0.01", "0.7"))  # a fee fix
    ledger.commit()
    ledger.close()

    reopened = Ledger(path)  # rekeyed once
    assert reopened.fills_of("bx", "od-btc")["7"].fee_cost == Decimal("0.7")
    assert reopened.fills_of("bx", "od-eth")["7"].fee_cost == Decimal("1.5")
    reopened.close()
    check = sqlite3.connect(path)
    # one index written per fill, the key, which also serves every read by order
    assert [row[3] for row in check.execute("PRAGMA index_list(fills)")] == ["pk"]
    plan = check.execute("EXPLAIN QUERY PLAN SELECT * FROM fills WHERE client_order_id IN "
                         "(?, ?) AND exchange = ?", ("od-btc", "od-eth", "bx")).fetchall()
    assert "(exchange=? AND client_order_id=?)" in str(plan)
    check.close()
