"""Series that exist before their first event, who halted, and the seeded last success."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pykka
import pytest
from prometheus_client import generate_latest

from actors.metrics.alerts import ALERT_NAMES
from actors.metrics.series import Metrics
from actors.orders import rfc3339
from actors.reconcile.compare import DISCREPANCY_KINDS
from actors.reconcile.reports import append_report, last_successes
from actors.runtime import AUTOMATIC, OPERATOR, DaemonState
from actors.supervisor import Registry
from tests.helpers import ROOT
from tests.integration.test_metrics import sample


def exposition(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_labelled_counters_are_at_zero_before_their_first_event() -> None:
    metrics = Metrics()
    metrics.declare(["paper", "kraken"], "9.8.7")
    text = exposition(metrics)
    for exchange in ("paper", "kraken"):
        for status in ("filled", "canceled", "rejected", "expired"):
            assert f'orderd_orders_total{{exchange="{exchange}",status="{status}"}} 0.0' in text
        assert f'orderd_exchange_request_errors_total{{error="timeout",exchange="{exchange}"}}' \
            in text
        assert f'orderd_circuit_transitions_total{{exchange="{exchange}",state="open"}}' in text
        assert sample(text, "orderd_circuit_state", exchange=exchange, state="closed") == 1
        for kind in DISCREPANCY_KINDS:
            assert (f'orderd_reconciliation_discrepancies_total{{exchange="{exchange}",'
                    f'kind="{kind}"}} 0.0') in text
    for result in ("ok", "errors", "failed"):
        assert f'orderd_reconciliation_runs_total{{result="{result}"}} 0.0' in text
    for name in ALERT_NAMES:
        assert f'orderd_alerts_total{{name="{name}"}} 0.0' in text
    assert 'orderd_build_info{version="9.8.7"} 1.0' in text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process_* reads /proc")
def test_process_metrics_on_the_registry() -> None:
    text = exposition(Metrics())
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                 "process_start_time_seconds", "process_open_fds"):
        assert sample(text, name) > 0, name


def test_the_declared_names_cover_what_the_code_raises() -> None:
    """A name missing here would be born at 1 and its first increase missed."""
    code = "\n".join(p.read_text() for p in (ROOT / "actors").rglob("*.py"))
    for package in ("daemon", "orderd"):
        code += "\n".join(p.read_text() for p in (ROOT / package).rglob("*.py"))
    raised = set(re.findall(r'Alert\(\s*"(\w+)"', code))
    raised |= set(re.findall(r'^\w+ = "(ledger_\w+)"', code, flags=re.M))  # named constants
    raised |= set(re.findall(r'alert_on_failure\([\w.]+, "(\w+)"', code))
    assert raised and raised <= set(ALERT_NAMES)
    reconcile = (ROOT / "actors" / "reconcile" / "compare.py").read_text()
    kinds = set(re.findall(r'"(\w+_(?:mismatch|on_exchange)|overfill)"', reconcile))
    assert kinds and kinds <= set(DISCREPANCY_KINDS)


def halted(metrics: Metrics) -> tuple[float, float]:
    text = exposition(metrics)
    return (sample(text, "orderd_daemon_halted", by="operator"),
            sample(text, "orderd_daemon_halted", by="automatic"))


def test_halted_says_who_halted() -> None:
    state, metrics = DaemonState(), Metrics()
    metrics.watch_state(state)
    state.set("ready")
    assert halted(metrics) == (0, 0)
    state.set("halted", "maintenance", by=OPERATOR)  # the halt command
    assert halted(metrics) == (1, 0) and state.halted_by == "operator"
    state.set("halted", "binance refused the account", by=AUTOMATIC)
    assert halted(metrics) == (0, 1)
    state.set("halted", "taking over", by=OPERATOR)  # does not hide the daemon's halt
    assert halted(metrics) == (0, 1)
    state.set("ready")
    assert halted(metrics) == (0, 0) and state.halted_by is None
    assert sample(exposition(metrics), "orderd_daemon_state", state="ready") == 1


class Idle(pykka.ThreadingActor):
    pass


def test_the_state_gauge_says_starting_while_an_actor_is_down() -> None:
    """As ping and health say it: `ready` only while every actor is alive."""
    state, metrics, registry = DaemonState(), Metrics(), Registry()
    metrics.watch_state(state, registry.reported)
    registry.start("idle", Idle.start)
    state.set("ready")
    try:
        assert sample(exposition(metrics), "orderd_daemon_state", state="ready") == 1
        registry.ref("idle").stop()
        text = exposition(metrics)
        assert sample(text, "orderd_daemon_state", state="starting") == 1
        assert sample(text, "orderd_daemon_state", state="ready") == 0
    finally:
        registry.stop_all()


def report(run: str, finished: float, errors: bool, exchange: str = "paper",
           ) -> dict[str, object]:
    section = {"counts": {}, "errors": [{"query": "x"}] if errors else []}
    return {"run_id": run, "started_at": rfc3339(finished - 5),
            "finished_at": rfc3339(finished), "exchanges": {exchange: section}}


def test_last_success_is_the_newest_run_without_errors_per_exchange(tmp_path: Path) -> None:
    path = tmp_path / "reconciliation.jsonl"
    assert last_successes(path) == {}  # never ran
    now = 1_700_000_000.0
    append_report(path, report("a", now - 7200, errors=False), 30, now)
    append_report(path, report("b", now - 3600, errors=False), 30, now)
    append_report(path, report("c", now - 60, errors=True), 30, now)
    append_report(path, report("d", now - 30, errors=False, exchange="bx"), 30, now)
    with path.open("a") as handle:
        handle.write("not json\n" + json.dumps({"run_id": "e"}) + "\n")
    assert last_successes(path) == pytest.approx({"paper": now - 3600, "bx": now - 30},
                                                 abs=0.001)
