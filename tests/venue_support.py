"""What the paper venue's unit tests share: a clock that moves only when told."""

from __future__ import annotations

T0 = 1_700_000_000.0


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
