"""Alerts: something an operator should look at. Sinks are added by the metrics work."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Alert:
    """One alert event."""

    name: str
    """What kind, e.g. reconciliation_discrepancies or order_mismatch."""
    severity: str
    """info, warning or critical."""
    message: str
    """One line for a person; never holds secrets."""
    labels: dict[str, str] = field(default_factory=dict)
    """Where it comes from (exchange, order, run id)."""


class Alerter(Protocol):
    """Where alerts go."""

    def alert(self, alert: Alert) -> None: ...


class LogAlerter:
    """The default: a warning in the log."""

    def alert(self, alert: Alert) -> None:
        labels = " ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        log.warning("ALERT %s [%s] %s %s", alert.name, alert.severity, alert.message, labels)
