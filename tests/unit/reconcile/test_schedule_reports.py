"""Next-run times of the reconciliation schedule, and report pruning."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from actors.orders import rfc3339
from actors.reconcile.reports import append_report, read_reports
from actors.reconcile.schedule import Schedule, next_run


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("schedule,now,expected", [
    (Schedule("hourly", "00:15"), "2024-03-10 10:20", "2024-03-10 11:15"),
    (Schedule("hourly", "09:15"), "2024-03-10 10:05", "2024-03-10 10:15"),
    (Schedule("hourly", "00:15"), "2024-03-10 23:30", "2024-03-11 00:15"),  # past midnight
    (Schedule("daily", "02:00"), "2024-03-10 01:59", "2024-03-10 02:00"),
    (Schedule("daily", "02:00"), "2024-03-10 02:01", "2024-03-11 02:00"),
    (Schedule("daily", "00:00"), "2024-12-31 23:59", "2025-01-01 00:00"),  # year end
    (Schedule("weekly", "02:00", "mon"), "2024-03-10 12:00", "2024-03-11 02:00"),  # sun -> mon
    (Schedule("weekly", "02:00", "mon"), "2024-03-11 02:01", "2024-03-18 02:00"),
    (Schedule("weekly", "23:30", "sun"), "2024-03-11 00:00", "2024-03-17 23:30"),
])
def test_next_run(schedule: Schedule, now: str, expected: str) -> None:
    assert next_run(schedule, at(now)) == at(expected)


def report(started: float) -> dict[str, object]:
    return {"run_id": str(started), "started_at": rfc3339(started),
            "finished_at": rfc3339(started), "exchanges": {}}


def test_reports_older_than_history_days_are_pruned(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "reconciliation.jsonl"
    day = 86_400.0
    now = 1_700_000_000.0
    for age_days in (40, 31, 29, 1):
        append_report(path, report(now - age_days * day), 365, now - age_days * day)
    append_report(path, report(now), 30, now)
    kept = [r["run_id"] for r in read_reports(path)]
    assert kept == [str(now - 29 * day), str(now - 1 * day), str(now)]
    assert all(json.loads(line) for line in path.read_text().splitlines())
    assert not list(path.parent.glob(".*.tmp"))
