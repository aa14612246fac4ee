"""What decides whether a user-data stream is trusted: its event numbers (a gap means a
catch-up, a repeat changes nothing), its health (live only connected, caught up and
fresh), and tracking's `read_now`, which makes a catch-up's reads go out at once."""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from prometheus_client import CollectorRegistry

from actors.metrics.alerts import LogAlerter
from actors.order.core import NAME as ORDER_ACTOR
from actors.order.messages import ExchangeReport, StreamConnected, StreamEvents
from actors.order.tracking import Tracker, TrackingPlan
from actors.stream.actor import StreamActor, StreamSettings, stream_name
from actors.stream.connection import OnEvent, StreamItem
from actors.stream.events import Sequence
from actors.stream.health import StreamCollector, StreamHealth
from actors.supervisor import Registry
from tests.recon_support import ETH, FakeClock, ledger_order
from tests.stream_support import WAIT_S, Orders

STALE_S = 10.0


# -- the event sequence ---------------------------------------------------------------

def test_numbers_one_by_one_are_in_order() -> None:
    sequence = Sequence()
    assert [sequence.see(n) for n in (7, 8, 9)] == ["ok", "ok", "ok"]


def test_a_jump_is_a_gap_and_the_sequence_goes_on_from_it() -> None:
    sequence = Sequence()
    assert [sequence.see(n) for n in (1, 2, 5, 6)] == ["ok", "ok", "gap", "ok"]


def test_a_number_seen_before_is_a_duplicate_and_moves_nothing() -> None:
    sequence = Sequence()
    seen = [sequence.see(n) for n in (1, 2, 2, 1, 3)]
    assert seen == ["ok", "ok", "duplicate", "duplicate", "ok"]


def test_unnumbered_events_are_neither_gap_nor_duplicate() -> None:
    sequence = Sequence()
    assert [sequence.see(n) for n in (None, None, 4, None, 5)] == ["ok"] * 5


# -- health ---------------------------------------------------------------------------

def health(clock: FakeClock) -> StreamHealth:
    return StreamHealth(["bx"], STALE_S, clock.now)


def test_live_only_once_the_catch_up_of_the_connection_is_done() -> None:
    clock = FakeClock()
    streams = health(clock)
    assert not streams.live("bx") and not streams.live("other")
    epoch = streams.connected("bx")
    assert not streams.live("bx")  # connected, not caught up: tracking keeps its pace
    streams.caught_up("bx", epoch)
    assert streams.live("bx")
    state = streams.snapshot()["bx"]
    assert state["live"] and state["connected"] and state["caught_up"]


def test_a_catch_up_of_an_earlier_connection_does_not_count() -> None:
    clock = FakeClock()
    streams = health(clock)
    first = streams.connected("bx")
    streams.down("bx", "dropped")
    second = streams.connected("bx")
    streams.caught_up("bx", first)  # the reads predate the new subscription
    assert not streams.live("bx")
    streams.caught_up("bx", second)
    assert streams.live("bx") and streams.snapshot()["bx"]["reconnects"] == 1


def test_stale_after_stale_s_without_a_frame() -> None:
    clock = FakeClock()
    streams = health(clock)
    streams.caught_up("bx", streams.connected("bx"))
    clock.advance(STALE_S)
    assert streams.live("bx")
    clock.advance(0.5)
    assert not streams.live("bx")
    assert streams.snapshot()["bx"]["last_frame_age_s"] == STALE_S + 0.5
    streams.frame("bx", clock.now())  # a heartbeat's answer
    assert streams.live("bx")


def test_a_gap_distrusts_the_stream_until_caught_up_again() -> None:
    clock = FakeClock()
    streams = health(clock)
    epoch = streams.connected("bx")
    streams.caught_up("bx", epoch)
    assert streams.distrust("bx") == epoch
    assert not streams.live("bx") and streams.snapshot()["bx"]["gaps"] == 1
    streams.caught_up("bx", epoch)
    assert streams.live("bx")


def test_down_says_once_that_a_live_stream_was_lost() -> None:
    clock = FakeClock()
    streams = health(clock)
    assert not streams.down("bx", "never connected")
    streams.caught_up("bx", streams.connected("bx"))
    assert streams.down("bx", "dropped")  # the alert goes out for this one
    assert not streams.down("bx", "refused")  # still down: no second alert
    state = streams.snapshot()["bx"]
    assert not state["live"] and not state["connected"] and state["last_error"] == "refused"


def test_events_duplicates_and_lag_are_counted_and_exported() -> None:
    clock = FakeClock()
    streams = health(clock)
    streams.caught_up("bx", streams.connected("bx"))
    streams.event("bx", 0.25, duplicate=False)
    streams.event("bx", 0.5, duplicate=True)
    state = streams.snapshot()["bx"]
    assert (state["events"], state["duplicates"], state["lag_s"]) == (2, 1, 0.5)
    registry = CollectorRegistry()
    registry.register(StreamCollector(streams))
    assert registry.get_sample_value("orderd_stream_up", {"exchange": "bx"}) == 1.0
    assert registry.get_sample_value("orderd_stream_duplicates_total",
                                     {"exchange": "bx"}) == 1.0
    clock.advance(STALE_S + 1)
    assert registry.get_sample_value("orderd_stream_up", {"exchange": "bx"}) == 0.0


# -- tracking's read_now ---------------------------------------------------------------

def test_read_now_makes_a_symbol_due_at_once_whatever_the_safety_interval() -> None:
    clock = FakeClock()
    plan = TrackingPlan(interval_s=2.0, young_interval_s=0.5, stream_live=lambda _e: True,
                        safety_interval_s=60.0)
    tracker = Tracker(plan)
    orders = [ledger_order("a", created_at=clock.now()),
              ledger_order("b", created_at=clock.now(), symbol=ETH)]
    due = tracker.due(orders, clock.monotonic(), clock.now())
    assert sorted(key for key, _ in due) == [("paper", "BTC/USD"), ("paper", "ETH/USD")]
    for key, _ in due:
        tracker.answered(key)
    clock.advance(5.0)
    assert tracker.due(orders, clock.monotonic(), clock.now()) == []  # the stream is live
    tracker.read_now([("paper", "BTC/USD")])
    [(key, group)] = tracker.due(orders, clock.monotonic(), clock.now())
    assert key == ("paper", "BTC/USD") and [o.client_order_id for o in group] == ["a"]


def test_read_now_does_not_wait_for_a_read_already_under_way() -> None:
    clock = FakeClock()
    tracker = Tracker(TrackingPlan())
    orders = [ledger_order("a", created_at=clock.now())]
    assert len(tracker.due(orders, clock.monotonic(), clock.now())) == 1  # unanswered
    clock.advance(5.0)
    assert tracker.due(orders, clock.monotonic(), clock.now()) == []  # one at a time
    tracker.read_now([("paper", "BTC/USD")])  # that read may predate the subscription
    assert len(tracker.due(orders, clock.monotonic(), clock.now())) == 1


# -- a StreamActor over a scripted connection -----------------------------------------

class Scripted:
    """A connection whose events are numbered as scripted; each names an order."""

    def __init__(self, on_event: OnEvent, script: list[tuple[int, str]]) -> None:
        self._on_event = on_event
        self._script = script

    async def open(self, markets: Mapping[str, Any] | None) -> None:
        loop = asyncio.get_running_loop()
        for event in self._script:
            loop.call_soon(self._on_event, event)

    def check(self) -> None:
        pass

    async def ended(self) -> None:
        await asyncio.get_running_loop().create_future()  # never

    def last_frame(self) -> float:
        return time.time()

    async def heartbeat(self) -> None:
        pass

    def read(self, event: tuple[int, str]) -> StreamItem:
        number, cid = event
        return StreamItem(number, int(time.time() * 1000), ExchangeReport(cid, "fetch", "ok"))

    async def close(self) -> None:
        pass


@contextmanager
def streaming(script: list[tuple[int, str]]) -> Iterator[tuple[queue.Queue[Any],
                                                                StreamHealth]]:
    registry = Registry()
    told: queue.Queue[Any] = queue.Queue()
    streams = StreamHealth(["bx"], STALE_S, time.time)
    settings = StreamSettings("bx", lambda on_event: Scripted(on_event, script),
                              stale_s=STALE_S)
    registry.start(ORDER_ACTOR, lambda: Orders.start(registry, told))
    registry.start(stream_name("bx"), lambda: StreamActor.start(
        registry, settings, streams, LogAlerter()))
    try:
        yield told, streams
    finally:
        registry.stop_all()


def told_until(told: queue.Queue[Any], count: int) -> list[Any]:
    """Messages told until `count` reports came."""
    messages: list[Any] = []
    reports = 0
    while reports < count:
        message = told.get(timeout=WAIT_S)
        messages.append(message)
        if isinstance(message, StreamEvents):
            reports += len(message.reports)
    return messages


def test_a_duplicate_is_not_applied_and_a_gap_asks_for_a_catch_up() -> None:
    with streaming([(1, "a"), (2, "b"), (2, "b"), (4, "d")]) as (told, streams):
        messages = told_until(told, 3)
        connected = [m for m in messages if isinstance(m, StreamConnected)]
        applied = [r.client_order_id for m in messages if isinstance(m, StreamEvents)
                   for r in m.reports]
        assert applied == ["a", "b", "d"]  # the repeat changes nothing
        if len(connected) < 2:  # the gap's catch-up follows the events it was found in
            connected.append(told.get(timeout=WAIT_S))
        assert [m.epoch for m in connected] == [1, 1]  # the connect's, then the gap's
        state = streams.snapshot()["bx"]
        assert (state["events"], state["duplicates"], state["gaps"]) == (4, 1, 1)
