"""Which fault the paper venue's HTTP server applies to a request or a stream event.

Two sources, in this order: a scripted queue (`POST /_venue/faults`), whose
first entry matching the request is consumed, then seeded random faults at
the configured rates. Deterministic for a given seed and request sequence.
Stream faults are scripted only, and each spoils the next event pushed on a
user-data stream; requests never consume them, nor events request faults.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

CREATE = ("POST", "/api/v3/order")

# Before the request reaches the book: nothing happened on the venue.
BEFORE = ("timeout_before_booking", "drop_before_booking", "http_503", "http_429",
          "code_1001", "reject", "lagging_not_found")
# After the book did its work: the effect stands, but the answer is lost or unclear
# (`garbage_after_booking`: a 200 whose body is not JSON; `no_id_after_booking`: a 200
# without the order's id; `duplicate_trades`: every trade listed twice, the copy under
# another id).
# `hold_answer`: the answer is sent as it is, once `POST /_venue/release` lets it go (a
# gate a test opens when it is ready, instead of a delay it must fit in).
AFTER = ("timeout_after_booking", "drop_after_booking", "code_1007", "garbage_after_booking",
         "no_id_after_booking", "duplicate_trades", "hold_answer")
# Held `delay_s` in transit, then handled: the book checks the request's recvWindow
# when it arrives, so a create held within its window is booked late.
LATE = ("late_booking",)
# The next user-data stream event: the connection is dropped instead (no close frame),
# stalled (nothing at all is sent for `delay_s`, then everything held back is),
# the event is lost (the stream goes on), or sent twice.
STREAM = ("stream_drop", "stream_stall", "stream_drop_event", "stream_duplicate_event")
FAULTS = BEFORE + AFTER + LATE + STREAM

# Random transient errors cycle through these, so a client meets every kind.
TRANSIENT_CYCLE = ("http_503", "code_1001", "drop_before_booking", "http_429")


@dataclass(frozen=True)
class VenueFaults:
    """Random faults of the HTTP venue (the `orderd paper-venue` fault flags)."""

    latency_ms: float = 0
    """Delay before each API request is handled."""
    error_rate: float = 0
    """Chance an API request fails before the book (503, -1001, dropped, 429)."""
    ambiguous_rate: float = 0
    """Chance a create is booked but answered ambiguously (dropped, -1007, late)."""
    reject_rate: float = 0
    """Chance a create is refused with -2010 without being booked."""
    ambiguous_delay_s: float = 0
    """If above 0, ambiguous creates may also answer only after this many seconds."""
    retry_after_s: int = 1
    """The Retry-After of a random 429."""
    seed: int = 0
    """Seed of the fault RNG."""

    def __post_init__(self) -> None:
        for name in ("error_rate", "ambiguous_rate", "reject_rate"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.latency_ms < 0 or self.ambiguous_delay_s < 0 or self.retry_after_s < 0:
            raise ValueError("latency_ms, ambiguous_delay_s and retry_after_s must not be negative")


@dataclass(frozen=True)
class Fault:
    """One fault to apply to one request."""

    fault: str
    """One of FAULTS."""
    path: str | None = None
    """The request path it matches (None: any API path)."""
    method: str | None = None
    """The HTTP method it matches (None: any)."""
    delay_s: float = 1.0
    """How long a timeout fault holds the answer back (late_booking: the request;
    stream_stall: the stream)."""
    retry_after_s: int = 1
    """The Retry-After header of http_429."""

    @property
    def before_booking(self) -> bool:
        return self.fault in BEFORE

    @property
    def stream(self) -> bool:
        return self.fault in STREAM

    def matches(self, method: str, path: str) -> bool:
        return (not self.stream and self.path in (None, path)
                and self.method in (None, method))

    @classmethod
    def parse(cls, item: Any) -> Fault:
        """A script entry from JSON; ValueError names what is wrong."""
        if not isinstance(item, dict):
            raise ValueError("each script entry must be an object")
        unknown = set(item) - {"fault", "path", "method", "delay_s", "retry_after_s"}
        if unknown:
            raise ValueError(f"unknown script keys: {', '.join(sorted(unknown))}")
        if item.get("fault") not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)}")
        delay, retry = item.get("delay_s", 1.0), item.get("retry_after_s", 1)
        if not isinstance(delay, int | float) or delay < 0:
            raise ValueError("delay_s must be a number >= 0")
        if not isinstance(retry, int) or retry < 0:
            raise ValueError("retry_after_s must be an integer >= 0")
        method = item.get("method")
        if item["fault"] in STREAM and (method is not None or item.get("path") is not None):
            raise ValueError("a stream fault takes no path or method (it spoils the next event)")
        return cls(item["fault"], item.get("path"), method.upper() if method else None,
                   float(delay), retry)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultPlan:
    """The faults to come: a scripted queue, then seeded chance. Thread-safe."""

    def __init__(self, faults: VenueFaults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._lock = threading.Lock()
        self._script: list[Fault] = []
        self._transient = 0
        self._ambiguous = 0
        self._released = threading.Condition(self._lock)
        self._held = 0
        self._releases = 0

    def script(self, entries: list[Any]) -> None:
        """Replace the scripted queue (all entries are checked first)."""
        parsed = [Fault.parse(item) for item in entries]
        with self._lock:
            self._script = parsed

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_json() for fault in self._script]

    def next(self, method: str, path: str) -> Fault | None:
        """The fault for this API request, if any."""
        with self._lock:
            for index, fault in enumerate(self._script):
                if fault.matches(method, path):
                    return self._script.pop(index)
            return self._random(method, path)

    def hold(self, stopping: threading.Event) -> None:
        """Wait until the next release (or until the server stops): a hold_answer."""
        with self._released:
            self._held += 1
            releases = self._releases
            while self._releases == releases and not stopping.is_set():
                self._released.wait()
            self._held -= 1

    def held(self) -> int:
        """How many answers are held now."""
        with self._lock:
            return self._held

    def release(self) -> int:
        """Let every held answer go; how many there were."""
        with self._released:
            self._releases += 1
            self._released.notify_all()
            return self._held

    def next_stream(self) -> Fault | None:
        """The scripted fault for the next user-data stream event, if any."""
        with self._lock:
            for index, fault in enumerate(self._script):
                if fault.stream:
                    return self._script.pop(index)
            return None

    def _random(self, method: str, path: str) -> Fault | None:
        faults = self.faults
        if self._chance(faults.error_rate):
            name = TRANSIENT_CYCLE[self._transient % len(TRANSIENT_CYCLE)]
            self._transient += 1
            return Fault(name, retry_after_s=faults.retry_after_s)
        if (method, path) != CREATE:
            return None
        if self._chance(faults.reject_rate):
            return Fault("reject")
        if self._chance(faults.ambiguous_rate):
            kinds = ["drop_after_booking", "code_1007"]
            if faults.ambiguous_delay_s > 0:
                kinds.append("timeout_after_booking")
            name = kinds[self._ambiguous % len(kinds)]
            self._ambiguous += 1
            return Fault(name, delay_s=faults.ambiguous_delay_s)
        return None

    def _chance(self, rate: float) -> bool:
        return rate > 0 and (rate >= 1 or self._rng.random() < rate)
