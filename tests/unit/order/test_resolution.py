"""Lookups of orders whose exchange outcome is unknown."""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.exchange.drivers.paper import PaperExchange
from actors.exchange.routing import worker_name
from actors.ledger.store import Ledger
from actors.order.actor import NAME as ORDER_ACTOR
from actors.order.messages import IsRecovered, Tick
from actors.order.resolution import (
    LOST_LOOKUP_S,
    SEND_MARGIN_S,
    Resolver,
    ResolveSettings,
    SignedWindow,
    landing_deadline,
)
from actors.supervisor_messages import Ping
from tests.helpers import wait_until
from tests.recon_support import (
    BTC,
    T0,
    WAIT_S,
    Actors,
    FakeClock,
    ledger_order,
    order_actors,
    seed_ledger,
)


def test_absence_needs_several_lookups_across_the_window() -> None:
    resolver = Resolver(ResolveSettings(interval_s=1.0, window_s=5.0, absent_needed=3))
    resolver.add("c", 0.0)
    proven = []
    for now in (0.0, 1.0, 2.0, 5.0):
        assert resolver.due(now) == ["c"]
        proven.append(resolver.looked_up("c", absent=True, now=now))
    assert proven == [False, False, False, True]
    assert "c" not in resolver


def test_long_after_the_landing_deadline_absence_needs_no_second_window() -> None:
    """An order left by a run killed long ago: any booking of its create had the whole
    window to show in lookups already, so `absent_needed` answers prove it absent."""
    resolver = Resolver(ResolveSettings(interval_s=1.0, window_s=5.0, absent_needed=3))
    resolver.add("old", 100.0, absent_after=90.0)
    resolver.add("recent", 100.0, absent_after=98.0)  # may have landed 2 s ago
    answers: dict[str, list[bool]] = {"old": [], "recent": []}
    for now in (100.0, 101.0, 102.0, 103.0):
        for cid in resolver.due(now):
            answers[cid].append(resolver.looked_up(cid, absent=True, now=now))
    assert answers["old"] == [False, False, True]
    assert answers["recent"] == [False, False, False, True], "5 s after it could land"


def test_a_failed_lookup_proves_nothing() -> None:
    resolver = Resolver(ResolveSettings(interval_s=1.0, window_s=0.0, absent_needed=1))
    resolver.add("c", 0.0)
    resolver.due(0.0)
    assert resolver.looked_up("c", absent=False, now=0.0) is False
    assert "c" in resolver


def test_a_lost_lookup_is_sent_again() -> None:
    resolver = Resolver(ResolveSettings(interval_s=1.0))
    resolver.add("c", 0.0)
    assert resolver.due(0.0) == ["c"]
    assert resolver.due(5.0) == [], "still waiting for its answer"
    assert resolver.due(LOST_LOOKUP_S + 1) == ["c"], "its answer never came"


def test_not_found_proves_nothing_while_the_create_can_still_land() -> None:
    resolver = Resolver(ResolveSettings(interval_s=1.0, window_s=0.0, absent_needed=1))
    resolver.add("c", 0.0, absent_after=7.0)
    for now in (0.0, 1.0, 3.0, 6.0):
        assert resolver.due(now) == ["c"]
        assert resolver.looked_up("c", absent=True, now=now) is False, now
    assert resolver.due(7.0) == ["c"], "sent once the create can no longer land"
    assert resolver.looked_up("c", absent=True, now=7.0) is True
    assert "c" not in resolver


def test_the_landing_deadline_counts_from_the_signing() -> None:
    window = SignedWindow(recv_window_s=5.0, request_timeout_s=10.0)
    assert landing_deadline(100.0, window, 1.0, now=103.0) == 116.0
    # after a restart the recorded signing time still counts, however late it is now
    assert landing_deadline(100.0, window, 1.0, now=200.0) == 116.0
    # a create whose signing was not recorded is taken as signed now
    assert landing_deadline(None, window, 1.0, now=103.0) == 119.0
    # without a signed window (the in-process venue books at once or never): now
    assert landing_deadline(100.0, None, 1.0, now=103.0) == 103.0
    assert window.send_within_s == 5.0 - SEND_MARGIN_S


class CountedLookups(PaperExchange):
    """The in-process paper venue, counting the lookups it answered."""

    lookups = 0

    def fetch_order(self, id: str | None, symbol: str | None = None,
                    params: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            return super().fetch_order(id, symbol, params)
        finally:
            CountedLookups.lookups += 1


def look_up_once(actors: Actors, clock: FakeClock, cid: str) -> dict[str, Any]:
    """Tick until one more lookup was answered; the order once its answer is handled."""
    before = CountedLookups.lookups
    for _ in range(500):
        actors.tell(Tick(clock.monotonic()))
        actors.status(cid)
        if CountedLookups.lookups > before:
            break
    actors.registry.ask(worker_name("paper", 0), Ping(), timeout=WAIT_S)  # its report is out
    return actors.status(cid)  # and handled


class HeldCreates(CountedLookups):
    """CountedLookups whose creates wait until `release` is set."""

    release = threading.Event()

    def create_order(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        HeldCreates.release.wait(WAIT_S)
        return super().create_order(*args, **kwargs)


def restarted_with(tmp_path: Path, clock: FakeClock,
                   client: type[CountedLookups] = CountedLookups) -> Any:
    """OrderActor started on a ledger holding `unk`, whose create was signed at T0 and
    whose answer never came (5 s recvWindow, 1 s timeout, 1 s skew: it may land until
    T0 + 7), on the paper venue counting lookups."""
    order = ledger_order("unk", status="unknown", price=None)
    order.signed_at = T0
    seed_ledger(tmp_path / "ledger.sqlite", [order])
    CountedLookups.lookups = 0
    return order_actors(
        tmp_path, clock, client=lambda v: client(v, clock=clock.now, sleep=clock.sleep),
        resolution=ResolveSettings(interval_s=1.0, window_s=0.0, absent_needed=1,
                                   clock_skew_s=1.0),
        signed_windows={"paper": SignedWindow(recv_window_s=5.0, request_timeout_s=1.0)})


def test_after_a_restart_absence_waits_for_the_recorded_signing_window(
        tmp_path: Path) -> None:
    clock = FakeClock(T0 + 1.0)
    with restarted_with(tmp_path, clock) as actors:
        for _ in range(6):  # T0+1 ... T0+6: "not found", and the create may still land
            assert look_up_once(actors, clock, "unk")["status"] == "unknown"
            assert actors.venue.all_orders() == []
            clock.advance(1.0)
        order = look_up_once(actors, clock, "unk")  # T0+7: it can land no more
        assert order["status"] != "unknown", "proven absent: sent again"
        resent = wait_until(lambda: actors.venue.all_orders(), "the create sent again")
        assert [o["clientOrderId"] for o in resent] == ["unk"]
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        stored = ledger.get("unk")
    finally:
        ledger.close()
    assert stored is not None and stored.signed_at == T0 + 7.0, "the re-send's signing"


def test_a_create_that_lands_late_is_adopted_at_the_next_lookup(tmp_path: Path) -> None:
    clock = FakeClock(T0 + 1.0)
    with restarted_with(tmp_path, clock) as actors:
        assert look_up_once(actors, clock, "unk")["status"] == "unknown"
        clock.advance(2.0)
        booked = actors.venue.create_order("default", BTC, "market", "buy", Decimal("0.01"),
                                           client_order_id="unk")  # held in transit till now
        order = look_up_once(actors, clock, "unk")
        assert order["status"] == "filled" and order["order_id"] == str(booked["id"])
        assert len(actors.venue.all_orders()) == 1


def test_start_up_waits_for_the_proof_of_absence_not_for_the_create_sent_again(
        tmp_path: Path) -> None:
    """Once an order left by the last run is proven absent and sent again, it is an
    ordinary order in flight: start-up is over even while that create is unanswered."""
    clock = FakeClock(T0 + 7.0)  # the recorded create can land no more
    HeldCreates.release.clear()
    with restarted_with(tmp_path, clock, HeldCreates) as actors:
        try:
            assert actors.registry.ask(ORDER_ACTOR, IsRecovered(), timeout=WAIT_S) is False
            wait_until(lambda: actors.tell(Tick(clock.monotonic()))
                       or CountedLookups.lookups, "the lookup")
            wait_until(lambda: actors.status("unk")["status"] == "pending_submit",
                       "proven absent and sent again")
            assert actors.registry.ask(ORDER_ACTOR, IsRecovered(), timeout=WAIT_S) is True
        finally:
            HeldCreates.release.set()
        wait_until(lambda: actors.status("unk")["status"] == "filled", "the create's answer")
        assert len(actors.venue.all_orders()) == 1


def test_orders_unresolved_too_long_are_one_alert_per_exchange(tmp_path: Path) -> None:
    """An outage leaves orders unresolved by the hundred: one alert names the oldest."""
    clock = FakeClock(T0 + 1.0)
    with restarted_with(tmp_path, clock) as actors:
        look_up_once(actors, clock, "unk")  # not found, and it may still land: unknown
        clock.advance(ResolveSettings().alert_after_s)
        actors.tell(Tick(clock.monotonic()))  # alerts before its lookup is answered
        actors.status("unk")  # the tick is handled
        assert [(a.name, a.message, a.labels) for a in actors.alerts.seen
                if a.name == "unknown_order_age"] == [
            ("unknown_order_age", "order unk is unresolved for 60 s", {"exchange": "paper"})]
