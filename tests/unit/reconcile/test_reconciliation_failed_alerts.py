"""A reconciliation that fails on every run (its report file cannot be written, the
ledger cannot be read) alerts once: `alert_on_failure(threshold=1)` alerts on the first
failure in a row only, and the actor (and its count) lives on between runs. A daily run
failing for a week pages on the first day only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.ledger.store import Ledger
from actors.metrics.alerts import Alert
from actors.reconcile.actor import ReconcilerActor, ReconcilerSettings
from actors.reconcile.messages import RunReconciliation
from actors.runtime import Clock
from actors.supervisor import Registry
from protocol.errors import ProtocolError
from tests.recon_support import EmptyExchange


def test_every_failed_run_alerts(tmp_path: Path) -> None:
    Ledger(tmp_path / "ledger.sqlite").close()
    (tmp_path / "reports").write_text("a file where the reports' folder should be")
    alerts: list[Alert] = []

    class Keep:
        def alert(self, alert: Alert) -> None:
            alerts.append(alert)

    settings = ReconcilerSettings(tmp_path / "ledger.sqlite", (),
                                  tmp_path / "reports" / "reconciliation.jsonl")
    actor = ReconcilerActor(Registry(), settings, Clock(), alerter=Keep(),
                            queries=lambda name: EmptyExchange())
    for _day in range(3):
        replies: list[Any] = []
        actor.on_receive(RunReconciliation(None, replies.append))
        assert isinstance(replies[0], ProtocolError)
    assert [a.name for a in alerts] == ["reconciliation_failed"] * 3
