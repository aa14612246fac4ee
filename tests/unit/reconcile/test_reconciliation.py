"""Reconciliation against the paper venue: each discrepancy kind, repairs, errors, reports."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.exchange.client import trade_of
from actors.exchange.drivers.paper import PaperExchange, PaperFaults, PaperVenue
from actors.exchange.errors import ERROR_TABLE, UNCLASSIFIED
from actors.ledger.reader import CHUNK
from actors.ledger.store import Ledger
from actors.metrics.series import Metrics
from actors.orders import Order
from actors.reconcile.actor import ReconcilerActor, ReconcilerSettings
from actors.reconcile.compare import ReconcileSettings
from actors.reconcile.messages import RECONCILER, RecordDiscrepancy, RunReconciliation
from actors.reconcile.reports import read_reports
from actors.supervisor import Registry
from orderd.reconciliation_job import ReconciliationJob
from tests.recon_support import BTC, WAIT_S, FakeClock, ledger_order, order_actors, seed_ledger

LATER_S = 120.0  # runs happen after the seeded orders are past the in-flight age


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def venue(tmp_path: Path, clock: FakeClock) -> Iterator[PaperVenue]:
    """The venue's book, for seeding before the job opens it."""
    book = PaperVenue(tmp_path / "paper-paper.sqlite", clock=clock.now)
    yield book
    book.close()


def job_for(tmp_path: Path, clock: FakeClock) -> ReconciliationJob:
    config = {
        "executor": {"state_dir": "."},
        "schedule": {"interval": "daily", "time": "02:00"},
        "reporting": {"file": "reports.jsonl", "history_days": 30},
        "run_on_start": False,
    }
    return ReconciliationJob(config, base_dir=tmp_path, clock=clock.clock())


def reconcile(tmp_path: Path, clock: FakeClock, venue: PaperVenue, orders: list[Order],
              check: ReconcileSettings | None = None,
              client: Callable[[PaperVenue], PaperExchange] | None = None) -> dict[str, Any]:
    """Seed the ledger, close the seeding venue, run once; the paper section of the report.

    On actors that only tick when told: a daemon's tracking reads the same orders at
    its first tick and would race the run to each repair."""
    seed_ledger(tmp_path / "ledger.sqlite", orders)
    venue.close()
    clock.advance(LATER_S)
    settings = ReconcilerSettings(ledger_path=tmp_path / "ledger.sqlite", exchanges=("paper",),
                                  report_file=tmp_path / "reports.jsonl",
                                  check=check or ReconcileSettings())
    with order_actors(tmp_path, clock, client) as actors:
        actors.registry.start(RECONCILER, lambda: ReconcilerActor.start(
            actors.registry, settings, clock.clock(), actors.alerts))
        report = actors.registry.ask(RECONCILER, RunReconciliation(None), timeout=WAIT_S)
    section: dict[str, Any] = report["exchanges"]["paper"]
    return section


def broken(clock: FakeClock) -> Callable[[PaperVenue], PaperExchange]:
    """Clients of the venue whose every request fails."""
    return lambda venue: PaperExchange(venue, faults=PaperFaults(error_rate=1.0),
                                       clock=clock.now, sleep=clock.sleep)


def kinds(section: dict[str, Any]) -> list[tuple[str, str | None]]:
    return sorted((d["kind"], d["client_order_id"]) for d in section["discrepancies"])


def stored(tmp_path: Path, cid: str) -> Order:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        order = ledger.get(cid)
    finally:
        ledger.close()
    assert order is not None
    return order


def resting(venue: PaperVenue, cid: str, amount: str = "0.01", price: str = "1000") -> str:
    return str(venue.create_order("default", BTC, "limit", "buy", Decimal(amount),
                                  Decimal(price), client_order_id=cid)["id"])


def test_a_consistent_ledger_has_no_discrepancies(tmp_path: Path, clock: FakeClock,
                                                  venue: PaperVenue) -> None:
    order_id = resting(venue, "od-ok")
    section = reconcile(tmp_path, clock, venue, [ledger_order("od-ok", order_id=order_id)])
    assert section["discrepancies"] == [] and section["errors"] == []
    assert section["counts"]["ledger_live"] == 1 and section["counts"]["exchange_open"] == 1
    assert section["counts"]["lookups"] == 0  # seen in the open orders, no lookup needed


def test_missing_on_exchange(tmp_path: Path, clock: FakeClock, venue: PaperVenue) -> None:
    section = reconcile(tmp_path, clock, venue, [ledger_order("od-gone", order_id="999")])
    assert kinds(section) == [("missing_on_exchange", "od-gone")]
    assert section["repairs"] == [] and stored(tmp_path, "od-gone").status == "open"


def test_unknown_on_exchange_adopts_ours_and_reports_foreign(
        tmp_path: Path, clock: FakeClock, venue: PaperVenue) -> None:
    resting(venue, "od-orphan")
    resting(venue, "someone-else")
    section = reconcile(tmp_path, clock, venue, [])
    found = {d["client_order_id"]: d for d in section["discrepancies"]}
    assert found["od-orphan"]["kind"] == found["someone-else"]["kind"] == "unknown_on_exchange"
    assert (found["od-orphan"]["ours"], found["someone-else"]["ours"]) == (True, False)
    assert [(r["client_order_id"], r["applied"]) for r in section["repairs"]] == [
        ("od-orphan", True)]
    adopted = stored(tmp_path, "od-orphan")
    assert adopted.status == "open" and adopted.amount == Decimal("0.01")
    assert adopted.trail[-1]["step"] == "adopted"
    ledger = Ledger(tmp_path / "ledger.sqlite")
    assert ledger.get("someone-else") is None
    ledger.close()


def test_status_mismatch_from_a_cancel_on_the_venue_is_repaired(
        tmp_path: Path, clock: FakeClock, venue: PaperVenue) -> None:
    order_id = resting(venue, "od-cxl")
    venue.cancel_on_venue(order_id)
    section = reconcile(tmp_path, clock, venue, [ledger_order("od-cxl", order_id=order_id)])
    assert kinds(section) == [("status_mismatch", "od-cxl")]
    assert section["counts"]["lookups"] == 1 and section["counts"]["repairs"] == 1
    order = stored(tmp_path, "od-cxl")
    assert order.status == "canceled"
    assert order.trail[-1]["step"] == "repair" and order.trail[-1]["status"] == ["open",
                                                                                "canceled"]


def test_fill_mismatch_adopts_fills_from_trade_records(
        tmp_path: Path, clock: FakeClock, venue: PaperVenue) -> None:
    order_id = resting(venue, "od-fill", price="1000")
    venue.set_price(BTC, Decimal("999"))  # crosses the limit: it fills at 1000 as maker
    section = reconcile(tmp_path, clock, venue, [ledger_order("od-fill", order_id=order_id)])
    assert kinds(section) == [("fill_mismatch", "od-fill"), ("fill_mismatch", "od-fill"),
                              ("status_mismatch", "od-fill")]
    order = stored(tmp_path, "od-fill")
    assert order.status == "filled" and order.filled == Decimal("0.01")
    assert order.average_price == Decimal(1000) and order.fee_cost == Decimal("0.01")
    assert [s["trade_id"] for s in order.trail if s["step"] == "fill"] == ["1"]


def test_fee_mismatch_is_repaired_from_the_trades(
        tmp_path: Path, clock: FakeClock, venue: PaperVenue) -> None:
    raw = venue.create_order("default", BTC, "market", "buy", Decimal("0.01"),
                             client_order_id="od-fee")
    trade = trade_of(venue.my_trades("default")[0])
    wrong = ledger_order("od-fee", order_id=str(raw["id"]), status="filled", price=None,
                         filled="0.01", fee="5")
    seed_ledger(tmp_path / "ledger.sqlite", [], fills=[("od-fee", trade)])
    section = reconcile(tmp_path, clock, venue, [wrong])
    assert kinds(section) == [("fee_mismatch", "od-fee")]
    assert stored(tmp_path, "od-fee").fee_cost == trade.fee_cost


def test_amount_mismatch_is_reported_not_repaired(
        tmp_path: Path, clock: FakeClock, venue: PaperVenue) -> None:
    order_id = resting(venue, "od-amt", amount="0.01")
    venue.cancel_on_venue(order_id)
    section = reconcile(tmp_path, clock, venue,
                        [ledger_order("od-amt", order_id=order_id, amount="0.02")])
    assert ("amount_mismatch", "od-amt") in kinds(section)
    assert all(not d["repair"] for d in section["discrepancies"])
    assert stored(tmp_path, "od-amt").status == "open"


def test_a_failing_exchange_is_an_error_not_missing_orders(
        tmp_path: Path, clock: FakeClock, venue: PaperVenue) -> None:
    orders = [ledger_order(f"od-e{i}", order_id=str(100 + i)) for i in range(3)]
    section = reconcile(tmp_path, clock, venue, orders, client=broken(clock))
    assert section["discrepancies"] == []
    queries = sorted(e["query"] for e in section["errors"])
    assert queries == ["lookup", "lookup", "lookup", "open_orders", "trades"]


def test_each_run_error_names_the_exchanges_error_and_the_tables_code(
        tmp_path: Path, clock: FakeClock, venue: PaperVenue) -> None:
    """Each error of the run names the exchange's own error and the code the error table
    gives it where it came in (an open circuit, raised on our side: unclassified)."""
    orders = [ledger_order(f"od-c{i}", order_id=str(200 + i)) for i in range(3)]
    section = reconcile(tmp_path, clock, venue, orders, client=broken(clock))
    assert section["errors"]
    for error in section["errors"]:
        name = error["error"].split(":")[0]
        assert name in ERROR_TABLE or name == "CircuitOpen", error
        assert error["code"] == ERROR_TABLE.get(name, UNCLASSIFIED).code, error


def test_lookups_are_bounded_and_spaced(tmp_path: Path, clock: FakeClock,
                                        venue: PaperVenue) -> None:
    orders = [ledger_order(f"od-b{i}", order_id=str(500 + i)) for i in range(5)]
    section = reconcile(tmp_path, clock, venue, orders,
                        ReconcileSettings(max_lookups_per_run=3, lookup_spacing_ms=200.0))
    assert section["counts"]["lookups"] == 3 and section["counts"]["lookups_deferred"] == 2
    assert clock.sleeps.count(0.2) == 2


def test_young_orders_are_left_to_tracking(tmp_path: Path, clock: FakeClock,
                                           venue: PaperVenue) -> None:
    young = ledger_order("od-young", order_id="77", created_at=clock.now() + LATER_S - 1)
    section = reconcile(tmp_path, clock, venue, [young])
    assert section["discrepancies"] == [] and section["counts"]["lookups"] == 0


def test_trades_are_read_from_the_stored_cursor(tmp_path: Path, clock: FakeClock,
                                                venue: PaperVenue) -> None:
    venue.create_order("default", BTC, "market", "buy", Decimal("0.01"), client_order_id="od-c")
    # an order of the ledger on the symbol: its trades are read
    earlier = ledger_order("od-earlier", order_id="1000", status="canceled")
    first = reconcile(tmp_path, clock, venue, [earlier])
    assert first["counts"]["trades"] == 1
    assert kinds(first) == [("unknown_on_exchange", "od-c")]
    job = job_for(tmp_path, clock)
    try:
        second = job.run_once()["exchanges"]["paper"]
    finally:
        job.close()
    # read from the symbol's cursor, past that trade; its order is in the ledger now
    assert second["discrepancies"] == [] and second["counts"]["trades"] == 0


def test_the_trades_of_more_orders_than_one_chunk_are_each_checked(
        tmp_path: Path, clock: FakeClock, venue: PaperVenue) -> None:
    """The ledger side is read a chunk of orders at a time: none is skipped, the first
    and the last alike, and an order the ledger lacks is still found unknown."""
    count = CHUNK + 3
    orders = []
    for i in range(count):
        side = "sell" if i % 2 else "buy"  # the account's balances last
        raw = venue.create_order("default", BTC, "market", side, Decimal("0.01"),
                                 client_order_id=f"od-k{i}")
        # the ledger knows the fill but not its fee: one fee_mismatch per order
        orders.append(ledger_order(f"od-k{i}", order_id=str(raw["id"]), status="filled",
                                   price=None, filled="0.01", side=side))
    venue.create_order("default", BTC, "market", "buy", Decimal("0.01"),
                       client_order_id="od-stray")
    section = reconcile(tmp_path, clock, venue, orders)
    assert section["counts"]["trades"] == count + 1
    assert section["counts"]["fee_mismatch"] == count
    assert ("unknown_on_exchange", "od-stray") in kinds(section)
    assert {r["client_order_id"] for r in section["repairs"]} == (
        {f"od-k{i}" for i in range(count)} | {"od-stray"})
    assert stored(tmp_path, f"od-k{count - 1}").fee_cost is not None


def test_reports_are_appended_and_alert(tmp_path: Path, clock: FakeClock,
                                        venue: PaperVenue) -> None:
    reconcile(tmp_path, clock, venue, [ledger_order("od-r", order_id="404")])
    lines = (tmp_path / "reports.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert '"missing_on_exchange"' in lines[0] and '"run_id"' in lines[0]


def test_async_run_reconciliation(tmp_path: Path, clock: FakeClock, venue: PaperVenue) -> None:
    import asyncio

    venue.close()
    job = job_for(tmp_path, clock)
    try:
        report = asyncio.run(job.run_reconciliation())
    finally:
        job.close()
    assert set(report) == {"run_id", "started_at", "finished_at", "exchanges"}


def test_a_ledger_of_100k_orders_completes(tmp_path: Path, clock: FakeClock,
                                           venue: PaperVenue) -> None:
    """Terminal orders are compared through the trades, never looked up one by one."""
    ledger = Ledger(tmp_path / "ledger.sqlite")
    rows = [ledger_order(f"od-{i:06d}", order_id=f"x{i}", status="filled", price=None,
                         filled="0.01") for i in range(100_000)]
    for order in rows:
        ledger.stage(order)
    ledger.commit()
    ledger.close()
    order_id = resting(venue, "od-live")
    started = time.monotonic()
    section = reconcile(tmp_path, clock, venue, [ledger_order("od-live", order_id=order_id)])
    assert section["counts"]["ledger_orders"] == 100_001
    assert section["discrepancies"] == [] and section["counts"]["lookups"] == 0
    print(f"100k-order reconciliation: {time.monotonic() - started:.2f} s")


def test_trades_beyond_the_amount_are_an_overfill_not_repaired(
        tmp_path: Path, clock: FakeClock, venue: PaperVenue) -> None:
    raw = venue.create_order("default", BTC, "market", "buy", Decimal("0.01"),
                             client_order_id="od-over")
    counted = ledger_order("od-over", order_id=str(raw["id"]), status="filled", price=None,
                           amount="0.005", filled="0.005")
    section = reconcile(tmp_path, clock, venue, [counted])
    assert kinds(section) == [("overfill", "od-over")]
    [entry] = section["discrepancies"]
    assert entry["repair"] is False and entry["exchange"]["filled"] == "0.01"
    assert section["counts"]["overfill"] == 1
    assert stored(tmp_path, "od-over").filled == Decimal("0.005")


def test_a_discrepancy_found_while_tracking_is_a_report_of_its_own(
        tmp_path: Path, clock: FakeClock) -> None:
    registry, metrics = Registry(), Metrics()
    settings = ReconcilerSettings(ledger_path=tmp_path / "ledger.sqlite", exchanges=("paper",),
                                  report_file=tmp_path / "reports.jsonl")
    registry.start(RECONCILER, lambda: ReconcilerActor.start(
        registry, settings, clock.clock(), metrics=metrics))
    entry = {"kind": "overfill", "client_order_id": "od-twice", "repair": False}
    try:
        registry.ask(RECONCILER, RecordDiscrepancy("paper", entry), timeout=10)
    finally:
        registry.stop_all()
    [report] = read_reports(tmp_path / "reports.jsonl")
    assert report["found_by"] == "tracking"
    assert report["exchanges"]["paper"]["discrepancies"] == [entry]
    assert report["exchanges"]["paper"]["counts"] == {"discrepancies": 1, "overfill": 1}
    assert metrics.registry.get_sample_value(
        "orderd_reconciliation_discrepancies_total",
        {"exchange": "paper", "kind": "overfill"}) == 1
