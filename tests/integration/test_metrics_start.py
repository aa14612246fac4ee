"""What a scrape shows right after a start: series at 0, the version, the process, and
the last good reconciliation remembered across a restart; who halted."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon import __version__
from tests.alert_support import lines, scrape
from tests.helpers import DaemonProcess, free_port, wait_until
from tests.integration.test_metrics import sample


def test_a_restarted_daemon_remembers_its_last_reconciliation(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    daemon = DaemonProcess(tmp_path, extra=f'[metrics]\nlisten = "127.0.0.1:{port}"\n'
                                           '[alerts]\nfile = "alerts.jsonl"\n')
    daemon.start()
    try:
        text = scrape(url).decode()
        assert sample(text, "orderd_reconciliation_last_success_timestamp_seconds",
                      exchange="paper") == 0
        assert f'orderd_build_info{{version="{__version__}"}} 1.0' in text
        assert sample(text, "process_start_time_seconds") > 0
        assert 'orderd_orders_total{exchange="paper",status="rejected"} 0.0' in text
        assert 'orderd_reconciliation_runs_total{result="errors"} 0.0' in text

        daemon.client().call("reconcile", {})
        done = sample(scrape(url).decode(),
                      "orderd_reconciliation_last_success_timestamp_seconds", exchange="paper")
        assert done > 0
        daemon.client().call("halt", {"reason": "maintenance"})
        text = scrape(url).decode()
        assert sample(text, "orderd_daemon_halted", by="operator") == 1
        assert sample(text, "orderd_daemon_halted", by="automatic") == 0
        alert = wait_until(lambda: lines(tmp_path / "alerts.jsonl"), "the halt alert")[0]
        assert (alert["name"], alert["severity"]) == ("daemon_halted", "info")
        assert alert["labels"] == {"by": "operator"}
        assert daemon.stop() == 0

        daemon.start(states=("halted",))  # a halt lasts until resume, restarts included
        text = scrape(url).decode()
        # from the report file; the report's time is the run's end, to the millisecond
        seeded = sample(text, "orderd_reconciliation_last_success_timestamp_seconds",
                        exchange="paper")
        assert seeded == pytest.approx(done, abs=1.0)
        # and who made it is remembered with it: still news, not a page
        assert sample(text, "orderd_daemon_halted", by="operator") == 1
        assert sample(text, "orderd_daemon_halted", by="automatic") == 0
    finally:
        daemon.stop()
