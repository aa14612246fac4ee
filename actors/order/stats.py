"""Execution statistics kept by OrderActor: latencies and retry counts."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

LATENCY_SAMPLES = 10_000


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


@dataclass
class OrderStats:
    """Counters and a bounded window of submit latencies."""

    submit_latency_s: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_SAMPLES))
    retries: int = 0
    sends: int = 0
    resends: int = 0

    def latency(self) -> dict[str, Any]:
        values = sorted(self.submit_latency_s)
        return {
            "samples": len(values),
            "p50_ms": round(percentile(values, 0.50) * 1000, 3),
            "p90_ms": round(percentile(values, 0.90) * 1000, 3),
            "p99_ms": round(percentile(values, 0.99) * 1000, 3),
            "max_ms": round((values[-1] if values else 0.0) * 1000, 3),
        }
