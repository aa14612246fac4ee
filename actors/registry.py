"""The registry of supervised actors: each one's current reference by name, and what
becomes of messages sent to an actor while it is down.

Callers look actors up here on every message instead of holding references, so a
restarted actor is reached at once. Between a crash and the restart, messages wait
in a bounded buffer and go to the new actor first thing, in the order they were
sent; so do the messages still queued in the crashed actor's inbox. Nothing sent
to a restarting actor is dropped: it is delivered late, or its sender is told
(`tell` returns False, or a message with a reply callback is answered with an error
once the actor is given up).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.supervisor_messages import ActorCrashed, Crash, Ping
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)

ASK_TIMEOUT_S = 5.0
"""Every ask has a timeout: an ask racing an actor's death can otherwise hang forever."""
START_TIMEOUT_S = 30.0
"""How long a restart waits for the new actor's on_start before handing it its messages
anyway (they then queue in its inbox)."""
BUFFER_LIMIT = 10_000
"""Messages kept for one actor while it is down; beyond that `tell` returns False."""


@dataclass(frozen=True, slots=True)
class Asked:
    """A message sent by `Registry.ask`: its handler's exception goes back to the asker
    (pykka's ask), where the same exception in a told message is the actor's to handle."""

    message: Any
    """The message asked."""


class RestartFailed(Exception):
    """The new actor could not be made or died in its on_start."""


@dataclass
class _Down:
    """An actor between its crash and its replacement."""

    since: float
    """Monotonic time it went down."""
    messages: deque[Any] = field(default_factory=deque)
    """What waits for the replacement, oldest first."""
    given_up: bool = False
    """No replacement will come (restart storm, stop)."""


def answer_lost(message: Any, error: ProtocolError) -> None:
    """Answer a message that will not be handled: its reply callback gets `error`; a
    message without one is only logged."""
    reply = getattr(message, "reply", None)
    if reply is None:
        log.info("message %s not delivered: %s", type(message).__name__, error.message)
        return
    try:
        reply(error)
    except Exception:  # one sender's broken callback must not stop the others' answers
        log.exception("answering an undelivered %s failed", type(message).__name__)


class Registry:
    """Current references by name, readable from any thread."""

    def __init__(self, buffer_limit: int = BUFFER_LIMIT,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        # one lock for references and buffers: a tell either reaches the live actor
        # before its crash drains the inbox, or finds the buffer (see `crashed`)
        self._lock = threading.Condition()
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._factories: dict[str, Callable[[], pykka.ActorRef[Any]]] = {}
        self._restarts: dict[str, int] = {}
        self._order: list[str] = []
        self._down: dict[str, _Down] = {}
        self._stopping = False
        self._limit = buffer_limit
        self._monotonic = monotonic
        self.supervisor: pykka.ActorRef[Any] | None = None

    def start(self, name: str, factory: Callable[[], pykka.ActorRef[Any]]) -> None:
        """Start an actor under supervision."""
        ref = factory()
        with self._lock:
            self._refs[name] = ref
            self._factories[name] = factory
            self._restarts.setdefault(name, 0)
            if name not in self._order:
                self._order.append(name)

    def ref(self, name: str) -> pykka.ActorRef[Any]:
        return self._refs[name]

    # --- sending -------------------------------------------------------------------

    def tell(self, name: str, message: Any) -> bool:
        """Send `message` to actor `name`, or keep it for the actor's replacement while
        it is down. False when it was not taken (no such actor, the buffer is full, the
        actor was given up or the system is stopping): the caller answers its sender."""
        with self._lock:
            down = self._down.get(name)
            if down is None:
                ref = self._refs.get(name)
                if ref is None:
                    return False
                try:
                    ref.tell(message)
                    return True
                except pykka.ActorDeadError:
                    if self._stopping:
                        return False
                    # died, its crash not reported yet: the report comes from its thread
                    down = self._down[name] = _Down(self._monotonic())
            if down.given_up or len(down.messages) >= self._limit:
                log.warning("message %s to %s not taken: the actor is down%s",
                            type(message).__name__, name,
                            "" if down.given_up else " and its buffer is full")
                return False
            down.messages.append(message)
            return True

    def ask(self, name: str, message: Any, timeout: float = ASK_TIMEOUT_S) -> Any:
        """Ask actor `name`, waiting for its restart when it is down (within `timeout`).
        The handler's exception is raised here; pykka.Timeout when no answer came in
        time, ActorDeadError when the actor was given up."""
        deadline = self._monotonic() + timeout
        while True:
            ref = self._await_up(name, deadline)
            try:
                return ref.ask(Asked(message), timeout=max(0.0, deadline - self._monotonic()))
            except pykka.ActorDeadError:
                with self._lock:
                    if ref.is_alive() or self._stopping or self._monotonic() >= deadline:
                        raise  # the handler's own error, or no replacement to ask
                    # not handled (it died first): ask its replacement
                    if self._refs[name] is ref:
                        self._down.setdefault(name, _Down(self._monotonic()))

    def _await_up(self, name: str, deadline: float) -> pykka.ActorRef[Any]:
        with self._lock:
            while True:
                down = self._down.get(name)
                if down is None:
                    return self._refs[name]
                if down.given_up or self._stopping:
                    raise pykka.ActorDeadError(f"actor {name} is not running")
                left = deadline - self._monotonic()
                if left <= 0:
                    raise pykka.Timeout(f"actor {name} was not restarted in time")
                self._lock.wait(left)

    # --- crash and restart ---------------------------------------------------------

    def crashed(self, name: str, ref: pykka.ActorRef[Any], error: str,
                carried: Iterable[Any] = ()) -> None:
        """Called from the crashed actor's thread: keep what was queued for it (after
        `carried`, messages it took and did not handle) and tell the supervisor."""
        with self._lock:
            kept: deque[Any] = deque(carried)
            _drain(ref, kept)
            current = self._refs.get(name)
            if name not in self._down and current is not None and current is not ref \
                    and current.is_alive():
                for message in kept:  # a late report: the replacement runs already
                    current.tell(message)
                return
            down = self._down.setdefault(name, _Down(self._monotonic()))
            kept.extend(down.messages)
            down.messages = kept
        if self.supervisor is not None:
            try:
                self.supervisor.tell(ActorCrashed(name=name, error=error))
            except pykka.ActorDeadError:
                log.error("actor %s crashed while the supervisor is stopped", name)

    def restart(self, name: str) -> None:
        """Replace a crashed actor with a new one from its factory and hand it what waited;
        RestartFailed when the new one cannot start (what waits stays for the next try)."""
        with self._lock:
            factory = self._factories[name]
            old = self._refs[name]
            self._down.setdefault(name, _Down(self._monotonic()))
        if old.is_alive():
            try:
                old.stop(block=True, timeout=ASK_TIMEOUT_S)
            except pykka.Timeout:
                log.warning("actor %s did not stop before its restart", name)
        try:
            ref = factory()
            ref.ask(Ping(), timeout=START_TIMEOUT_S)  # answered once on_start is done
        except pykka.Timeout:
            log.warning("actor %s still starting after %g s", name, START_TIMEOUT_S)
        except Exception as exc:
            raise RestartFailed(f"{type(exc).__name__}: {exc}") from exc
        self._up(name, ref)

    def _up(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        with self._lock:
            if self._stopping:  # stopped meanwhile: what waited was answered then
                ref.stop(block=False)
                return
            self._refs[name] = ref
            self._restarts[name] += 1
            down = self._down.pop(name, None)
            waiting = down.messages if down is not None else deque()
            try:
                while waiting:  # under the lock: nothing sent meanwhile overtakes them
                    ref.tell(waiting[0])
                    waiting.popleft()
            except pykka.ActorDeadError:  # died at once: the next replacement gets them
                assert down is not None
                self._down[name] = down
            self._lock.notify_all()
        if waiting:
            log.warning("actor %s died again right after its restart", name)

    def give_up(self, name: str, error: ProtocolError) -> None:
        """No replacement will come for `name`: answer what waits for it with `error`."""
        with self._lock:
            down = self._down.setdefault(name, _Down(self._monotonic()))
            down.given_up = True
            waiting, down.messages = down.messages, deque()
            self._lock.notify_all()
        for message in waiting:
            answer_lost(message, error)

    def is_up(self, name: str) -> bool:
        with self._lock:
            return name not in self._down and self._refs[name].is_alive()

    # --- state ---------------------------------------------------------------------

    def health(self) -> dict[str, dict[str, Any]]:
        """Each actor's liveness and restarts; an actor that is down also says since when."""
        now = self._monotonic()
        with self._lock:
            health: dict[str, dict[str, Any]] = {}
            for name in self._order:
                down = self._down.get(name)
                alive = down is None and self._refs[name].is_alive()
                health[name] = {"alive": alive, "restarts": self._restarts[name]}
                if down is not None:
                    health[name]["down_s"] = round(now - down.since, 3)
            return health

    def reported(self, state: str) -> str:
        """The daemon state as `ping` and `health` say it: `ready` only while every actor
        is alive, else `starting` (back to `ready` once the restart is done)."""
        if state != "ready":
            return state
        with self._lock:
            if self._down or not all(ref.is_alive() for ref in self._refs.values()):
                return "starting"
        return state

    def refs(self) -> dict[str, pykka.ActorRef[Any]]:
        """The current reference of every actor, the supervisor's included."""
        with self._lock:
            refs = {name: self._refs[name] for name in self._order}
        if self.supervisor is not None:
            refs["supervisor"] = self.supervisor
        return refs

    def names(self) -> list[str]:
        with self._lock:
            return list(self._order)

    def stop_all(self) -> None:
        """Stop every actor in the reverse order of their start; what waits for an actor
        that is down is answered (`halted`: the system is stopping)."""
        if self.supervisor is not None:
            try:
                self.supervisor.stop(block=True, timeout=ASK_TIMEOUT_S)
            except pykka.Timeout:  # busy restarting: it finds the registry stopping
                log.warning("the supervisor did not stop in time")
        with self._lock:
            self._stopping = True  # from now on a dead actor stays dead
            self._lock.notify_all()
        stopping = ProtocolError("halted", "orderd is stopping", retry_after_s=1.0)
        for name in list(self._down):
            self.give_up(name, stopping)
        for name in reversed(self.names()):
            ref = self._refs[name]
            try:
                ref.stop(block=True, timeout=ASK_TIMEOUT_S * 2)
            except (pykka.ActorDeadError, pykka.Timeout):
                log.warning("actor %s did not stop in time", name)


def _drain(ref: pykka.ActorRef[Any], kept: deque[Any]) -> None:
    """Move what waits in a dead actor's inbox to `kept`. An ask is failed instead (its
    future belongs to that inbox); `Registry.ask` then asks the replacement."""
    inbox = ref.actor_inbox  # called from the dead actor's thread: no other reader
    while not inbox.empty():
        envelope = inbox.get()
        if isinstance(envelope.message, Crash):
            continue  # asked of the actor that crashed, not of its replacement
        if envelope.reply_to is None:
            kept.append(envelope.message)
        else:
            dead = pykka.ActorDeadError(f"{ref} stopped before handling the message")
            envelope.reply_to.set_exception(exc_info=(type(dead), dead, None))
