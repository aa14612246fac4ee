"""Supervision: actors that survive a bad message, and a supervisor that restarts
crashed ones (pykka has none), with jittered backoff and escalation. The registry of
current references, which keeps messages for an actor while it restarts, is in
`actors.registry`."""

from __future__ import annotations

import logging
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pykka

from actors.registry import ASK_TIMEOUT_S, Asked, Registry, RestartFailed
from actors.supervisor_messages import ActorCrashed, Crash, Ping
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)

__all__ = ["ASK_TIMEOUT_S", "ActorBroken", "Registry", "SupervisedActor", "Supervisor",
           "SupervisorSettings"]


class ActorBroken(Exception):
    """The actor's own state cannot be used any more (e.g. its ledger connection broke):
    the actor crashes and the supervisor replaces it. Any other exception in a handler
    costs only the message that raised it."""


class SupervisedActor(pykka.ThreadingActor):
    """An actor that survives a bad message and tells the supervisor when it crashes."""

    use_daemon_thread = True
    """A program ends when its main thread does, even if it never stopped its actors;
    whoever starts actors stops them at exit (daemon.system registers that)."""

    long_messages: ClassVar[bool] = False
    """True for an actor whose one message may rightly run far longer than systemd's
    watchdog allows (exchange requests through timeouts and retries, a whole
    reconciliation): the watchdog then asks only that it is alive, since it answers a
    Ping only between messages (see daemon.systemd.Heartbeat)."""

    _handlers: dict[type, Callable[[Any], Any]]

    def __init__(self, registry: Registry, name: str) -> None:
        super().__init__()
        self.registry = registry
        self.name = name
        self._broken: str | None = None
        self._carried: list[Any] = []  # taken, not handled, for the replacement

    def on_failure(self, exception_type: Any, exception_value: Any, traceback: Any) -> None:
        try:
            self.on_crash()
        except Exception:  # the report below must go out whatever happens here
            log.exception("%s: releasing after the crash failed", self.name)
        self.registry.crashed(self.name, self.actor_ref,
                              f"{exception_type.__name__}: {exception_value}", self._carried)

    def on_crash(self) -> None:
        """Release what the actor holds and answer what it holds replies for; called
        before the supervisor hears of the crash."""

    def breaks(self, error: Exception) -> bool:
        """Whether `error`, raised by a handler, leaves the actor's state unusable (it
        then crashes, as with ActorBroken); the actor's own judgement."""
        return False

    def on_message_failed(self, message: Any) -> None:
        """A handler failed on `message` (logged already): its sender gets a retryable
        `internal` error, where it gave a reply callback; otherwise it is dropped.
        Actors whose messages carry other duties (reports to send) override this."""
        reply = getattr(message, "reply", None)
        if reply is not None:
            reply(ProtocolError("internal", f"internal error in the {self.name} actor; "
                                "see the daemon log", retry_after_s=1.0))

    def on_receive(self, message: Any) -> Any:
        """Dispatch by type through the subclass's `_handlers`; Ping and Crash are
        answered here. A handler's exception costs only its message (see
        `on_message_failed`) unless it breaks the actor; an asked message's exception
        goes back to the asker."""
        asked = isinstance(message, Asked)
        if asked:
            message = message.message
        if isinstance(message, Ping):
            return True
        if self._broken is not None:  # the replacement handles it
            if not asked and not isinstance(message, Crash):
                self._carried.append(message)
            raise ActorBroken(self._broken)
        if isinstance(message, Crash):
            self._break(f"crash requested: {message.reason}", asked)
        try:
            return self._handlers[type(message)](message)
        except Exception as exc:
            breaking = isinstance(exc, ActorBroken) or self.breaks(exc)
            if asked and not breaking:
                raise
            log.exception("%s failed on %s", self.name, type(message).__name__)
            try:
                self.on_message_failed(message)
            except Exception:  # answering is best effort; the actor goes on
                log.exception("%s: answering the failed %s failed", self.name,
                              type(message).__name__)
            if breaking:
                self._break(f"{type(exc).__name__}: {exc}", asked)
            return None

    def _break(self, reason: str, asked: bool) -> None:
        """Crash now; an ask cannot crash the actor (pykka hands its exception to the
        asker), so a tell to itself does, and what comes before it is carried over."""
        self._broken = reason
        if asked:
            self.actor_ref.tell(Crash(reason))
        raise ActorBroken(reason)


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
    fault_commands: bool = False
    """Test-only: serve the `crash` command, which makes a named actor crash."""

    def check(self) -> None:
        if self.intensity < 1 or self.period_s <= 0:
            raise ValueError("intensity: intensity >= 1 and period_s > 0 required")
        if not 0 <= self.backoff_initial_s <= self.backoff_max_s:
            raise ValueError("backoff_initial_s: must be >= 0 and <= backoff_max_s")


class Supervisor(pykka.ThreadingActor):
    """Restarts crashed actors; too many restarts too fast escalate."""

    use_daemon_thread = True

    def __init__(self, registry: Registry, settings: SupervisorSettings,
                 monotonic: Callable[[], float], sleep: Callable[[float], None],
                 escalate: Callable[[str], None], seed: int = 0) -> None:
        super().__init__()
        self.registry = registry
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
        name = message.name
        if self.registry.is_up(name):
            return  # a second report of a crash already repaired
        now = self._monotonic()
        self._recent.append(now)
        while self._recent and self._recent[0] <= now - self.settings.period_s:
            self._recent.popleft()
        if len(self._recent) > self.settings.intensity:
            self._storm(message)
            return
        cap = min(self.settings.backoff_max_s,
                  self.settings.backoff_initial_s * 2 ** (len(self._recent) - 1))
        delay = self._rng.uniform(0, cap)
        log.error("actor %s crashed (%s); restarting in %.3f s", name, message.error, delay)
        self._sleep(delay)
        try:
            self.registry.restart(name)
        except RestartFailed as exc:  # tried again, and counted, like a crash
            log.error("actor %s did not start again: %s", name, exc)
            self.actor_ref.tell(ActorCrashed(name, f"restart failed: {exc}"))

    def _storm(self, message: ActorCrashed) -> None:
        """Past the intensity: the actor stays down, what waits for it is answered, and
        the owner of the system is told (once) to stop."""
        self.registry.give_up(message.name, ProtocolError(
            "halted", f"the {message.name} actor is down after a restart storm",
            retry_after_s=1.0))
        if self._escalated:
            return
        self._escalated = True
        reason = (f"{len(self._recent)} actor restarts within {self.settings.period_s:g} s "
                  f"(last: {message.name}: {message.error})")
        log.critical("restart storm, escalating: %s", reason)
        self._escalate(reason)
