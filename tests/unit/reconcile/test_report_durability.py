"""A report is written to a temp file, synced and renamed into place; the rename lives in
the folder's own data, which syncing the file does not write: after a power loss the
report a run announced could be gone (the old file back). Now the folder is synced after
the rename. What the disk does cannot be watched from a test; the child process records
the audit events of the write (Python raises one per file opened and per rename) and shows
the folder opened, for its sync, after the rename."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

CHILD = """
import json, os, sys
from pathlib import Path
from actors.reconcile.reports import append_report

folder = Path(sys.argv[1])
seen = []

def hook(event, args):
    if event == "os.rename" or (event == "open" and isinstance(args[0], (str, os.PathLike))
                                and Path(args[0]) == folder):
        seen.append(event)

sys.addaudithook(hook)
for n in range(3):
    report = {"run_id": str(n), "started_at": "2024-03-10T02:00:00Z",
              "finished_at": "2024-03-10T02:00:01Z", "exchanges": {}}
    append_report(folder / "reconciliation.jsonl", report, 30, 1_710_036_000.0)
print(json.dumps(seen))
"""


@pytest.mark.skipif(os.name != "posix", reason="a folder is synced only on POSIX")
def test_the_folder_is_synced_after_each_report_is_renamed_into_place(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    done = subprocess.run([sys.executable, "-c", CHILD, str(folder)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["os.rename", "open"] * 3
    lines = (folder / "reconciliation.jsonl").read_text().splitlines()
    assert [json.loads(line)["run_id"] for line in lines] == ["0", "1", "2"]
    assert not list(folder.glob(".*.tmp"))
