"""A scheduled reconciliation missed by more than an hour (the machine suspended over
its time, the scheduler thread held up) was skipped: APScheduler drops a run later than
its job's misfire_grace_time, which was 3600 s, so a daily check waited another day.
Now a missed run happens once, late, when the scheduler next looks; several missed runs
are one run (coalesce), never a burst."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobEvent

from actors.ledger.store import Ledger
from actors.reconcile.actor import ReconcilerActor, ReconcilerSettings, ScheduledRuns
from actors.reconcile.messages import RECONCILER
from actors.reconcile.reports import read_reports
from actors.reconcile.schedule import Schedule
from actors.supervisor import Registry
from tests.recon_support import WAIT_S

LATE = timedelta(hours=5)
"""How long ago the newest missed run was due: far beyond an hour of grace."""


def test_runs_missed_for_days_run_once_late(tmp_path: Path) -> None:
    Ledger(tmp_path / "ledger.sqlite").close()
    settings = ReconcilerSettings(ledger_path=tmp_path / "ledger.sqlite", exchanges=(),
                                  report_file=tmp_path / "reports.jsonl")
    registry = Registry()
    registry.start(RECONCILER, lambda: ReconcilerActor.start(registry, settings))
    now = datetime.now(UTC)
    due = now - LATE
    runs = ScheduledRuns(registry, Schedule("daily", f"{due:%H:%M}"))
    outcomes: list[int] = []
    handled = threading.Event()

    def seen(event: JobEvent) -> None:
        outcomes.append(event.code)
        handled.set()

    runs.scheduler.add_listener(seen, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    try:
        runs.start()
        # as after a suspend: the job still waits for a time three days and more ago,
        # the trigger's runs since then are all missed, the newest LATE ago
        runs.job.modify(next_run_time=due - timedelta(days=3))
        assert handled.wait(WAIT_S), "the scheduler handled the missed runs"
        assert outcomes == [EVENT_JOB_EXECUTED]
        assert len(read_reports(settings.report_file)) == 1
        next_run = runs.scheduler.get_job("reconcile").next_run_time
        assert now < next_run <= now + timedelta(days=1)
    finally:
        runs.shutdown()
        registry.stop_all()
