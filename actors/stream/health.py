"""Whether each exchange's user-data stream is live, shared by the threads that ask.

The stream's thread writes it (connected, frames, gaps, reconnects), OrderActor says
when the catch-up after a connect is done, and tracking, `health` and the metrics read
it. A stream is live when it is connected, caught up, and a frame (event or heartbeat)
came within `stale_s`; only then does tracking slow to its safety interval.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


@dataclass
class StreamState:
    """One exchange's stream, as last seen."""

    connected: bool = False
    trusted: bool = False
    """The catch-up after the current connection is done."""
    epoch: int = 0
    """Connections made so far; a catch-up counts for the connection it started on."""
    last_frame: float | None = None
    """Wall time of the last frame received (event, answer or ping)."""
    lag_s: float = 0.0
    """Delay of the last event: our clock minus its event time."""
    reconnects: int = 0
    gaps: int = 0
    duplicates: int = 0
    events: int = 0
    last_error: str | None = None


class StreamHealth:
    """Every stream's state; thread-safe."""

    def __init__(self, exchanges: Iterable[str], stale_s: float,
                 now: Callable[[], float]) -> None:
        self.stale_s = stale_s
        self._now = now
        self._lock = threading.Lock()
        self._states = {name: StreamState() for name in exchanges}

    def connected(self, exchange: str) -> int:
        """A connection is subscribed; returns its epoch (not trusted until caught up)."""
        with self._lock:
            state = self._states[exchange]
            if state.epoch:
                state.reconnects += 1
            state.epoch += 1
            state.connected, state.trusted = True, False
            state.last_frame, state.last_error = self._now(), None
            return state.epoch

    def caught_up(self, exchange: str, epoch: int) -> None:
        """The catch-up of connection `epoch` is done: the stream is trusted."""
        with self._lock:
            state = self._states.get(exchange)
            if state is not None and state.connected and state.epoch == epoch:
                state.trusted = True

    def catching_up(self) -> dict[str, int]:
        """Exchange -> epoch of each connected stream whose catch-up is not done."""
        with self._lock:
            return {name: s.epoch for name, s in self._states.items()
                    if s.connected and not s.trusted}

    def distrust(self, exchange: str) -> int:
        """A gap: events were lost, a new catch-up is needed; returns the epoch."""
        with self._lock:
            state = self._states[exchange]
            state.gaps += 1
            state.trusted = False
            return state.epoch

    def down(self, exchange: str, error: str) -> bool:
        """The connection is gone; returns whether it was live until now."""
        with self._lock:
            state = self._states[exchange]
            was = state.connected and state.trusted
            state.connected, state.trusted, state.last_error = False, False, error
            return was

    def frame(self, exchange: str, at: float) -> None:
        with self._lock:
            self._states[exchange].last_frame = at

    def event(self, exchange: str, lag_s: float, duplicate: bool) -> None:
        with self._lock:
            state = self._states[exchange]
            state.events += 1
            state.lag_s = lag_s
            state.duplicates += duplicate

    def live(self, exchange: str) -> bool:
        with self._lock:
            state = self._states.get(exchange)
            return state is not None and self._live(state)

    def _live(self, state: StreamState) -> bool:
        return (state.connected and state.trusted and state.last_frame is not None
                and self._now() - state.last_frame <= self.stale_s)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per exchange: live, connected, caught_up, last_frame_age_s, lag_s,
        reconnects, gaps, duplicates, events, last_error (for `health`)."""
        with self._lock:
            now = self._now()
            return {name: {
                "live": self._live(s), "connected": s.connected, "caught_up": s.trusted,
                "last_frame_age_s": None if s.last_frame is None
                else round(max(0.0, now - s.last_frame), 3),
                "lag_s": round(s.lag_s, 3), "reconnects": s.reconnects, "gaps": s.gaps,
                "duplicates": s.duplicates, "events": s.events, "last_error": s.last_error,
            } for name, s in self._states.items()}


class StreamCollector(Collector):
    """The streams' metrics, read from their health at each scrape."""

    def __init__(self, health: StreamHealth) -> None:
        self.health = health

    def collect(self) -> Iterator[Any]:
        snapshot = self.health.snapshot()
        up = GaugeMetricFamily("orderd_stream_up", "1 while the exchange's user-data "
                               "stream is live (connected, caught up, not stale)",
                               labels=["exchange"])
        lag = GaugeMetricFamily("orderd_stream_lag_seconds", "Delay of the last stream "
                                "event behind its event time", labels=["exchange"])
        counters = {key: CounterMetricFamily(f"orderd_stream_{key}", doc, labels=["exchange"])
                    for key, doc in (("reconnects", "Stream connections after the first"),
                                     ("gaps", "Gaps found in the stream's event sequence"),
                                     ("duplicates", "Stream events received twice"),
                                     ("events", "Stream events received"))}
        for name, state in sorted(snapshot.items()):
            up.add_metric([name], 1.0 if state["live"] else 0.0)
            lag.add_metric([name], state["lag_s"])
            for key, family in counters.items():
                family.add_metric([name], state[key])
        yield up
        yield lag
        yield from counters.values()
