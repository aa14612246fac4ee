"""ReconciliationJob on the paper venue: an order the ledger lost is found and adopted.

    python examples/reconciliation_job_example.py [--state-dir DIR]

Runs offline in a few seconds. It books an order on the paper venue behind the
ledger's back (as if the process had died between the exchange's answer and the
ledger write), then runs one reconciliation. Without --state-dir everything lives
in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.exchange.drivers.paper import PaperVenue
from orderd import ReconciliationJob

LOST_ORDER = "od-lost-1"  # the [orders] client_id_prefix marks it as one of ours


def job_config(state_dir: Path) -> dict[str, Any]:
    """The original module's shape: executor settings, schedule, reporting."""
    return {
        "executor": {
            "state_dir": str(state_dir),
            "exchange": {"name": "paper", "driver": "paper"},
            # look at orders at once; a real job leaves young ones to tracking
            "reconciliation": {"min_age_s": 0},
        },
        "schedule": {"interval": "daily", "time": "02:00"},
        "reporting": {"file": str(state_dir / "reports.jsonl"), "history_days": 30},
        "run_on_start": False,
    }


def book_behind_the_ledger(state_dir: Path) -> None:
    """A resting limit order on the venue that the ledger never recorded."""
    state_dir.mkdir(parents=True, exist_ok=True)
    venue = PaperVenue(state_dir / "paper-paper.sqlite")
    try:
        venue.create_order("default", "BTC/USD", "limit", "buy", Decimal("0.01"),
                           Decimal(1000), client_order_id=LOST_ORDER, time_in_force="GTC")
    finally:
        venue.close()
    print(f"booked {LOST_ORDER} on the paper venue without telling the ledger")


async def reconcile(state_dir: Path) -> None:
    book_behind_the_ledger(state_dir)
    config = job_config(state_dir)
    job = ReconciliationJob(config)
    schedule = config["schedule"]
    print(f"job configured to run {schedule['interval']} at {schedule['time']} UTC; "
          "running once now")
    try:
        report = await job.run_reconciliation()
    finally:
        job.close()
    section = report["exchanges"]["paper"]
    print(f"report {report['run_id']}: {section['counts']}")
    for found in section["discrepancies"]:
        shown = found["exchange"] or {}
        print(f"discrepancy {found['kind']}: {found['client_order_id']} is "
              f"{shown.get('status')} on the exchange, "
              f"{'repaired' if found['repair'] else 'reported only'}")
    for repair in section["repairs"]:
        print(f"repair {repair['kind']} of {repair['client_order_id']}: "
              f"{'adopted' if repair['applied'] else 'not applied'}")
    lines = (state_dir / "reports.jsonl").read_text(encoding="utf-8").splitlines()
    print(f"{len(lines)} report line(s) in {state_dir / 'reports.jsonl'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, help="where the ledger is kept")
    args = parser.parse_args()
    if args.state_dir is not None:
        asyncio.run(reconcile(args.state_dir))
        return
    with tempfile.TemporaryDirectory(prefix="orderd-example-") as folder:
        asyncio.run(reconcile(Path(folder)))


if __name__ == "__main__":
    main()
