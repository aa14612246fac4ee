"""orderctl against a real daemon, and without one."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT, DaemonProcess, free_port


def orderctl(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "protocol.orderctl", "--endpoint", endpoint,
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_submit_status_list_cancel(daemon: DaemonProcess) -> None:
    placed = orderctl(daemon.control, "--json", "submit", "ETH/USD", "buy", "limit", "0.5",
                      "100", "--client-order-id", "ctl-1")
    assert placed.returncode == 0, placed.stderr
    assert json.loads(placed.stdout)["order"]["status"] == "open"
    status = orderctl(daemon.control, "status", "ctl-1")
    assert status.returncode == 0 and "status: open" in status.stdout
    listing = orderctl(daemon.control, "list", "--symbol", "ETH/USD")
    assert "CLIENT_ORDER_ID" in listing.stdout and "ctl-1" in listing.stdout
    canceled = orderctl(daemon.control, "--json", "cancel", "ctl-1")
    assert json.loads(canceled.stdout)["order"]["status"] == "canceled"


def test_json_output_of_every_reading_command(daemon: DaemonProcess) -> None:
    """Replies hold JSON numbers (latencies, ages): --json prints them as numbers."""
    printed = {}
    for command in ("ping", "health", "stats", "list"):
        result = orderctl(daemon.control, "--json", command)
        assert result.returncode == 0, result.stderr
        printed[command] = json.loads(result.stdout)
        assert isinstance(printed[command], dict)
    assert isinstance(printed["stats"]["unresolved"]["oldest_age_s"], (int, float))


def test_ping_and_health_tables(daemon: DaemonProcess) -> None:
    assert "state: ready" in orderctl(daemon.control, "ping").stdout
    assert "exchange.paper.0" in orderctl(daemon.control, "health").stdout


def test_error_reply_exits_1_with_the_code(daemon: DaemonProcess) -> None:
    result = orderctl(daemon.control, "status", "nope")
    assert result.returncode == 1 and "not_found" in result.stderr


def test_no_daemon_exits_3_with_a_clear_message() -> None:
    result = orderctl(f"tcp://127.0.0.1:{free_port()}", "--timeout", "0.3", "ping")
    assert result.returncode == 3
    assert "no answer" in result.stderr and "is orderd running" in result.stderr
