"""Reconciliation reports: JSON lines appended to a file, pruned by age."""

from __future__ import annotations

import errno
import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

DAY_S = 86_400


def _started(line: str) -> float | None:
    try:
        return datetime.fromisoformat(json.loads(line)["started_at"]).timestamp()
    except (ValueError, KeyError, TypeError):
        return None


def append_report(path: Path, report: dict[str, Any], history_days: int, now: float) -> None:
    """Add `report` and drop entries older than `history_days`, atomically (temp + rename),
    on disk when this returns: the run is announced (replied, alerted) after it.

    Lines that cannot be read are kept: pruning never loses what it does not understand.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    oldest = now - history_days * DAY_S
    kept: list[str] = []
    if path.exists():
        for line in path.read_text().splitlines():
            started = _started(line)
            if line.strip() and (started is None or started >= oldest):
                kept.append(line)
    kept.append(json.dumps(report, sort_keys=True))
    temp = path.with_name(f".{path.name}.tmp")
    with temp.open("w") as handle:
        handle.write("\n".join(kept) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Put a rename in `folder` on disk: the new name is in the folder's own data, which
    syncing the file does not write, so a power loss could bring the old file back. POSIX
    only (elsewhere a folder cannot be opened to sync it)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # EINVAL: a file system that cannot sync a folder
            raise
    finally:
        os.close(fd)


def read_reports(path: Path) -> list[dict[str, Any]]:
    """Every report in the file, oldest first."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def last_successes(path: Path) -> dict[str, float]:
    """When each exchange's newest run without errors on it finished (Unix time): the
    file is the record of past runs, so the metric of the last success survives a
    restart. Per exchange: a run of one exchange, or one where another failed, is no
    success of the others. Unreadable lines are skipped, a missing file is no run."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    found: dict[str, float] = {}
    for line in text.splitlines():
        for exchange, finished in _successes(line):
            found[exchange] = max(finished, found.get(exchange, finished))
    return found


def _successes(line: str) -> list[tuple[str, float]]:
    """(exchange, finished) for each exchange a run's report shows without errors."""
    try:
        report = json.loads(line)
        if "found_by" in report:  # a discrepancy tracking found, not a run
            return []
        finished = datetime.fromisoformat(report["finished_at"]).timestamp()
        return [(name, finished) for name, section in report["exchanges"].items()
                if not section["errors"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        return []
