"""A real daemon's metrics endpoint and alert sinks, and the shipped rules and dashboard."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from protocol.errors import ProtocolError
from tests.alert_support import (
    Webhook,
    check_exposition,
    exec_sink,
    lines,
    names_of,
    scrape,
)
from tests.helpers import (
    ROOT,
    DaemonProcess,
    free_port,
    market_buy,
    resting_limit_buy,
    wait_until,
)

RULES = ROOT / "etc" / "prometheus" / "orderd-rules.yml"
DASHBOARD = ROOT / "etc" / "grafana" / "orderd-dashboard.json"
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "max", "min", "time",
                "le", "exchange", "status", "op", "error", "state", "kind", "result", "actor",
                "name", "sink", "without", "avg", "endpoint", "reason"}


def sample(text: str, metric: str, /, **labels: str) -> float:
    """The value of one sample in a text exposition (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(metric + ("{" if labels else " ")):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def total(text: str, name: str) -> float:
    """The sum of every sample of `name`, whatever its labels."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{"))


def config(tmp_path: Path, port: int, webhook: Webhook, extra: str = "") -> str:
    script, _ = exec_sink(tmp_path)
    return (f'[metrics]\nlisten = "127.0.0.1:{port}"\n'
            f'[alerts]\nfile = "alerts.jsonl"\nexec = "{script}"\n'
            f'webhook_url = "{webhook.url}"\nrepeat_interval_s = 600.0\ntimeout_s = 5.0\n'
            f'{extra}')


def test_scrape_counters_and_halt_alert_in_every_sink(tmp_path: Path) -> None:
    port, webhook = free_port(), Webhook(fail_first=1)  # the webhook's first try fails
    daemon = DaemonProcess(tmp_path, extra=config(tmp_path, port, webhook)).start()
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        client = daemon.client()
        before = scrape(url).decode()
        client.submit(market_buy())
        client.submit(market_buy("0.02"))
        resting = client.submit(resting_limit_buy())
        client.cancel(client_order_id=resting["client_order_id"])
        client.call("reconcile", {})

        def canceled_counted() -> str | None:
            text = scrape(url).decode()
            return text if sample(text, "orderd_orders_total", status="canceled") == 1 else None

        after = wait_until(canceled_counted, "the cancel counted")
        assert sample(after, "orderd_orders_total", exchange="paper", status="filled") == \
            sample(before, "orderd_orders_total", exchange="paper", status="filled") + 2
        assert sample(after, "orderd_orders_submitted_total", exchange="paper") == 3
        assert sample(after, "orderd_submit_latency_seconds_count", exchange="paper") == 3
        assert sample(after, "orderd_exchange_request_duration_seconds_count",
                      exchange="paper", op="create") == 3
        assert sample(after, "orderd_events_published_total") > \
            sample(before, "orderd_events_published_total")
        assert sample(after, "orderd_ledger_commit_duration_seconds_count") > 0
        assert sample(after, "orderd_reconciliation_runs_total", result="ok") == 1
        assert sample(after, "orderd_reconciliation_last_success_timestamp_seconds",
                      exchange="paper") > 0
        assert sample(after, "orderd_circuit_state", exchange="paper", state="closed") == 1
        assert sample(after, "orderd_actor_up", actor="order") == 1
        assert sample(after, "orderd_daemon_state", state="ready") == 1
        assert "client_order_id" not in after and resting["client_order_id"] not in after

        validator = check_exposition(url)
        print(f"exposition checked with {validator}")
        _dashboard_uses_only(names_of(after))

        # halt fires into every sink; a second halt within repeat_interval_s is held back
        client.call("halt", {"reason": "test halt"})
        file_sink, exec_out = tmp_path / "alerts.jsonl", tmp_path / "exec-alerts.jsonl"
        for where in (lambda: lines(file_sink), lambda: lines(exec_out),
                      lambda: webhook.bodies):
            alert = wait_until(where, "the halt alert")[0]
            assert alert["name"] == "daemon_halted" and "test halt" in alert["message"]
        client.call("resume", {})
        wait_until(lambda: sample(scrape(url).decode(), "orderd_daemon_state",
                                  state="ready") == 1, "the daemon to resume")
        client.call("halt", {"reason": "again"})
        wait_until(lambda: sample(scrape(url).decode(), "orderd_alerts_suppressed_total",
                                  name="daemon_halted") == 1, "the repeat to be held back")
        assert [a["name"] for a in lines(file_sink)] == ["daemon_halted"]
        assert webhook.requests == 2  # one failure, one retry that delivered
        with pytest.raises(ProtocolError):
            client.submit(market_buy())
    finally:
        daemon.stop()
        webhook.close()


def _dashboard_uses_only(exported: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", target["expr"])
            used |= {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr)
                     if w not in PROMQL_WORDS}
    assert used and used <= exported, sorted(used - exported)


OUTAGE = """
[circuit_breaker]
error_threshold = 2.0
warning_threshold = 1.0
cool_down_seconds = 30.0
[resolution]
interval_s = 0.2
alert_after_s = 0.5
[retry]
initial_delay = 0.01
max_delay = 0.02
"""
PAPER_WITH_OUTAGE = """
[[exchanges]]
name = "paper"
driver = "paper"
[exchanges.faults]
outage_after_s = 1.0
outage_duration_s = 60.0
"""


def test_outage_alerts_reach_every_sink(tmp_path: Path) -> None:
    """Error rate, circuit open and an order whose outcome stays unknown."""
    port, webhook = free_port(), Webhook()
    daemon = DaemonProcess(tmp_path, extra=config(tmp_path, port, webhook, OUTAGE),
                           exchanges=PAPER_WITH_OUTAGE).start()
    expected = {"exchange_error_rate", "circuit_open", "unknown_order_age"}
    try:
        client = daemon.client()

        def submit() -> bool:
            try:
                client.submit(market_buy("0.1", "SOL/USD"), wait="durable")
            except ProtocolError as exc:
                return exc.code == "circuit_open"
            return False

        wait_until(submit, "the circuit to open", attempts=3000)
        exec_out = tmp_path / "exec-alerts.jsonl"
        sinks: list[Callable[[], list[dict[str, Any]]]] = [
            lambda: lines(tmp_path / "alerts.jsonl"), lambda: lines(exec_out),
            lambda: webhook.bodies]
        for where in sinks:
            wait_until(partial(_names_include, where, expected), f"alerts {expected}")
        text = scrape(f"http://127.0.0.1:{port}/metrics").decode()
        assert sample(text, "orderd_circuit_transitions_total", exchange="paper",
                      state="open") >= 1
        assert total(text, "orderd_exchange_request_errors_total") > 0
        assert sample(text, "orderd_unknown_orders") >= 1
    finally:
        daemon.stop()
        webhook.close()


def test_shipped_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (CI installs Debian's prometheus package)")
    done = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def _names_include(where: Callable[[], list[dict[str, Any]]], expected: set[str]) -> bool:
    return expected <= {alert["name"] for alert in where()}
