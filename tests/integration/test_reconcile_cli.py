"""Reconciliation through the running daemon (orderctl reconcile) and as a one-off job."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, DaemonProcess, market_buy, resting_limit_buy


def test_status_shows_the_confirmation_trail(daemon: DaemonProcess) -> None:
    client = daemon.client()
    client.submit(market_buy(client_order_id="conf-1"))
    steps: list[str] = []
    for _ in range(200):  # the verifying fetch follows the ack
        steps = [s["step"] for s in client.status(client_order_id="conf-1")["confirmation"]]
        if "fill" in steps:
            break
    assert steps == ["ack", "verified", "fill"]


def test_orderctl_reconcile_asks_the_daemon(daemon: DaemonProcess) -> None:
    daemon.client().submit(resting_limit_buy(client_order_id="rec-1"))
    result = subprocess.run(
        [sys.executable, "-m", "protocol.orderctl", "--endpoint", daemon.control, "--json",
         "reconcile"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["report"]
    section = report["exchanges"]["paper"]
    assert section["errors"] == [] and section["counts"]["exchange_open"] >= 1
    assert (daemon.state_dir / "reconciliation.jsonl").exists()
    unknown = subprocess.run(
        [sys.executable, "-m", "protocol.orderctl", "--endpoint", daemon.control,
         "reconcile", "--exchange", "nope"], cwd=ROOT, capture_output=True, text=True,
        timeout=60)
    assert unknown.returncode == 1 and "unknown_exchange" in unknown.stderr


def test_run_once_exits_0_with_a_report(tmp_path: Path) -> None:
    config = tmp_path / "orderd.toml"
    config.write_text('state_dir = "state"\n[reporting]\nfile = "out/report.jsonl"\n')
    result = subprocess.run(
        [sys.executable, "-m", "orderd.reconciliation_job", "--config", str(config),
         "--run-once"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "out" / "report.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["exchanges"]["paper"]["errors"] == []


def test_run_once_with_its_metrics_port_taken_names_the_key(tmp_path: Path) -> None:
    """The job serves [metrics] listen as the daemon does; a port another process holds
    (the daemon's own, on a copy of its file) is one line naming the key, as at the
    daemon's start, not a traceback."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = tmp_path / "orderd.toml"
        config.write_text(f'state_dir = "state"\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
        result = subprocess.run(
            [sys.executable, "-m", "orderd.reconciliation_job", "--config", str(config),
             "--run-once"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"cannot start: metrics.listen: cannot serve on 127.0.0.1:{port}" in result.stderr
