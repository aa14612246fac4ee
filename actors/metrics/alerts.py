"""Alerts: something an operator should look at. Sinks are added by the metrics work."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from protocol.text import printable

log = logging.getLogger(__name__)

ALERT_NAMES = ("exchange_error_rate", "circuit_open", "unknown_order_age", "order_mismatch",
               "reconciliation_discrepancies", "reconciliation_failed", "restart_storm",
               "daemon_halted", "halted", "order_overfill", "ledger_unwritable",
               "ledger_writable", "ledger_replaced", "exchange_banned", "stream_down",
               "orders_of_unknown_exchange", "orders_of_moved_exchange")
"""Every alert the daemon raises (their counters exist from the start)."""


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
    """Where it comes from (exchange, order, run id); with the name, what makes two alerts
    repeats of one (but a run id). Never Prometheus labels: an order's id is unbounded."""

    def __post_init__(self) -> None:
        # an alert may quote outside text (a halt reason, an exchange's answer); every
        # sink gets it as one printable line, never text that breaks a line or an encoder
        object.__setattr__(self, "message", printable(self.message))
        object.__setattr__(self, "labels", {printable(k): printable(v)
                                            for k, v in self.labels.items()})


class Alerter(Protocol):
    """Where alerts go."""

    def alert(self, alert: Alert) -> None: ...


class LogAlerter:
    """The default: a warning in the log."""

    def alert(self, alert: Alert) -> None:
        labels = " ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        log.warning("ALERT %s [%s] %s %s", alert.name, alert.severity, alert.message, labels,
                    extra={"exchange": alert.labels.get("exchange")})
