"""A real Prometheus scraping a real daemon, with the shipped rules and dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from protocol.errors import ProtocolError
from tests.helpers import ROOT, DaemonProcess, free_port, market_buy, wait_until
from tests.prometheus_support import JOB, PrometheusServer

DASHBOARD = ROOT / "etc" / "grafana" / "orderd-dashboard.json"
# the venue fails every request from 6 s to 12 s after the daemon's start; the breaker
# opens after a few failures and tries again 2 s later
CONFIG = """
[metrics]
listen = "127.0.0.1:{port}"
[alerts]
file = "alerts.jsonl"
[circuit_breaker]
error_threshold = 2.0
warning_threshold = 1.0
cool_down_seconds = 2.0
[resolution]
interval_s = 0.2
[retry]
initial_delay = 0.01
max_delay = 0.02
"""
OUTAGE = """
[[exchanges]]
name = "paper"
driver = "paper"
[exchanges.faults]
outage_after_s = 6.0
outage_duration_s = 6.0
"""


def dashboard_queries(instance: str) -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"].replace("$instance", instance)
            for panel in dashboard["panels"] for target in panel["targets"]]


def quiet(prometheus: PrometheusServer) -> dict[str, dict[str, Any]] | None:
    """The rules once each has been evaluated and none is pending or firing."""
    rules = prometheus.rules()
    if all(r["health"] != "unknown" and r["state"] == "inactive" for r in rules.values()):
        return rules
    return None


def circuit_alert(prometheus: PrometheusServer) -> str:
    """The state of the circuit-open rule: inactive, pending or firing."""
    return str(prometheus.rules()["OrderdCircuitOpen"]["state"])


def test_prometheus_sees_the_daemon_and_the_outage(tmp_path: Path) -> None:
    metrics_port = free_port()
    target = f"127.0.0.1:{metrics_port}"
    daemon = DaemonProcess(tmp_path, extra=CONFIG.format(port=metrics_port),
                           exchanges=OUTAGE).start()
    prometheus = PrometheusServer(tmp_path, target)
    try:
        prometheus.start()
        wait_until(lambda: prometheus.query(f'up{{job="{JOB}"}} == 1'), "the target up",
                   attempts=3000)
        # every metric a dashboard panel draws has a series, every query is valid PromQL
        selector = f'instance="{target}"'
        for expr in dashboard_queries(target):
            prometheus.query(expr)
            for name in re.findall(r"\b((?:orderd|process)_\w+)\{", expr):
                assert prometheus.query(f"{name}{{{selector}}}"), f"no series of {name}"
        # every rule evaluates; a fresh daemon that never reconciled pages for nothing
        # (until the first scrape, the target-missing rule may be pending)
        rules = wait_until(lambda: quiet(prometheus), "every rule evaluated and inactive",
                           attempts=3000)
        assert len(rules) >= 12
        assert {name: r["health"] for name, r in rules.items() if r["health"] != "ok"} == {}

        client = daemon.client()

        def circuit_opened() -> bool:
            try:
                client.submit(market_buy("0.1", "SOL/USD"), wait="durable")
            except ProtocolError as exc:
                return exc.code == "circuit_open"
            return False

        wait_until(circuit_opened, "the circuit to open", attempts=3000)
        wait_until(lambda: circuit_alert(prometheus) == "firing", "the alert to fire",
                   attempts=3000)
        firing = prometheus.rules()["OrderdCircuitOpen"]["alerts"]
        assert [a["labels"]["exchange"] for a in firing] == ["paper"]
        assert firing[0]["labels"]["severity"] == "critical"
        # the venue comes back: a trial call closes the circuit, the alert ends
        wait_until(lambda: circuit_alert(prometheus) == "inactive", "the alert to end",
                   attempts=3000)
        assert prometheus.query(f'orderd_circuit_state{{state="closed", {selector}}} == 1')
    finally:
        prometheus.stop()
        daemon.stop()
