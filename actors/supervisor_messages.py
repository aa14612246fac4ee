"""The supervisor's messages: the ones every supervised actor takes, and the news of a
crash; apart from supervisor.py because the registry, which that module uses, sends them too."""

from __future__ import annotations

from dataclasses import dataclass

# --- to every supervised actor ------------------------------------------------

@dataclass(frozen=True, slots=True)
class Ping:
    """Ask: are you answering? Queued behind the actor's other work, so a hung actor
    does not answer (the systemd watchdog relies on that)."""


@dataclass(frozen=True, slots=True)
class Crash:
    """Fail as if the actor's own state were broken, so the supervisor restarts it.
    Test-only: sent by the `crash` command, which `[supervisor] fault_commands` enables."""

    reason: str
    """Why, for the log."""


# --- to the supervisor -------------------------------------------------------

@dataclass(frozen=True, slots=True)
class ActorCrashed:
    """A supervised actor died of an exception."""

    name: str
    """Its registry name."""
    error: str
    """What killed it (type and message)."""
