"""Supervision: a bad message costs one reply, a crash loses no message, a storm escalates."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pykka
import pytest

from actors.supervisor import ActorBroken, Registry, SupervisedActor, Supervisor, SupervisorSettings
from actors.supervisor_messages import Crash
from protocol.errors import ProtocolError

WAIT_S = 10.0
NAME = "recorder"


@dataclass(frozen=True)
class Note:
    """Recorded by the actor that handles it; `reply` gets the handling instance."""

    n: int
    reply: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class Boom:
    """Fails in its handler with `error`."""

    error: Exception
    reply: Callable[[Any], None] | None = None


@dataclass(frozen=True)
class Hold:
    """Blocks the actor until `gate` opens, so what follows queues in its inbox."""

    gate: threading.Event


class Recorder(SupervisedActor):
    """Records notes as (instance, n)."""

    def __init__(self, registry: Registry, seen: list[tuple[int, int]], instance: int,
                 fail_start: bool = False) -> None:
        super().__init__(registry, NAME)
        self.seen, self.instance, self.fail_start = seen, instance, fail_start
        self._handlers = {Note: self._note, Boom: self._boom, Hold: self._hold}

    def on_start(self) -> None:
        if self.fail_start:
            raise OSError("cannot start")

    def _note(self, msg: Note) -> int:
        self.seen.append((self.instance, msg.n))
        if msg.reply is not None:
            msg.reply(self.instance)
        return msg.n

    def _boom(self, msg: Boom) -> None:
        raise msg.error

    def _hold(self, msg: Hold) -> None:
        assert msg.gate.wait(WAIT_S)


@dataclass
class World:
    """A registry with one Recorder under a supervisor whose restarts can be held."""

    registry: Registry
    seen: list[tuple[int, int]]
    restart_gate: threading.Event
    escalations: list[str]
    starts: list[int] = field(default_factory=list)

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.005)

    def restarts(self) -> int:
        return int(self.registry.health()[NAME]["restarts"])


@contextmanager
def world(buffer_limit: int = 100, intensity: int = 5,
          failing_starts: int = 0) -> Iterator[World]:
    """`failing_starts`: that many restarts fail in on_start before one succeeds."""
    registry = Registry(buffer_limit=buffer_limit)
    seen: list[tuple[int, int]] = []
    gate = threading.Event()
    gate.set()
    escalations: list[str] = []
    w = World(registry, seen, gate, escalations)

    def factory() -> pykka.ActorRef[Any]:
        instance = len(w.starts)
        w.starts.append(instance)
        return Recorder.start(registry, seen, instance,
                              fail_start=0 < instance <= failing_starts)

    registry.supervisor = Supervisor.start(
        registry, SupervisorSettings(intensity=intensity, period_s=60, backoff_initial_s=0),
        time.monotonic, lambda _delay: gate.wait(WAIT_S), escalations.append)
    registry.start(NAME, factory)
    try:
        yield w
    finally:
        gate.set()
        registry.stop_all()


def replies() -> tuple[list[Any], Callable[[Any], None]]:
    got: list[Any] = []
    return got, got.append


def test_a_failing_message_costs_its_reply_and_the_actor_goes_on() -> None:
    with world() as w:
        got, reply = replies()
        assert w.registry.tell(NAME, Boom(ValueError("bad"), reply))
        assert w.registry.tell(NAME, Boom(ValueError("no reply")))
        assert w.registry.tell(NAME, object())  # no handler knows it: dropped
        assert w.registry.ask(NAME, Note(1)) == 1
        [error] = got
        assert isinstance(error, ProtocolError)
        assert error.code == "internal" and error.retryable and error.retry_after_s == 1.0
        assert w.registry.health()[NAME] == {"alive": True, "restarts": 0}
        assert w.seen == [(0, 1)]


def test_an_ask_gets_its_handler_exception_and_the_actor_lives() -> None:
    with world() as w:
        with pytest.raises(ValueError, match="asked"):
            w.registry.ask(NAME, Boom(ValueError("asked")))
        assert w.registry.ask(NAME, Note(2)) == 2
        assert w.restarts() == 0


def test_a_dead_actor_error_from_a_live_actor_is_only_the_askers() -> None:
    """A handler that met a dead actor further on does not make its own actor look down."""
    with world() as w:
        with pytest.raises(pykka.ActorDeadError, match="further on"):
            w.registry.ask(NAME, Boom(pykka.ActorDeadError("further on")))
        assert w.registry.is_up(NAME) and w.registry.reported("ready") == "ready"
        assert w.registry.tell(NAME, Note(1))
        assert w.registry.ask(NAME, Note(2)) == 2
        assert w.seen == [(0, 1), (0, 2)]


def test_what_is_sent_during_a_restart_reaches_the_replacement_in_order() -> None:
    with world() as w:
        hold = threading.Event()
        w.registry.tell(NAME, Hold(hold))
        w.registry.tell(NAME, Note(1))
        w.registry.tell(NAME, Crash("test"))
        for n in (2, 3):  # queued in the inbox behind the crash
            w.registry.tell(NAME, Note(n))
        w.restart_gate.clear()  # the supervisor holds the restart
        hold.set()
        w.wait_for(lambda: not w.registry.health()[NAME]["alive"], "the crash")
        health = w.registry.health()[NAME]
        assert health["restarts"] == 0 and health["down_s"] >= 0
        assert w.registry.reported("ready") == "starting"
        assert w.registry.reported("halted") == "halted"
        for n in (4, 5):  # sent while it is down
            assert w.registry.tell(NAME, Note(n))
        w.restart_gate.set()
        w.wait_for(lambda: w.restarts() == 1, "the restart")
        w.registry.tell(NAME, Note(6))
        assert w.registry.ask(NAME, Note(7)) == 7
        assert w.seen == [(0, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (1, 7)]
        assert w.registry.reported("ready") == "ready"
        assert w.registry.health()[NAME] == {"alive": True, "restarts": 1}


def test_an_ask_waits_for_the_restart() -> None:
    with world() as w:
        w.restart_gate.clear()
        w.registry.tell(NAME, Crash("test"))
        w.wait_for(lambda: not w.registry.is_up(NAME), "the crash")
        answers: list[Any] = []
        asker = threading.Thread(target=lambda: answers.append(w.registry.ask(NAME, Note(1))))
        asker.start()
        asker.join(0.05)
        assert asker.is_alive() and answers == []  # waiting, not failed
        w.restart_gate.set()
        asker.join(WAIT_S)
        assert answers == [1] and w.seen == [(1, 1)]


def test_an_error_that_breaks_the_actor_answers_and_restarts_it() -> None:
    with world() as w:
        got, reply = replies()
        w.registry.tell(NAME, Boom(ActorBroken("ledger gone"), reply))
        w.registry.tell(NAME, Note(1))
        w.wait_for(lambda: w.restarts() == 1, "the restart")
        assert [e.code for e in got] == ["internal"]
        assert w.registry.ask(NAME, Note(2)) == 2
        assert w.seen == [(1, 1), (1, 2)]


def test_a_broken_ask_restarts_the_actor_and_carries_what_followed() -> None:
    with world() as w:
        hold = threading.Event()
        w.registry.tell(NAME, Hold(hold))
        failed: list[BaseException] = []

        def ask() -> None:
            try:
                w.registry.ask(NAME, Boom(ActorBroken("broken in an ask")))
            except ActorBroken as exc:
                failed.append(exc)

        asker = threading.Thread(target=ask)
        asker.start()
        w.wait_for(lambda: not w.registry.ref(NAME).actor_inbox.empty(), "the ask queued")
        w.registry.tell(NAME, Note(1))  # behind the ask: handled by the replacement
        hold.set()
        asker.join(WAIT_S)
        assert len(failed) == 1
        w.wait_for(lambda: w.restarts() == 1, "the restart")
        assert w.registry.ask(NAME, Note(2)) == 2
        assert w.seen == [(1, 1), (1, 2)]


def test_a_full_buffer_refuses_and_a_given_up_actor_answers_what_waited() -> None:
    with world(buffer_limit=2) as w:
        w.restart_gate.clear()
        w.registry.tell(NAME, Crash("test"))
        w.wait_for(lambda: not w.registry.is_up(NAME), "the crash")
        got, reply = replies()
        assert w.registry.tell(NAME, Note(1, reply))
        assert w.registry.tell(NAME, Note(2))
        assert not w.registry.tell(NAME, Note(3, reply))  # full: the caller answers
        w.registry.give_up(NAME, ProtocolError("halted", "gone", retry_after_s=1.0))
        assert [(e.code, e.message) for e in got] == [("halted", "gone")]
        assert not w.registry.tell(NAME, Note(4))
        with pytest.raises(pykka.ActorDeadError):
            w.registry.ask(NAME, Note(5))
        assert w.seen == []


def test_a_replacement_that_cannot_start_is_tried_again() -> None:
    with world(failing_starts=2) as w:
        w.registry.tell(NAME, Crash("test"))
        w.registry.tell(NAME, Note(1))
        w.wait_for(lambda: w.restarts() == 1, "a replacement that starts")
        assert w.registry.ask(NAME, Note(2)) == 2
        assert len(w.starts) == 4  # the first, two that failed, the one that runs
        assert w.seen == [(3, 1), (3, 2)]
        assert w.escalations == []


def test_past_the_intensity_the_storm_escalates_and_the_actor_is_given_up() -> None:
    with world(intensity=2, failing_starts=5) as w:
        got, reply = replies()
        w.registry.tell(NAME, Crash("test"))
        w.registry.tell(NAME, Note(1, reply))
        w.wait_for(lambda: bool(w.escalations), "the escalation")
        [reason] = w.escalations
        assert "3 actor restarts within 60 s" in reason and NAME in reason
        w.wait_for(lambda: bool(got), "the waiting message answered")
        assert [e.code for e in got] == ["halted"] and got[0].retryable
        assert not w.registry.tell(NAME, Note(2))
