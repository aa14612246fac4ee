"""Supervision: a registry of the current actor references and a supervisor that
restarts crashed actors (pykka has none), with jittered backoff and escalation."""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from actors.messages import ActorCrashed, Ping
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)

ASK_TIMEOUT_S = 5.0
"""Every ask has a timeout: an ask racing an actor's death can otherwise hang forever."""


class Registry:
    """Current references by name, readable from any thread.

    Callers look actors up here on every message instead of holding references,
    so a restarted actor is reached at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._factories: dict[str, Callable[[], pykka.ActorRef[Any]]] = {}
        self._restarts: dict[str, int] = {}
        self._order: list[str] = []
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

    def restart(self, name: str) -> None:
        """Replace a dead actor with a new one from its factory."""
        with self._lock:
            factory = self._factories[name]
            old = self._refs[name]
        if old.is_alive():
            old.stop(block=True, timeout=ASK_TIMEOUT_S)
        ref = factory()
        with self._lock:
            self._refs[name] = ref
            self._restarts[name] += 1

    def ref(self, name: str) -> pykka.ActorRef[Any]:
        return self._refs[name]

    def tell(self, name: str, message: Any) -> bool:
        """Send a message to the named actor; False when it is dead (the message is lost)."""
        try:
            self._refs[name].tell(message)
        except (pykka.ActorDeadError, KeyError):
            log.warning("message %s to %s lost: actor not running",
                        type(message).__name__, name)
            return False
        return True

    def ask(self, name: str, message: Any, timeout: float = ASK_TIMEOUT_S) -> Any:
        return self._refs[name].ask(message, timeout=timeout)

    def report_crash(self, name: str, error: str) -> None:
        if self.supervisor is not None:
            try:
                self.supervisor.tell(ActorCrashed(name=name, error=error))
            except pykka.ActorDeadError:
                log.error("actor %s crashed while the supervisor is stopped", name)

    def health(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {name: {"alive": self._refs[name].is_alive(),
                           "restarts": self._restarts[name]} for name in self._order}

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
        """Stop every actor in the reverse order of their start."""
        if self.supervisor is not None:
            self.supervisor.stop(block=True, timeout=ASK_TIMEOUT_S)
        for name in reversed(self.names()):
            ref = self._refs[name]
            try:
                ref.stop(block=True, timeout=ASK_TIMEOUT_S * 2)
            except (pykka.ActorDeadError, pykka.Timeout):
                log.warning("actor %s did not stop in time", name)


class SupervisedActor(pykka.ThreadingActor):
    """An actor that tells the supervisor when an exception kills it."""

    use_daemon_thread = True
    """A program ends when its main thread does, even if it never stopped its actors;
    whoever starts actors stops them at exit (daemon.system registers that)."""

    _handlers: dict[type, Callable[[Any], Any]]

    def __init__(self, registry: Registry, name: str) -> None:
        super().__init__()
        self.registry = registry
        self.name = name

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        self.on_crash()
        self.registry.report_crash(self.name, f"{exception_type.__name__}: {exception_value}")

    def on_crash(self) -> None:
        """Release what the actor holds; called before the supervisor hears of the crash."""

    def on_receive(self, message: Any) -> Any:
        """Dispatch by type through the subclass's `_handlers`; Ping is answered here.

        A command that carries a reply and fails gets `internal` (the bug is logged);
        the actor lives on, so one bad request never costs other clients their
        replies. Anything else that fails kills the actor, and the supervisor
        restarts it."""
        if isinstance(message, Ping):
            return True
        handler = self._handlers[type(message)]
        reply = getattr(message, "reply", None)
        if reply is None:
            return handler(message)
        try:
            return handler(message)
        except Exception:
            log.exception("%s failed on %s", self.name, type(message).__name__)
            reply(ProtocolError("internal", "internal error; see the daemon log",
                                retry_after_s=1.0))
            return None


@dataclass(frozen=True)
class SupervisorSettings:
    """[supervisor] of the configuration."""

    intensity: int = 5
    """Restarts allowed within `period_s` before escalating."""
    period_s: float = 30.0
    """The window of `intensity`."""
    backoff_initial_s: float = 0.05
    """Cap of the delay before the first restart (full jitter, doubling)."""
    backoff_max_s: float = 2.0
    """Largest delay cap."""

    def check(self, key: str) -> None:
        if self.intensity < 1 or self.period_s <= 0:
            raise ValueError(f"{key}.intensity: intensity >= 1 and period_s > 0 required")
        if not 0 <= self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError(f"{key}.backoff_initial_s: must be >= 0 and <= backoff_max_s")


class Supervisor(pykka.ThreadingActor):
    """Restarts crashed actors; too many restarts too fast escalate."""

    use_daemon_thread = True

    def __init__(self, registry: Registry, settings: SupervisorSettings,
                 monotonic: Callable[[], float], sleep: Callable[[float], None],
                 escalate: Callable[[str], None], seed: int = 0,
                 restarted: Callable[[str], None] = lambda _name: None) -> None:
        """restarted: told the name of each actor restarted (its queued messages are lost)."""
        super().__init__()
        self.registry = registry
        self._restarted = restarted
        self.settings = settings
        self._monotonic = monotonic
        self._sleep = sleep
        self._escalate = escalate
        self._rng = random.Random(seed)
        self._recent: deque[float] = deque()
        self._escalated = False

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, Ping):
            return True
        if isinstance(message, ActorCrashed):
            self._crashed(message)
        return None

    def _crashed(self, message: ActorCrashed) -> None:
        now = self._monotonic()
        self._recent.append(now)
        while self._recent and self._recent[0] <= now - self.settings.period_s:
            self._recent.popleft()
        if len(self._recent) > self.settings.intensity:
            if not self._escalated:
                self._escalated = True
                reason = (f"{len(self._recent)} actor restarts within "
                          f"{self.settings.period_s:g} s (last: {message.name}: "
                          f"{message.error})")
                log.critical("restart storm, escalating: %s", reason)
                self._escalate(reason)
            return
        cap = min(self.settings.backoff_max_s,
                  self.settings.backoff_initial_s * 2 ** (len(self._recent) - 1))
        delay = self._rng.uniform(0, cap)
        log.error("actor %s crashed (%s); restarting in %.3f s", message.name,
                  message.error, delay)
        self._sleep(delay)
        try:
            self.registry.restart(message.name)
        finally:  # what was queued for it is lost even when the restart fails
            self._restarted(message.name)
