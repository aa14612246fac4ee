"""The paper venue's simulated prices: a seeded random walk driven by a clock."""

from __future__ import annotations

import math
import random
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from venue.model import MARKETS

# Log-return standard deviation per elapsed second (0.01%, ~3% a day).
SIGMA_PER_SECOND = 0.0001


class PriceWalk:
    """Geometric random walk of every market's price, advanced lazily.

    Each advance draws from `Random(f"{seed}:{steps}")`, so the only RNG state
    to persist is the step counter, and replaying the same clock readings
    from the same state gives the same prices. All whole seconds elapsed
    since the last advance are taken as one step with sigma*sqrt(dt), which
    has the same distribution as dt one-second steps but costs O(1) after
    a long pause.
    """

    def __init__(self, seed: int, now: float) -> None:
        self.seed = seed
        self.steps = 0
        self.last_t = now
        self.prices: dict[str, Decimal] = {s: m.start_price for s, m in MARKETS.items()}

    def advance(self, now: float) -> list[str]:
        """Move prices up to `now`; returns the symbols whose price changed."""
        elapsed = now - self.last_t
        # A clock that went backwards (or less than a second) moves nothing.
        if not elapsed >= 1.0:
            return []
        seconds = int(elapsed)
        self.last_t += seconds
        rng = random.Random(f"{self.seed}:{self.steps}")
        self.steps += 1
        scale = SIGMA_PER_SECOND * math.sqrt(seconds)
        changed = []
        for symbol in sorted(self.prices):
            step = MARKETS[symbol].price_step
            moved = float(self.prices[symbol]) * math.exp(scale * rng.gauss(0.0, 1.0))
            new = max(step, Decimal(repr(moved)).quantize(step, rounding=ROUND_HALF_EVEN))
            if new != self.prices[symbol]:
                self.prices[symbol] = new
                changed.append(symbol)
        return changed

    def record(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "steps": self.steps,
            "lastT": self.last_t,
            "prices": {s: str(p) for s, p in self.prices.items()},
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> PriceWalk:
        walk = cls(int(rec["seed"]), float(rec["lastT"]))
        walk.steps = int(rec["steps"])
        # Markets added since the state was written keep their start price.
        walk.prices.update({s: Decimal(p) for s, p in rec["prices"].items() if s in MARKETS})
        return walk
