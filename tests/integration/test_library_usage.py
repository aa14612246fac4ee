"""The library page's two usage examples of the library, run as written (import path aside)
in a program of their own on the paper venue with no daemon, and what each value
they return means. A program of its own: that it ends by itself is checked too."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from orderd import ReliableOrderExecutor
from tests.helpers import ROOT, wait_until

README = (ROOT / "docs" / "library.md").read_text(encoding="utf-8")
EXIT_TIMEOUT_S = 60.0
"""A program still running after this long is held up by something: a failure."""


def usage_block(marker: str) -> str:
    """The README's one python block containing `marker`."""
    blocks: list[str] = [b for b in re.findall(r"```python\n(.*?)```", README, re.S)
                         if marker in b]
    assert len(blocks) == 1, f"README has {len(blocks)} python blocks with {marker!r}"
    return blocks[0]


def documented_keys(heading: str) -> set[str]:
    """The keys (first column) of the README table under `heading`."""
    table = README.split(heading, 1)[1].split("\n\n", 2)[1]
    return set(re.findall(r"^\| `(\w+)` \|", table, re.M))


def program(tmp_path: Path, block: str, names: list[str]) -> Path:
    """A script running `block` inside an async main (its `await`s need one), then
    printing the named variables as one JSON line."""
    shown = ", ".join(f"{name!r}: {name}" for name in names)
    path = tmp_path / "usage.py"
    path.write_text("import asyncio\nimport json\n\n\nasync def main():\n"
                    f"{textwrap.indent(block, '    ')}"
                    f"    print(json.dumps({{{shown}}}))\n\n\nasyncio.run(main())\n")
    return path


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def printed(stdout: str) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return values


def test_executor_usage_runs_as_written(tmp_path: Path) -> None:
    names = ["order_id", "status", "success", "stats", "reconciliation_result"]
    script = program(tmp_path, usage_block("executor = ReliableOrderExecutor()"), names)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env(),
                            capture_output=True, text=True, timeout=EXIT_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    values = printed(result.stdout)

    order_id = values["order_id"]  # the client order id, which the other calls take
    assert isinstance(order_id, str) and order_id.startswith("od-")
    status = values["status"]  # the order's record: a limit buy far below the market rests
    assert status["client_order_id"] == order_id and status["status"] == "open"
    assert (status["amount"], status["price"], status["filled"]) == ("0.1", "50000", "0")
    assert [step["step"] for step in status["confirmation"]] == ["ack", "verified"]
    assert values["success"] is True  # canceled

    stats = values["stats"]
    assert set(stats) == documented_keys("**Execution statistics**")
    assert stats["orders_by_status"] == {"canceled": 1} and stats["live_orders"] == 0
    assert stats["submit_latency"]["samples"] == 1 and stats["unresolved"]["count"] == 0
    assert stats["circuits"]["paper"]["state"] == "closed"

    report = values["reconciliation_result"]
    assert {"run_id", "started_at", "finished_at", "exchanges"} <= set(report)
    section = report["exchanges"]["paper"]
    assert section["counts"]["ledger_orders"] == 1
    assert section["discrepancies"] == [] and section["errors"] == []

    async def reopened() -> dict[str, Any]:  # the program's ledger, in ./var by default
        async with ReliableOrderExecutor({"state_dir": str(tmp_path / "var")}) as executor:
            return await executor.get_order_status(order_id)

    assert asyncio.run(reopened())["status"] == "canceled"


def test_reconciliation_job_usage_runs_as_written(tmp_path: Path) -> None:
    """`start()` runs the schedule, and a run at once (`run_on_start`), until Ctrl-C;
    then `run_reconciliation()` runs once more and returns the report."""
    script = program(tmp_path, usage_block("job = ReconciliationJob(config)"), ["result"])
    reports = tmp_path / "reconciliation_reports.json"
    process = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: reports.exists() and reports.read_text().count("\n") == 1,
                   "the run at start", attempts=3000)
        assert process.poll() is None  # start() blocks
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=EXIT_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr

    result = printed(stdout)["result"]
    assert {"run_id", "started_at", "finished_at", "exchanges"} <= set(result)
    assert result["exchanges"]["paper"]["errors"] == []
    runs = [json.loads(line) for line in reports.read_text().splitlines()]
    assert len(runs) == 2 and runs[-1]["run_id"] == result["run_id"]
