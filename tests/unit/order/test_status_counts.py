"""`stats` counts the ledger's orders by status on a thread of its own (a scan of
every order would stall order flow on OrderActor's). Requests asked together are each
answered, and none is answered with a count older than the request."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any

from actors.order.messages import GetStats
from actors.order.status_counts import StatusCounts
from tests.recon_support import WAIT_S, FakeClock, ledger_order, order_actors, seed_ledger

SEEDED = {"open": 2, "filled": 1, "canceled": 1}


def seeded(tmp_path: Path) -> None:
    seed_ledger(tmp_path / "ledger.sqlite", [
        ledger_order("od-o1", order_id="1"), ledger_order("od-o2", order_id="2"),
        ledger_order("od-f", order_id="3", status="filled", filled="0.01"),
        ledger_order("od-c", order_id="4", status="canceled")])


def test_stats_asked_together_are_each_answered_with_every_order(tmp_path: Path) -> None:
    seeded(tmp_path)
    with order_actors(tmp_path, FakeClock()) as actors:
        asked: list[Future[Any]] = [Future() for _ in range(20)]
        for done in asked:
            actors.tell(GetStats(done.set_result))
        answers = [done.result(timeout=WAIT_S) for done in asked]
    assert [a["orders_by_status"] for a in answers] == [SEEDED] * 20
    assert {a["live_orders"] for a in answers} == {2}


def test_a_count_asked_while_one_runs_sees_what_was_written_meanwhile(
        tmp_path: Path) -> None:
    seeded(tmp_path)
    counts = StatusCounts(tmp_path / "ledger.sqlite")
    second: Future[dict[str, int] | None] = Future()

    first: Future[dict[str, int] | None] = Future()

    def first_done(found: dict[str, int] | None) -> None:
        # while the first count's thread runs: an order written, then a count asked
        seed_ledger(tmp_path / "ledger.sqlite", [ledger_order("od-new", order_id="5")])
        counts.ask(second.set_result)
        first.set_result(found)

    counts.ask(first_done)
    assert first.result(timeout=WAIT_S) == SEEDED
    assert second.result(timeout=WAIT_S) == {**SEEDED, "open": 3}


def test_an_unreadable_ledger_is_an_error_not_a_wrong_count(tmp_path: Path) -> None:
    found: Future[dict[str, int] | None] = Future()
    StatusCounts(tmp_path / "missing.sqlite").ask(found.set_result)
    assert found.result(timeout=WAIT_S) is None


def test_a_failing_callback_does_not_stop_later_counts(tmp_path: Path) -> None:
    seed_ledger(tmp_path / "ledger.sqlite", [ledger_order("od-o1", order_id="1")])
    counts = StatusCounts(tmp_path / "ledger.sqlite")
    first: Future[None] = Future()

    def broken(found: object) -> None:
        first.set_result(None)
        raise RuntimeError("a reply that cannot be sent")

    counts.ask(broken)
    first.result(timeout=WAIT_S)
    later: Future[object] = Future()
    counts.ask(later.set_result)
    assert later.result(timeout=WAIT_S) == {"open": 1}  # TimeoutError before a fix
