"""MetricsActor's messages (alerts themselves are `Alert` records, from
actors/metrics/alerts.py)."""

from __future__ import annotations

from dataclasses import dataclass

from actors.metrics.alert_sinks import AlertSettings


@dataclass(frozen=True, slots=True)
class MetricsTick:
    """Tell: refresh the gauges and evaluate the periodic alert rules."""


@dataclass(frozen=True, slots=True)
class ReloadAlerts:
    """Tell: use these alert settings (sinks, repeat interval) from now on."""

    settings: AlertSettings
    """The new [alerts] section."""
