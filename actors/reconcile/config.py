"""The sections the reconciler is built from: `[reconciliation]` and `[reporting]`
(daemon/wiring.py turns them into its settings; `[schedule]` is `schedule.Schedule`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ReportingConfig:
    """[reporting]: where reconciliation reports go and how long they are kept."""

    file: Path | None = None
    """JSON lines; default `reconciliation.jsonl` in state_dir."""
    history_days: int = 30

    def check(self) -> None:
        if not 1 <= self.history_days <= 3650:
            raise ValueError("history_days: must be from 1 to 3650")


@dataclass(frozen=True)
class ReconciliationConfig:
    """[reconciliation]: what one run does."""

    run_on_start: bool = False
    max_lookups_per_run: int = 500
    lookup_spacing_ms: float = 50.0
    min_age_s: float = 30.0

    def check(self) -> None:
        if not 0 <= self.max_lookups_per_run <= 1_000_000:
            raise ValueError("max_lookups_per_run: must be from 0 to 1000000")
        for name in ("lookup_spacing_ms", "min_age_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must not be negative")
