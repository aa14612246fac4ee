"""Stream events of an order whose create has not answered wait for that answer, but
not without bound: by count and by age they are dropped, and REST catches what they
told."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.exchange.drivers.paper import PaperExchange, PaperVenue
from actors.order.messages import ExchangeReport, StreamEvents, Submit, Tick
from actors.order.stream_held import HeldEvents
from actors.stream.paper_stream import PaperStream
from protocol.messages import Wait
from protocol.validation import parse_order_spec
from tests.helpers import wait_until
from tests.recon_support import BTC, WAIT_S, Actors, FakeClock, order_actors
from venue.model import VenueEvent

CID = "held-1"


def event(cid: str, n: int = 0) -> ExchangeReport:
    return ExchangeReport(cid, "fetch", "ok", worker=str(n))


def test_events_come_back_in_order_once() -> None:
    clock = FakeClock()
    held = HeldEvents(clock.monotonic, max_age_s=60)
    for n in range(3):
        held.hold("a", event("a", n))
    held.hold("b", event("b"))
    assert [e.worker for e in held.take("a")] == ["0", "1", "2"]
    assert held.take("a") == [] and len(held) == 1 and "b" in held


def test_too_many_drop_the_oldest_orders_events_first() -> None:
    clock = FakeClock()
    held = HeldEvents(clock.monotonic, max_age_s=60, max_events=4)
    for cid in ("a", "a", "b", "c"):
        held.hold(cid, event(cid))
        clock.advance(1)
    held.hold("d", event("d"))  # one too many: the oldest order's go, all of them
    assert "a" not in held and len(held) == 3
    assert [e.client_order_id for cid in "bcd" for e in held.take(cid)] == ["b", "c", "d"]


def test_one_order_cannot_grow_past_the_bound_either() -> None:
    clock = FakeClock()
    held = HeldEvents(clock.monotonic, max_age_s=60, max_events=10)
    for n in range(25):
        held.hold("a", event("a", n))
        assert len(held) <= 10


def test_events_older_than_the_bound_are_dropped_even_with_no_news() -> None:
    clock = FakeClock()
    held = HeldEvents(clock.monotonic, max_age_s=60)
    held.hold("old", event("old"))
    clock.advance(30)
    held.hold("young", event("young"))
    clock.advance(30)
    held.expire()
    assert "old" in held  # 60 s is within the bound
    clock.advance(1)
    held.expire()  # a tick: nothing new came for either
    assert "old" not in held and "young" in held and len(held) == 1
    clock.advance(30)
    held.expire()
    assert len(held) == 0


# -- in OrderActor ---------------------------------------------------------------------

class Gated(PaperExchange):
    """Books a create at once, sets `booked`, then holds its answer until `gate` opens."""

    def __init__(self, venue: PaperVenue, gate: threading.Event, booked: threading.Event,
                 clock: FakeClock) -> None:
        super().__init__(venue, clock=clock.now, sleep=clock.sleep)
        self.gate = gate
        self.booked = booked

    def create_order(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        answer = super().create_order(*args, **kwargs)
        self.booked.set()  # the venue told its listeners of the order before it answered
        assert self.gate.wait(WAIT_S)
        return answer


def submit_unanswered(actors: Actors, booked: threading.Event) -> list[ExchangeReport]:
    """A resting buy, booked, filled on the venue while its create's answer is held; the
    venue's events of it as the stream tells them."""
    heard: list[VenueEvent] = []
    actors.venue.add_listener(heard.append)
    done: Future[Any] = Future()
    spec = parse_order_spec({"symbol": BTC, "side": "buy", "type": "limit", "amount": "0.01",
                             "price": "1000", "client_order_id": CID})
    actors.tell(Submit(spec, Wait.DURABLE, done.set_result))
    assert done.result(timeout=WAIT_S)["order"]["status"] == "pending_submit"
    assert booked.wait(WAIT_S), "the create was not booked"  # its worker waits at the gate
    assert heard
    actors.venue.set_price(BTC, Decimal("999"))
    stream = PaperStream(PaperExchange(actors.venue), lambda _event: None)
    reports = [stream.read(e).report for e in heard]
    return [r for r in reports if r is not None]


def fill_sources(actors: Actors, clock: FakeClock) -> list[str]:
    """The sources of the order's fills once it is filled, time moving on in ticks (for
    lookups and tracking, as the daemon's ticker would)."""

    def filled() -> dict[str, Any] | None:
        order = actors.status(CID)
        if order["status"] == "filled":
            return order
        clock.advance(0.5)
        actors.tell(Tick(clock.monotonic()))
        return None

    order = wait_until(filled, f"{CID} filled", attempts=int(WAIT_S / 0.01))
    return [s["source"] for s in order["confirmation"] if s["step"] == "fill"]


def test_events_that_wait_for_the_create_are_applied_after_its_answer(tmp_path: Path) -> None:
    clock, gate, booked = FakeClock(), threading.Event(), threading.Event()
    with order_actors(tmp_path, clock, client=lambda v: Gated(v, gate, booked, clock)) as actors:
        reports = submit_unanswered(actors, booked)
        assert [r.view.status for r in reports if r.view] == ["open", "filled"]
        actors.tell(StreamEvents("paper", tuple(reports)))
        # asked through the same inbox after the events, so answered once they are taken
        assert actors.status(CID)["status"] == "pending_submit"  # held, not applied
        gate.set()  # the create answers "open"; what the stream told follows
        assert fill_sources(actors, clock) == ["stream"]


def test_a_create_unanswered_too_long_holds_nothing_and_rest_catches_up(
        tmp_path: Path) -> None:
    clock, gate, booked = FakeClock(), threading.Event(), threading.Event()
    with order_actors(tmp_path, clock, client=lambda v: Gated(v, gate, booked, clock),
                      send_deadline_s=10.0) as actors:
        reports = submit_unanswered(actors, booked)
        actors.tell(StreamEvents("paper", tuple(reports)))
        assert actors.status(CID)["status"] == "pending_submit"  # the events are held now
        clock.advance(21.0)  # twice the send deadline: the events go, the create is looked up
        actors.tell(Tick(clock.monotonic()))
        gate.set()
        sources = fill_sources(actors, clock)
        assert sources and "stream" not in sources  # the order's own lookup found the fill
        assert len(sources) == 1
