"""The systemd watchdog's rule: every actor alive, and the actors with short messages
answering a Ping in time; an actor whose one message may take minutes is not pinged.

A reconciliation run that takes longer than systemd's watchdog interval used to withhold
WATCHDOG=1: systemd then kills a healthy daemon (WatchdogSec=30s in etc/orderd.service).
The reconciler handles a Ping only between messages, and a run is one message that
asks the exchange (each ask may take up to ask_timeout_s = 30 s) and sleeps
lookup_spacing_ms between up to 500 lookups (25 s of sleeping alone)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq

from actors.circuit.actor import CircuitActor
from actors.exchange.actor import ExchangeActor
from actors.exchange.messages import OrderView
from actors.ledger.store import Ledger
from actors.metrics.actor import MetricsActor
from actors.order.actor import OrderActor
from actors.order.core import NAME as ORDER
from actors.reconcile.actor import NAME as RECONCILER
from actors.reconcile.actor import ReconcilerActor, ReconcilerSettings
from actors.reconcile.messages import RunReconciliation
from actors.runtime import Clock
from actors.stream.actor import StreamActor
from actors.supervisor import Registry, SupervisedActor, Supervisor, SupervisorSettings
from daemon.frontend import Answer, Frontend
from daemon.systemd import Heartbeat, SystemdLoop
from protocol.client import OrderdClient
from tests.helpers import wait_until
from tests.recon_support import EmptyExchange


class SlowExchange(EmptyExchange):
    """Answers open orders once released (an exchange slow to answer, well within
    ask_timeout_s); `asked` is set when the run is waiting for it."""

    def __init__(self) -> None:
        super().__init__()
        self.asked, self.release = threading.Event(), threading.Event()

    def open_orders(self) -> list[OrderView]:
        self.asked.set()
        self.release.wait(10)
        return []


class Notes:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.enabled = True

    def status(self, text: str) -> None:
        self.sent.append(f"STATUS={text}")

    def watchdog(self) -> None:
        self.sent.append("WATCHDOG=1")


def test_a_reconciliation_in_progress_does_not_stop_the_watchdog(tmp_path: Path) -> None:
    Ledger(tmp_path / "ledger.sqlite").close()
    registry = Registry()
    registry.supervisor = Supervisor.start(registry, SupervisorSettings(), time.monotonic,
                                           time.sleep, lambda reason: None)
    settings = ReconcilerSettings(tmp_path / "ledger.sqlite", ("paper",),
                                  tmp_path / "reports.jsonl")
    exchange = SlowExchange()
    registry.start(RECONCILER, lambda: ReconcilerActor.start(
        registry, settings, Clock(), queries=lambda name: exchange))
    notes = Notes()
    loop = SystemdLoop(notes, Heartbeat(registry, 1.0), lambda: "ready",  # type: ignore[arg-type]
                       15.0)
    try:
        loop.beat()
        assert notes.sent == ["STATUS=ready", "WATCHDOG=1"]
        registry.tell(RECONCILER, RunReconciliation())  # as the schedule does
        assert exchange.asked.wait(10), "the run never asked the exchange"
        notes.sent.clear()
        loop.beat()
        # nothing hangs: the run is waiting for an exchange answer it will get
        assert "WATCHDOG=1" in notes.sent, notes.sent
    finally:
        exchange.release.set()
        registry.stop_all()


class Hold:
    """Keeps the actor busy until `release` is set."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release


class ShortActor(SupervisedActor):
    """Stands in for an actor with short messages, OrderActor say."""

    def __init__(self, registry: Registry, name: str) -> None:
        super().__init__(registry, name)
        self._handlers: dict[type, Callable[[Any], Any]] = {Hold: self._hold}

    def _hold(self, message: Hold) -> None:
        message.release.wait(10)


class LongActor(ShortActor):
    long_messages = True


@pytest.fixture()
def registry() -> Any:
    registry = Registry()
    yield registry
    registry.stop_all()


def beat(registry: Registry) -> list[str]:
    notes = Notes()
    SystemdLoop(notes, Heartbeat(registry, 0.2), lambda: "ready",  # type: ignore[arg-type]
                15.0).beat()
    return notes.sent


def test_a_hung_order_actor_withholds_the_watchdog(registry: Registry) -> None:
    registry.start(ORDER, lambda: ShortActor.start(registry, ORDER))
    assert beat(registry) == ["STATUS=ready", "WATCHDOG=1"]
    release = threading.Event()
    registry.tell(ORDER, Hold(release))
    assert beat(registry) == [f"STATUS=ready; not answering: {ORDER} (watchdog withheld)"]
    release.set()
    assert beat(registry) == ["STATUS=ready", "WATCHDOG=1"]


def test_a_busy_long_actor_is_not_pinged_but_a_dead_one_withholds_the_watchdog(
        registry: Registry) -> None:
    registry.start("worker", lambda: LongActor.start(registry, "worker"))
    release = threading.Event()
    registry.tell("worker", Hold(release))
    assert beat(registry) == ["STATUS=ready", "WATCHDOG=1"]
    release.set()
    registry.ref("worker").stop()
    assert beat(registry) == ["STATUS=ready; not answering: worker (watchdog withheld)"]


def test_only_exchange_workers_and_the_reconciler_are_left_unpinged() -> None:
    actors: list[type[SupervisedActor]] = [
        OrderActor, CircuitActor, MetricsActor, StreamActor, ExchangeActor, ReconcilerActor]
    assert [a for a in actors if a.long_messages] == [ExchangeActor, ReconcilerActor]


def test_a_hung_front_end_withholds_the_watchdog(registry: Registry) -> None:
    """The front end is no actor: its loop must go round (here within 1.5 s; an idle
    loop goes round every second)."""
    context: zmq.Context[Any] = zmq.Context()
    release = threading.Event()

    def hold(_request: Any, _args: Any, answer: Answer) -> None:
        release.wait(10)  # a handler must never wait: this one hangs the loop
        answer({})

    frontend = Frontend(context, "inproc://watchdog", 4096, {"ping": hold})
    loops = {"frontend": lambda: frontend.turning(1.5)}
    notes = Notes()
    loop = SystemdLoop(notes, Heartbeat(registry, 0.2, loops),  # type: ignore[arg-type]
                       lambda: "ready", 15.0)
    client = OrderdClient("inproc://watchdog", context=context)
    try:
        loop.beat()  # not started yet
        assert notes.sent == ["STATUS=ready; not answering: frontend (watchdog withheld)"]
        frontend.start()
        loop.beat()
        assert notes.sent[-2:] == ["STATUS=ready", "WATCHDOG=1"]
        client.send("ping")
        wait_until(lambda: not frontend.turning(1.5), "the loop held by its handler")
        notes.sent.clear()
        loop.beat()
        assert notes.sent == ["STATUS=ready; not answering: frontend (watchdog withheld)"]
        release.set()
        assert client.receive()["ok"]  # sent by the handler, before the loop goes round
        wait_until(lambda: frontend.turning(1.5), "the loop going round again")
        loop.beat()
        assert notes.sent[-2:] == ["STATUS=ready", "WATCHDOG=1"]
    finally:
        release.set()
        client.close()
        frontend.close()
        context.term()
