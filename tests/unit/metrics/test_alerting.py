"""Alert routing: rate limiting on an injected clock, sinks that fail or hang, and the
alerts the actor system raises itself."""

from __future__ import annotations

import os
from pathlib import Path

from actors.metrics.actor import NAME, AlertRouter, MetricsActor
from actors.metrics.alert_sinks import AlertSettings, RepeatLimiter
from actors.metrics.alerts import Alert
from actors.metrics.messages import ReloadAlerts
from actors.metrics.series import Metrics
from actors.runtime import Clock, DaemonState
from actors.supervisor import Registry
from actors.supervisor_messages import Ping
from daemon.config import Config
from daemon.system import ActorSystem
from tests.alert_support import Webhook, exec_sink, lines
from tests.helpers import wait_until


def test_repeats_are_held_back_until_the_interval_passes() -> None:
    now = [0.0]
    limiter = RepeatLimiter(60.0, lambda: now[0])
    alert = Alert("circuit_open", "critical", "x", {"exchange": "a", "run_id": "1"})
    assert limiter.admit(alert) == 0
    assert limiter.admit(Alert("circuit_open", "critical", "y", {"exchange": "a",
                                                                  "run_id": "2"})) is None
    assert limiter.admit(Alert("circuit_open", "critical", "x", {"exchange": "b"})) == 0
    now[0] = 59.0
    assert limiter.admit(alert) is None
    now[0] = 60.0
    assert limiter.admit(alert) == 2  # let through, saying two repeats were held back


def test_a_hanging_sink_holds_up_neither_the_actor_nor_the_other_sinks(tmp_path: Path) -> None:
    hang = tmp_path / "hang.sh"
    hang.write_text("#!/bin/sh\nsleep 5\n")
    os.chmod(hang, 0o755)
    webhook = Webhook()
    registry, metrics = Registry(), Metrics()
    settings = AlertSettings(file=tmp_path / "alerts.jsonl", exec=hang,
                             webhook_url=webhook.url, repeat_interval_s=0.0, timeout_s=0.2)
    registry.start(NAME, lambda: MetricsActor.start(
        registry, metrics, settings, DaemonState(), Clock()))
    router = AlertRouter(registry)
    try:
        for i in range(5):
            router.alert(Alert("order_mismatch", "critical", f"m{i}", {"exchange": "p"}))
        wait_until(lambda: len(lines(tmp_path / "alerts.jsonl")) == 5, "the file sink")
        wait_until(lambda: len(webhook.bodies) == 5, "the webhook")
        wait_until(lambda: metrics.registry.get_sample_value(
            "orderd_alert_sink_failures_total", {"sink": "exec"}), "the exec timeout counted")
    finally:
        registry.stop_all()
        webhook.close()


def test_a_reload_waits_for_no_sink_still_delivering(tmp_path: Path) -> None:
    """The old sinks finish what they hold on their own threads: MetricsActor, which the
    watchdog pings, answers at once after a reload while one of them is busy."""
    started, release = tmp_path / "started", tmp_path / "release"
    busy = tmp_path / "busy.sh"
    busy.write_text(f"#!/bin/sh\ntouch {started}\n"
                    f"while [ ! -e {release} ]; do sleep 0.05; done\n")
    os.chmod(busy, 0o755)
    registry = Registry()
    settings = AlertSettings(exec=busy, repeat_interval_s=0.0, timeout_s=30.0)
    registry.start(NAME, lambda: MetricsActor.start(
        registry, Metrics(), settings, DaemonState(), Clock()))
    try:
        AlertRouter(registry).alert(Alert("circuit_open", "warning", "m", {"exchange": "p"}))
        wait_until(started.exists, "the exec sink delivering")
        registry.tell(NAME, ReloadAlerts(AlertSettings(file=tmp_path / "alerts.jsonl")))
        registry.ask(NAME, Ping(), timeout=3.0)  # waited for the busy sink's 30 s before
    finally:
        release.touch()
        registry.stop_all()


def test_the_system_alerts_on_halt_and_restart_storm(tmp_path: Path) -> None:
    script, out = exec_sink(tmp_path)
    config = Config(state_dir=tmp_path / "state",
                    alerts=AlertSettings(exec=script, repeat_interval_s=60.0))
    escalated: list[str] = []
    system = ActorSystem(config, escalate=escalated.append)
    system.start()
    try:
        system.state.set("halted", "by test")
        system.escalate("6 actor restarts within 30 s")
        def both() -> list[str] | None:
            names = [a["name"] for a in lines(out)]
            return names if {"daemon_halted", "restart_storm"} <= set(names) else None

        names = wait_until(both, "both alerts")
        assert sorted(names) == ["daemon_halted", "restart_storm"]
        assert escalated == ["6 actor restarts within 30 s"]
    finally:
        system.stop()
