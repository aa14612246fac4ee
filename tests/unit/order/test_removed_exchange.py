"""Live orders of an exchange the configuration no longer has (its entry renamed or
removed while the daemon was down): set aside when the ledger is loaded, never sent
anywhere nor resolved against another exchange, and still visible."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from actors.exchange.routing import side_worker_name, worker_name
from actors.order.messages import Cancel, CancelAll, IsRecovered, ListOrders, Submit, Tick
from actors.orders import Order
from actors.runtime import Reply
from actors.supervisor_messages import Ping
from protocol.errors import ProtocolError
from protocol.messages import (
    CancelAllArgs,
    ListArgs,
    OrderRef,
    OrderSpec,
    OrderType,
    Side,
    Wait,
)
from tests.recon_support import WAIT_S, Actors, FakeClock, ledger_order, order_actors, seed_ledger

GONE = "oldex"
ALERT = "orders_of_unknown_exchange"
RESOLVE_WITHIN_S = 120
"""Fake seconds a paper order left unknown takes at most to be resolved: past the
resolver's wait for a lost create, twice."""


def gone_order(cid: str, status: str) -> Order:
    """A live order of the removed exchange; one past its create has an exchange id."""
    order_id = None if status == "pending_submit" else "9"
    return ledger_order(cid, status=status, order_id=order_id, exchange=GONE)


def ask(actors: Actors, message: Callable[[Reply], Any]) -> Any:
    """OrderActor's answer to the message `message` makes with a reply."""
    done: Future[Any] = Future()
    actors.tell(message(done.set_result))
    return done.result(timeout=WAIT_S)


def recovered(actors: Actors) -> bool:
    return bool(actors.registry.ask("order", IsRecovered(), timeout=WAIT_S))


def tick_until_resolved(actors: Actors, clock: FakeClock, cid: str) -> dict[str, Any]:
    """Tick a second of fake time at a time until `cid` is no longer unknown. Each tick's
    lookups are answered and their answers handled before time moves on: else, on a
    loaded machine, fake time outran the lookups and the order was still unknown."""
    for _ in range(RESOLVE_WITHIN_S):
        order = actors.status(cid)  # also: the previous tick's answers are handled
        if order["status"] != "unknown":
            return order
        actors.tell(Tick(clock.monotonic()))
        actors.status(cid)  # the tick is handled: its lookups are with the workers
        for worker in (worker_name("paper", 0), side_worker_name("paper")):
            actors.registry.ask(worker, Ping(), timeout=WAIT_S)  # and answered
        clock.advance(1.0)
    raise AssertionError(f"{cid} still unknown after {RESOLVE_WITHIN_S} s of ticks")


@pytest.mark.parametrize("status", ["pending_submit", "unknown", "pending_cancel"])
def test_an_unresolved_order_of_a_removed_exchange_holds_up_nothing(tmp_path: Path,
                                                                   status: str) -> None:
    """Ahead of a paper order in the ledger, it neither stops the paper order's lookups
    nor counts as recovering; it stays exactly as recorded."""
    seed_ledger(tmp_path / "ledger.sqlite",
                [gone_order("gone-1", status), ledger_order("here-1", status="unknown")])
    clock = FakeClock()
    with order_actors(tmp_path, clock) as actors:
        before = actors.status("gone-1")
        assert tick_until_resolved(actors, clock, "here-1")["status"] != "unknown"
        assert recovered(actors)
        after = actors.status("gone-1")
        assert after["status"] == status and after["attempts"] == before["attempts"]
        assert after["updated_at"] == before["updated_at"]


def test_the_start_warns_per_removed_exchange_with_its_count(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    seed_ledger(tmp_path / "ledger.sqlite",
                [gone_order("gone-1", "unknown"), gone_order("gone-2", "pending_cancel"),
                 gone_order("gone-3", "open"), ledger_order("here-1", order_id="1")])
    caplog.set_level(logging.WARNING, logger="actors.order")
    with order_actors(tmp_path, FakeClock()) as actors:
        assert recovered(actors)  # answered after the start: its warning is out
        alerts = [a for a in actors.alerts.seen if a.name == ALERT]
    assert len(alerts) == 1 and alerts[0].labels == {"exchange": GONE}
    assert "3 live orders of exchange 'oldex'" in alerts[0].message
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("3 live orders of exchange 'oldex'" in w for w in warnings), warnings


def test_no_alert_when_every_order_has_its_exchange(tmp_path: Path) -> None:
    seed_ledger(tmp_path / "ledger.sqlite", [ledger_order("here-1", order_id="1")])
    with order_actors(tmp_path, FakeClock()) as actors:
        assert recovered(actors)
        assert not [a for a in actors.alerts.seen if a.name == ALERT]


@pytest.mark.parametrize("status", ["open", "pending_submit", "unknown", "pending_cancel"])
def test_a_cancel_of_an_order_of_a_removed_exchange_is_refused(tmp_path: Path,
                                                               status: str) -> None:
    seed_ledger(tmp_path / "ledger.sqlite", [gone_order("gone-1", status)])
    with order_actors(tmp_path, FakeClock()) as actors:
        for ref in (OrderRef(client_order_id="gone-1"), OrderRef(order_id="9")):
            if ref.order_id is not None and status == "pending_submit":
                continue  # no exchange id yet
            answer = ask(actors, partial(Cancel, ref))
            assert isinstance(answer, ProtocolError) and answer.code == "unknown_exchange"
            assert answer.details == {"client_order_id": "gone-1", "exchange": GONE}
            assert "oldex" in answer.message
        assert actors.status("gone-1")["status"] == status


def test_cancel_all_skips_orders_of_a_removed_exchange_and_cancels_the_rest(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    seed_ledger(tmp_path / "ledger.sqlite",
                [gone_order("gone-1", "open"), gone_order("gone-2", "open")])
    caplog.set_level(logging.WARNING, logger="actors.order")
    with order_actors(tmp_path, FakeClock()) as actors:
        spec = OrderSpec("BTC/USD", Side.BUY, OrderType.LIMIT, Decimal("0.01"),
                         Decimal("1000"), "here-1")
        placed = ask(actors, lambda reply: Submit(spec, Wait.ACCEPTED, reply))
        assert placed["order"]["status"] == "open"
        answer = ask(actors, lambda reply: CancelAll(CancelAllArgs(), reply))
        assert [o["client_order_id"] for o in answer["orders"]] == ["here-1"]
        assert answer["orders"][0]["status"] in ("pending_cancel", "canceled")
        for cid in ("gone-1", "gone-2"):
            assert actors.status(cid)["status"] == "open"
    assert any("2 orders of exchanges not configured (oldex)" in r.getMessage()
               for r in caplog.records)


def test_status_and_list_show_orders_of_a_removed_exchange(tmp_path: Path) -> None:
    seed_ledger(tmp_path / "ledger.sqlite",
                [gone_order("gone-1", "unknown"), ledger_order("here-1", order_id="1")])
    with order_actors(tmp_path, FakeClock()) as actors:
        status = actors.status("gone-1")
        assert (status["exchange"], status["status"]) == (GONE, "unknown")
        page = ask(actors, lambda reply: ListOrders(ListArgs(exchange=GONE), reply))
        assert [(o["client_order_id"], o["status"]) for o in page["orders"]] == [
            ("gone-1", "unknown")]
        every = ask(actors, lambda reply: ListOrders(ListArgs(), reply))
        assert [o["client_order_id"] for o in every["orders"]] == ["gone-1", "here-1"]
