"""Alerts raised by the actors; where they go is the alerting's business."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("orderd.alerts")


@dataclass(frozen=True)
class Alert:
    """Something an operator should know about."""

    name: str
    """Rule name, e.g. circuit_open."""
    severity: str
    """info, warning or critical."""
    message: str
    """One line for people; never a secret."""
    labels: dict[str, str] = field(default_factory=dict)
    """Bounded labels (exchange, kind); never order ids."""


class Alerter(Protocol):
    def alert(self, alert: Alert) -> None: ...


class LogAlerter:
    """Alerts to the log only."""

    def alert(self, alert: Alert) -> None:
        log.warning("ALERT %s [%s] %s %s", alert.name, alert.severity, alert.message,
                    alert.labels or "")
