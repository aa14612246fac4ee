"""The in-process paper venue's user-data stream: the account's events as lookup reports,
handed from the venue's threads to the stream's loop without blocking the venue; down
while the entry's outage lasts; and no listener left behind by a stopped or restarted
StreamActor."""

from __future__ import annotations

import asyncio
import gc
import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from ccxt.base.errors import ExchangeNotAvailable, InsufficientFunds

from actors.exchange.drivers.paper import PaperExchange, PaperFaults
from actors.metrics.alerts import LogAlerter
from actors.order.core import NAME as ORDER_ACTOR
from actors.order.messages import ExchangeReport, StreamConnected, StreamEvents
from actors.stream.actor import StreamActor, StreamSettings, stream_name
from actors.stream.connection import BuildConnection, OnEvent, StreamConnection, StreamItem
from actors.stream.health import StreamHealth
from actors.stream.paper_stream import PaperStream
from actors.supervisor import Registry, Supervisor, SupervisorSettings
from actors.supervisor_messages import Crash
from tests.stream_support import WAIT_S, Orders
from tests.venue_support import FakeClock
from venue.book import PaperVenue
from venue.model import VenueEvent

BTC = "BTC/USD"


def resting(client: PaperExchange, cid: str) -> dict[str, Any]:
    return client.create_order(BTC, "limit", "buy", "0.01", "1000", {"clientOrderId": cid})


def canceled_by_venue(client: PaperExchange, cid: str) -> None:
    """An order of the client's that the venue cancels, as an operator would: one event
    that no answer showed the client (its create's are in the create's answer)."""
    client.venue.cancel_on_venue(resting(client, cid)["id"])


class Heard:
    """A connection's events, taken on its loop."""

    def __init__(self) -> None:
        self.events: list[VenueEvent] = []
        self.changed = asyncio.Event()

    def __call__(self, event: VenueEvent) -> None:
        assert threading.current_thread() is threading.main_thread()  # the loop's thread
        self.events.append(event)
        self.changed.set()

    async def until(self, count: int) -> list[VenueEvent]:
        async def wait() -> None:
            while len(self.events) < count:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(wait(), WAIT_S)
        return self.events


def items(stream: PaperStream, events: list[VenueEvent]) -> list[StreamItem]:
    return [stream.read(event) for event in events]


def test_the_accounts_events_between_requests_arrive_in_order_as_lookup_reports() -> None:
    venue = PaperVenue(None, clock=FakeClock())
    ours, theirs = PaperExchange(venue, account="ours"), PaperExchange(venue, account="theirs")

    async def scenario() -> list[StreamItem]:
        heard = Heard()
        stream = PaperStream(ours, heard)
        await stream.open(None)
        try:
            # from other threads, as the venue's callers are
            await asyncio.to_thread(resting, theirs, "not-ours")
            await asyncio.to_thread(canceled_by_venue, ours, "canceled")
            await asyncio.to_thread(resting, ours, "fills")
            await asyncio.to_thread(resting, ours, "also")
            await asyncio.to_thread(venue.set_price, BTC, Decimal(1000))  # fills both
            return items(stream, await heard.until(3))
        finally:
            await stream.close()

    got = asyncio.run(scenario())
    # numbered one by one among what is handed on: another account's make no gap
    assert [item.number for item in got] == [1, 2, 3]
    assert [(r.client_order_id, r.view.status) for r in _reports(got)] == [
        ("canceled", "canceled"), ("fills", "filled"), ("also", "filled")]
    fill = _reports(got)[1]
    [trade] = fill.trades
    assert fill.source == fill.trades_source == "stream" and fill.op == "fetch"
    [booked] = venue.order_trades("ours", int(fill.view.order_id)) if fill.view else []
    assert trade.trade_id == str(booked["id"]) and trade.amount == Decimal("0.01")
    assert fill.view is not None and fill.view.price_step == Decimal("0.01")  # the market's
    assert venue.listening == 0


def _reports(got: list[StreamItem]) -> list[Any]:
    return [item.report for item in got if item.report is not None]


def test_what_a_requests_answer_shows_is_not_handed_on() -> None:
    venue = PaperVenue(None, clock=FakeClock())
    client = PaperExchange(venue)

    async def scenario() -> list[StreamItem]:
        heard = Heard()
        stream = PaperStream(client, heard)
        await stream.open(None)
        with pytest.raises(InsufficientFunds):  # refused: its answer is the error
            client.create_order(BTC, "market", "buy", "1000", None, {"clientOrderId": "broke"})
        client.create_order(BTC, "market", "buy", "0.01", None, {"clientOrderId": "takes"})
        client.cancel_order(resting(client, "rests")["id"], BTC)
        canceled_by_venue(client, "operator")  # the one change no answer showed
        got = items(stream, await heard.until(1))
        await stream.close()
        return got

    [item] = asyncio.run(scenario())
    assert item.number == 1 and item.report is not None
    assert item.report.client_order_id == "operator"


def test_an_outage_refuses_the_connect_and_ends_a_connected_stream() -> None:
    clock = FakeClock()
    venue = PaperVenue(None, clock=clock)
    client = PaperExchange(venue, clock=clock,
                           faults=PaperFaults(outage_after_s=10, outage_duration_s=5))

    async def scenario() -> None:
        heard = Heard()
        stream = PaperStream(client, heard)
        await stream.open(None)
        stream.check()  # up
        clock.advance(11)
        with pytest.raises(ExchangeNotAvailable):
            stream.check()
        venue.create_order("default", BTC, "limit", "buy", Decimal("0.01"), Decimal(1000))
        await asyncio.sleep(0)  # the loop takes what was handed on before this
        assert heard.events == []  # a stream that is down tells nothing
        await stream.close()
        with pytest.raises(ExchangeNotAvailable):
            await PaperStream(client, heard).open(None)
        clock.advance(5)  # over
        again = PaperStream(client, heard)
        await again.open(None)
        again.check()
        await again.close()

    asyncio.run(scenario())
    assert venue.listening == 0


def test_a_loop_that_falls_behind_ends_the_connection_not_the_venue() -> None:
    venue = PaperVenue(None, clock=FakeClock())
    client = PaperExchange(venue)

    async def scenario() -> None:
        heard = Heard()
        stream = PaperStream(client, heard, max_behind=3)
        await stream.open(None)
        for n in range(5):  # the loop is busy here: nothing is taken meanwhile
            canceled_by_venue(client, f"o{n}")
        with pytest.raises(ConnectionError, match="behind"):
            stream.check()
        await asyncio.sleep(0)  # the loop takes what was handed on before this
        assert len(heard.events) == 3  # what was handed on before it ended
        await stream.close()

    asyncio.run(scenario())
    assert len(venue.orders("default")) == 5


def test_closed_it_hands_nothing_on() -> None:
    venue = PaperVenue(None, clock=FakeClock())
    client = PaperExchange(venue)

    async def scenario() -> None:
        heard = Heard()
        stream = PaperStream(client, heard)
        await stream.open(None)
        canceled_by_venue(client, "late")  # handed on, not yet taken when it closes
        await stream.close()
        await asyncio.sleep(0)  # the loop takes what was handed on: nothing goes further
        assert heard.events == [] and venue.listening == 0

    asyncio.run(scenario())


# -- a StreamActor over the paper venue, under a supervisor ---------------------------

@dataclass
class Told:
    """What a StreamActor told OrderActor (a stand-in recording it)."""

    told: queue.Queue[Any]

    def next(self, kind: type[Any]) -> Any:
        deadline = time.monotonic() + WAIT_S
        while True:
            message = self.told.get(timeout=max(0.0, deadline - time.monotonic()))
            if isinstance(message, kind):
                return message

    def reports(self, count: int) -> list[Any]:
        found: list[Any] = []
        while len(found) < count:
            found += self.next(StreamEvents).reports
        return found

    def quiet(self) -> bool:
        """Nothing more was told within a moment."""
        try:
            self.told.get(timeout=0.3)
        except queue.Empty:
            return True
        return False


@dataclass
class World(Told):
    registry: Registry
    venue: PaperVenue
    client: PaperExchange
    health: StreamHealth


@contextmanager
def supervised_stream(exchange: str, build: BuildConnection,
                      stale_s: float) -> Iterator[tuple[Registry, Told, StreamHealth]]:
    """A StreamActor of `exchange` under a supervisor, telling a recording OrderActor."""
    registry = Registry()
    health = StreamHealth([exchange], stale_s, time.time)
    told: queue.Queue[Any] = queue.Queue()
    registry.supervisor = Supervisor.start(
        registry, SupervisorSettings(intensity=5, period_s=60, backoff_initial_s=0),
        time.monotonic, lambda _delay: None, lambda _reason: None)
    registry.start(ORDER_ACTOR, lambda: Orders.start(registry, told))
    registry.start(stream_name(exchange), lambda: StreamActor.start(
        registry, StreamSettings(exchange, build, stale_s=stale_s), health, LogAlerter()))
    try:
        yield registry, Told(told), health
    finally:
        registry.stop_all()


@contextmanager
def world() -> Iterator[World]:
    venue = PaperVenue(None)
    client = PaperExchange(venue)

    def build(on_event: OnEvent) -> StreamConnection:
        return PaperStream(client, on_event)

    try:
        with supervised_stream("paper", build, 10.0) as (registry, told, health):
            yield World(told.told, registry, venue, client, health)
    finally:
        venue.close()


def test_a_restarted_stream_actor_delivers_each_event_once_and_leaks_no_listener() -> None:
    with world() as w:
        assert w.next(StreamConnected).epoch == 1
        canceled_by_venue(w.client, "before")
        [report] = w.reports(1)
        assert report.client_order_id == "before"
        w.registry.tell(stream_name("paper"), Crash("test"))
        assert w.next(StreamConnected).epoch == 2  # the replacement subscribed
        assert w.venue.listening == 1  # the crashed one's listener is gone
        canceled_by_venue(w.client, "after")
        [report] = w.reports(1)
        assert report.client_order_id == "after"
        assert w.quiet()  # told once, not once per listener
        assert w.health.snapshot()["paper"]["reconnects"] == 1
        w.registry.stop_all()
        assert w.venue.listening == 0


class EndsWhileDelivering:
    """A connection that hands on one event and is found ended right after it."""

    def __init__(self, on_event: OnEvent, ends: bool) -> None:
        self.on_event = on_event
        self.ends = ends
        self.over = False

    async def open(self, markets: Any) -> None:
        if self.ends:
            asyncio.get_running_loop().call_soon(self._last_event)

    def _last_event(self) -> None:
        self.over = True
        self.on_event("last")

    def check(self) -> None:
        if self.over:
            raise ConnectionError("the connection ended")

    async def ended(self) -> None:
        await asyncio.get_running_loop().create_future()  # only ever told by an event

    def last_frame(self) -> float:
        return time.time()

    async def heartbeat(self) -> None:
        pass

    def read(self, event: Any) -> StreamItem:
        return StreamItem(None, 0, ExchangeReport(str(event), "fetch", "ok"))

    async def close(self) -> None:
        pass


def test_a_connection_that_ends_while_delivering_is_replaced_at_once() -> None:
    """Its events go on, and it is replaced then, not at the next heartbeat (an hour
    away here): a read loop that looked at the connection only between heartbeats kept
    such a connection, trusted, for up to a third of stale_s."""
    made: list[EndsWhileDelivering] = []

    def build(on_event: OnEvent) -> StreamConnection:
        made.append(EndsWhileDelivering(on_event, ends=not made))
        return made[-1]

    with supervised_stream("x", build, 3 * 3600.0) as (_registry, w, _health):
        assert w.next(StreamConnected).epoch == 1
        [report] = w.reports(1)
        assert report.client_order_id == "last"
        assert w.next(StreamConnected).epoch == 2


class EndsSilently:
    """A connection that ends soon after it opens, with no event to tell of it (as a
    dropped binance stream does while no order changes)."""

    def __init__(self, ends: bool) -> None:
        self.ends = ends
        self._end: asyncio.Future[None] | None = None

    async def open(self, markets: Any) -> None:
        self._end = asyncio.get_running_loop().create_future()
        if self.ends:
            asyncio.get_running_loop().call_soon(self._end.set_result, None)

    def check(self) -> None:
        if self._end is not None and self._end.done():
            raise ConnectionError("the connection ended")

    async def ended(self) -> None:
        assert self._end is not None
        await asyncio.wait({self._end})

    def last_frame(self) -> float:
        return time.time()

    async def heartbeat(self) -> None:
        pass

    def read(self, event: Any) -> StreamItem:
        raise AssertionError("no event comes")

    async def close(self) -> None:
        pass


def test_a_connection_that_ends_without_an_event_is_replaced_at_once() -> None:
    """Not at the next heartbeat (an hour away here), which was the first time the read
    loop looked at a quiet connection."""
    made: list[EndsSilently] = []

    def build(_on_event: OnEvent) -> StreamConnection:
        made.append(EndsSilently(ends=not made))
        return made[-1]

    with supervised_stream("x", build, 3 * 3600.0) as (_registry, w, health):
        assert w.next(StreamConnected).epoch == 1
        assert w.next(StreamConnected).epoch == 2
        assert health.snapshot()["x"]["reconnects"] == 1


def test_a_stopped_stream_leaves_no_task_pending(caplog: pytest.LogCaptureFixture) -> None:
    """The read loop's wait is cancelled when the actor stops; what it waited on must
    end with it, or the closing loop destroys it pending (an error in the log)."""
    def build(_on_event: OnEvent) -> StreamConnection:
        return EndsSilently(ends=False)

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        with supervised_stream("x", build, 3 * 3600.0) as (_registry, w, _health):
            assert w.next(StreamConnected).epoch == 1
        gc.collect()
    assert [r.getMessage() for r in caplog.records if "pending" in r.getMessage()] == []
