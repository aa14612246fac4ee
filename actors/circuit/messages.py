"""CircuitActor's messages: a worker's ask before a call and its outcome after it, and
the circuits' description for health and stats."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocol.errors import ProtocolError


@dataclass(frozen=True, slots=True)
class MayCall:
    """Ask: may a worker call this exchange now? Answers a Permit."""

    exchange: str
    """Exchange name."""


@dataclass(frozen=True, slots=True)
class Permit:
    """The answer to MayCall."""

    granted: bool
    """Call now."""
    retry_after_s: float = 0.0
    """When refused: seconds to wait."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A finished exchange request, told after the call."""

    exchange: str
    """Exchange name."""
    failed: bool
    """A transient exchange failure (network, timeout, 5xx, rate limit)."""
    error: str = ""
    """The failure's class name, for the log."""


@dataclass(frozen=True, slots=True)
class DescribeCircuits:
    """Tell: report every circuit to `reply` (health and stats)."""

    reply: Callable[[dict[str, Any] | ProtocolError], None]
    """Receives {exchange: {"state", "errors_per_minute"}}, or the error that kept it."""
