"""Per-client submit rates: a token bucket per (client, exchange), in the front end.

A client is its CURVE public key when CURVE is on, else its ZeroMQ identity.
Buckets are kept for the most recent clients only, so a flood of new
identities cannot grow memory without bound; a forgotten bucket starts full.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from actors.exchange.retry import TokenBucket

MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class Rate:
    """`per_s` tokens a second, at most `burst` saved up."""

    per_s: float
    burst: float


class ClientRateLimiter:
    """Answers "may this client submit now?" and, if not, how long to wait."""

    def __init__(self, rates: dict[str, Rate],
                 monotonic: Callable[[], float] = time.monotonic,
                 max_buckets: int = MAX_BUCKETS) -> None:
        self._rates = dict(rates)
        self._monotonic = monotonic
        self._max_buckets = max_buckets
        self._buckets: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def set_rates(self, rates: dict[str, Rate]) -> None:
        """New rates (reload); buckets keep their tokens, capped by the new burst."""
        with self._lock:
            self._rates = dict(rates)
            for (_client, exchange), bucket in self._buckets.items():
                rate = self._rates.get(exchange)
                if rate is not None:
                    bucket.set_rate(rate.burst, rate.per_s)

    def acquire(self, client: str, exchange: str) -> float | None:
        """None when a submit may go now (a token is taken), else seconds until one may."""
        with self._lock:
            rate = self._rates.get(exchange)
            if rate is None:
                return None
            bucket = self._bucket((client, exchange), rate)
        return bucket.take_or_wait()

    def _bucket(self, key: tuple[str, str], rate: Rate) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate.burst, rate.per_s, self._monotonic)
            if len(self._buckets) > self._max_buckets:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket
