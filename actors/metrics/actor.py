"""MetricsActor: refreshes the gauges and routes alerts (the actor system serves the
registry over HTTP itself, so a restart of this actor never drops the endpoint).

Alerts reach it by `tell` through `AlertRouter`, so raising one never blocks the
caller. It rate-limits repeats, logs every alert, and hands each one to the
configured sinks, which deliver from threads of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.circuit.breakers import NAME as CIRCUIT_ACTOR
from actors.circuit.messages import DescribeCircuits
from actors.metrics.alert_sinks import (
    AlertSettings,
    RepeatLimiter,
    SinkWorker,
    build_sinks,
    close_sinks,
    payload,
)
from actors.metrics.alerts import Alert, Alerter, LogAlerter
from actors.metrics.messages import MetricsTick, ReloadAlerts
from actors.metrics.series import Metrics
from actors.orders import rfc3339
from actors.runtime import Clock, DaemonState
from actors.supervisor import Registry, SupervisedActor
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)

NAME = "metrics"


@dataclass(frozen=True)
class MetricsSettings:
    """[metrics] of the configuration."""

    listen: str = ""
    """HOST:PORT of the HTTP endpoint serving /metrics; empty: not served."""

    def check(self) -> None:
        if self.listen:
            self.address()

    def address(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"listen: {self.listen!r} is not HOST:PORT")
        return host.strip("[]"), int(port)


class AlertRouter:
    """The actor system's Alerter: hands each alert to MetricsActor without waiting."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._fallback = LogAlerter()

    def alert(self, alert: Alert) -> None:
        if not self._registry.tell(NAME, alert):
            self._fallback.alert(alert)  # the log always gets it


class MetricsActor(SupervisedActor):
    """The registry's HTTP endpoint, periodic gauges and alert sinks."""

    def __init__(self, registry: Registry, metrics: Metrics, alerts: AlertSettings,
                 state: DaemonState, clock: Clock, extra: Alerter | None = None) -> None:
        """`extra` also receives every admitted alert (an embedding program's alerter)."""
        super().__init__(registry, NAME)
        self.metrics = metrics
        self.alert_settings = alerts
        self.state = state
        self.clock = clock
        self.extra = extra
        self.log_alerter = LogAlerter()
        self.limiter = RepeatLimiter(alerts.repeat_interval_s, clock.monotonic)
        self.sinks: list[SinkWorker] = []
        self._handlers: dict[type, Callable[[Any], Any]] = {
            Alert: self._alert, MetricsTick: self._tick, ReloadAlerts: self._reload,
        }

    def on_start(self) -> None:
        self.sinks = build_sinks(self.alert_settings, self.metrics, self.clock.sleep)

    def on_stop(self) -> None:
        self._release()

    def on_crash(self) -> None:
        self._release()

    def _release(self) -> None:
        close_sinks(self.sinks)
        self.sinks = []

    # --- alerts ----------------------------------------------------------------------

    def _alert(self, alert: Alert) -> None:
        suppressed = self.limiter.admit(alert)
        if suppressed is None:
            self.metrics.alerts_suppressed.labels(alert.name).inc()
            return
        self.metrics.alerts.labels(alert.name).inc()
        self.log_alerter.alert(alert)
        body = payload(alert, rfc3339(self.clock.now()), suppressed)
        for sink in self.sinks:
            sink.put(body)
        if self.extra is not None:
            try:
                self.extra.alert(alert)
            except Exception:  # an embedding program's alerter must not kill this actor
                log.exception("alerter failed")

    def _reload(self, msg: ReloadAlerts) -> None:
        # the old sinks deliver what they hold on their own threads, unwaited for: the
        # process lives on, and this actor must keep answering (the watchdog pings it)
        for sink in self.sinks:
            sink.close()
        self.alert_settings = msg.settings
        self.limiter.interval_s = msg.settings.repeat_interval_s
        self.sinks = build_sinks(msg.settings, self.metrics, self.clock.sleep)

    # --- periodic --------------------------------------------------------------------

    def _tick(self, _msg: MetricsTick) -> None:
        # while CircuitActor restarts, the request waits for it
        self.registry.tell(CIRCUIT_ACTOR, DescribeCircuits(self._circuits))

    def _circuits(self, circuits: dict[str, Any] | ProtocolError) -> None:
        """Runs in CircuitActor's thread; gauges are thread-safe."""
        if isinstance(circuits, ProtocolError):
            return  # the next tick asks again
        for exchange, info in circuits.items():
            self.metrics.set_circuit(exchange, info["state"], info["errors_per_minute"])
