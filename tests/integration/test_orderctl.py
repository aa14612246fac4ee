"""orderctl against a real daemon, and without one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    threads = printed["stats"]["threads_cpu_s"]
    assert {"OrderActor", "ExchangeActor", "frontend"} <= set(threads)
    assert all(isinstance(seconds, (int, float)) for seconds in threads.values())


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


def test_a_submit_without_an_id_gets_one_printed_before_it_is_sent(
        daemon: DaemonProcess) -> None:
    placed = orderctl(daemon.control, "submit", "BTC/USD", "buy", "limit", "0.01", "1000")
    assert placed.returncode == 0, placed.stderr
    cid = placed.stderr.split("client order id ")[1].split()[0]
    assert f"client_order_id: {cid}" in placed.stdout
    assert orderctl(daemon.control, "status", cid).returncode == 0


def test_an_unanswered_submit_says_how_to_learn_its_outcome() -> None:
    silent = f"tcp://127.0.0.1:{free_port()}"
    result = orderctl(silent, "--timeout", "0.3", "submit", "BTC/USD", "buy", "market", "0.01")
    assert result.returncode == 3
    cid = result.stderr.split("client order id ")[1].split()[0]
    assert f"outcome is unknown: run `orderctl status {cid}`" in result.stderr


def test_an_order_that_ended_rejected_exits_4(daemon: DaemonProcess) -> None:
    # far beyond the paper account's 100,000 USD
    result = orderctl(daemon.control, "submit", "BTC/USD", "buy", "market", "1000",
                      "--client-order-id", "ctl-too-big")
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert "status: rejected" in result.stdout
    assert orderctl(daemon.control, "status", "ctl-too-big").returncode == 4


def test_human_output_has_no_python_reprs(daemon: DaemonProcess) -> None:
    placed = orderctl(daemon.control, "submit", "BTC/USD", "buy", "market", "0.01",
                      "--client-order-id", "ctl-trail")
    filled = orderctl(daemon.control, "status", "ctl-trail")
    health = orderctl(daemon.control, "health")
    for text in (placed.stdout, filled.stdout, health.stdout):
        assert "{'" not in text and "[{" not in text and "True" not in text, text
        assert "Decimal(" not in text and "None" not in text, text
    assert "alive: true" in health.stdout
    assert "  - step=" in filled.stdout  # the confirmation trail, a line a step


def test_global_flags_after_the_subcommand_and_version(daemon: DaemonProcess) -> None:
    silent = f"tcp://127.0.0.1:{free_port()}"
    result = orderctl(silent, "ping", "--json", "--endpoint", daemon.control)
    assert result.returncode == 0 and json.loads(result.stdout)["state"] == "ready"
    version = orderctl(silent, "--version")
    assert version.returncode == 0 and version.stdout.startswith("orderctl ")


def test_list_newest_first_and_since(daemon: DaemonProcess) -> None:
    for n in range(3):
        assert orderctl(daemon.control, "submit", "SOL/USD", "buy", "limit", "1", "10",
                        "--client-order-id", f"ctl-new-{n}").returncode == 0
    newest = orderctl(daemon.control, "--json", "list", "--symbol", "SOL/USD", "--newest",
                      "--limit", "2")
    assert [o["client_order_id"] for o in json.loads(newest.stdout)["orders"]] == [
        "ctl-new-2", "ctl-new-1"]
    recent = orderctl(daemon.control, "--json", "list", "--symbol", "SOL/USD", "--since", "10m")
    assert len(json.loads(recent.stdout)["orders"]) == 3
    future = orderctl(daemon.control, "--json", "list", "--since", "2999-01-01T00:00:00Z")
    assert json.loads(future.stdout)["orders"] == []
    bad = orderctl(daemon.control, "list", "--since", "yesterday")
    assert bad.returncode == 2 and "--since" in bad.stderr
    assert "RFC 3339" in bad.stderr and "duration" in bad.stderr  # what it takes


def test_watch_prints_events_as_they_come(daemon: DaemonProcess) -> None:
    watcher = subprocess.Popen(
        [sys.executable, "-m", "protocol.orderctl", "--events", daemon.events, "watch",
         "--status", "canceled", "--count", "1", "--json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # a subscription takes a moment to reach the publisher: cancel until one is seen
        for n in range(50):
            orderctl(daemon.control, "submit", "ETH/USD", "buy", "limit", "0.1", "100",
                     "--client-order-id", f"ctl-watch-{n}")
            orderctl(daemon.control, "cancel", f"ctl-watch-{n}")
            if watcher.poll() is not None:
                break
        out, err = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, err
    event = json.loads(out.splitlines()[0])
    assert event["order"]["status"] == "canceled" and event["seq"] > 0


def test_a_closed_pipe_and_a_bad_endpoint_end_without_a_traceback(
        daemon: DaemonProcess) -> None:
    reader = subprocess.Popen(
        [sys.executable, "-m", "protocol.orderctl", "--endpoint", daemon.control, "health"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None
    reader.stdout.close()  # as `| head` does once it has its lines
    _, err = reader.communicate(timeout=60)
    assert reader.returncode == 141 and b"Traceback" not in err, err
    bad = orderctl("not-an-endpoint", "ping")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "not-an-endpoint" in bad.stderr


def test_both_ids_is_bad_usage(daemon: DaemonProcess) -> None:
    result = orderctl(daemon.control, "status", "ctl-1", "--order-id", "7")
    assert result.returncode == 2 and "not both" in result.stderr


def test_a_timeout_that_is_no_number_of_seconds_is_bad_usage() -> None:
    """A negative timeout waited for ever on a daemon that was down; nan and inf ended
    in a traceback or a message about CURVE keys."""
    nobody = f"tcp://127.0.0.1:{free_port()}"
    for timeout in ("-1", "nan", "inf", "0"):
        result = orderctl(nobody, "--timeout", timeout, "ping")
        assert result.returncode == 2, (timeout, result.stderr)
        assert "--timeout" in result.stderr and "Traceback" not in result.stderr
        assert "CURVE" not in result.stderr


def test_a_since_too_far_back_is_bad_usage() -> None:
    result = orderctl(f"tcp://127.0.0.1:{free_port()}", "--timeout", "0.3", "list",
                      "--since", "99999999999d")
    assert result.returncode == 2, result.stderr
    assert "--since" in result.stderr and "Traceback" not in result.stderr


def test_keygen_into_a_folder_it_cannot_make_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = subprocess.run([sys.executable, "-m", "protocol.orderctl", "keygen",
                             str(blocker / "keys")], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and str(blocker) in result.stderr


def test_a_limit_below_one_is_refused_with_newest_too(daemon: DaemonProcess) -> None:
    """The daemon refuses such a page size; picked here, --limit -1 printed every
    order but one and exited 0."""
    for limit in ("-1", "0"):
        result = orderctl(daemon.control, "list", "--newest", "--limit", limit)
        assert result.returncode == 2, (limit, result.stdout)
        assert "--limit" in result.stderr and result.stdout == ""
