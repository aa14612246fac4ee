"""Retry policy (full-jitter backoff), the per-exchange retry budget, and the
rate limiter shared by every worker of one exchange account."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from actors.exchange.errors import ERROR_TABLE, RESOLVE, RETRY, Rule

DEFAULT_RETRYABLE = (
    "NetworkError", "RequestTimeout", "ExchangeNotAvailable", "OnMaintenance",
    "DDoSProtection", "RateLimitExceeded", "InvalidNonce", "BadResponse",
)


MAX_BACKOFF_BASE = 10.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed exchange request is sent again."""

    max_retries: int = 3
    """Retries after the first attempt."""
    backoff_base: float = 2.0
    """Growth of the delay cap per retry."""
    initial_delay: float = 0.2
    """Cap of the delay before the first retry, seconds."""
    max_delay: float = 10.0
    """Largest cap, seconds."""
    retryable_errors: tuple[str, ...] = DEFAULT_RETRYABLE
    """ccxt error class names (or their bases) that may be retried."""

    def check(self) -> None:
        if not 0 <= self.max_retries <= 20:
            raise ValueError("max_retries: must be from 0 to 20")
        if not 1 <= self.backoff_base <= MAX_BACKOFF_BASE:
            # above it, the base's power at the last retry is beyond a float
            raise ValueError(f"backoff_base: must be from 1 to {MAX_BACKOFF_BASE}")
        if not 0 < self.initial_delay <= self.max_delay:
            raise ValueError("initial_delay: must be > 0 and <= max_delay")
        for name in self.retryable_errors:
            if name not in ERROR_TABLE:
                raise ValueError(f"retryable_errors: {name!r} is not a ccxt error class "
                                 f"the error table knows ({', '.join(sorted(ERROR_TABLE))})")

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Full jitter before retry number `retry` (1-based), at least `retry_after`."""
        cap = min(self.max_delay, self.initial_delay * self.backoff_base ** (retry - 1))
        delay = rng.uniform(0.0, cap)
        return max(delay, retry_after or 0.0)

    def retryable(self, error: BaseException) -> bool:
        names = self.retryable_errors
        return any(cls.__name__ in names for cls in type(error).__mro__)

    def allows(self, op: str, error: BaseException, rule: Rule, retries: int) -> bool:
        """Whether a request (`op`: create, cancel, fetch or read) that failed with `error`,
        classified as `rule`, may be sent again after `retries` retries."""
        if rule.action not in (RETRY, RESOLVE):
            return False
        if op == "create" and rule.action == RESOLVE:
            return False  # the create may have landed: resolve by lookup, never re-send
        return retries < self.max_retries and self.retryable(error)


class TokenBucket:
    """A thread-safe token bucket on an injected monotonic clock."""

    def __init__(self, capacity: float, per_second: float,
                 clock: Callable[[], float]) -> None:
        self.capacity = capacity
        self.per_second = per_second
        self._clock = clock
        self._tokens = capacity
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.per_second)
        self._at = now

    def try_take(self) -> bool:
        """Take one token if there is one."""
        return self.take_or_wait() is None

    def take_or_wait(self) -> float | None:
        """Take one token (None), or say how many seconds until one is there."""
        with self._lock:
            self._refill()
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            if self.per_second <= 0:
                return float("inf")
            return (1.0 - self._tokens) / self.per_second

    def set_rate(self, capacity: float, per_second: float) -> None:
        """A new size and pace; the tokens saved up stay, capped by the new size."""
        with self._lock:
            self._refill()
            self.capacity, self.per_second = capacity, per_second
            self._tokens = min(self._tokens, capacity)

    def wait_time(self) -> float:
        """Take one token, returning how long the caller must wait before using it.

        The token is reserved at once (the balance may go negative), so callers in
        several threads are spaced out fairly without holding the lock while waiting.
        """
        with self._lock:
            self._refill()
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.per_second

    def level(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens


class RetryBudget(TokenBucket):
    """Retries one exchange may spend: when empty, errors are returned, not retried."""


class RateLimiter:
    """One request pace for every worker of an exchange account (`rate_limit_per_s`)."""

    def __init__(self, per_second: float | None, clock: Callable[[], float],
                 sleep: Callable[[float], None]) -> None:
        self._bucket = None if per_second is None else TokenBucket(1.0, per_second, clock)
        self._sleep = sleep

    def acquire(self, waits: bool = True) -> None:
        """Take a request's place in the pace; with `waits` False (creates and cancels) it
        is taken at once, and the lookups after it wait the longer."""
        if self._bucket is None:
            return
        wait = self._bucket.wait_time()
        if wait > 0 and waits:
            self._sleep(wait)
