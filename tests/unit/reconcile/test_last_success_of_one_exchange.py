"""`orderctl reconcile --exchange a` succeeding set
orderd_reconciliation_last_success_timestamp_seconds, though exchange b failed in every
run: OrderdReconciliationStale then never fired for b (and a restart read the same from
the report file). The last success is kept per exchange."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.ledger.store import Ledger
from actors.metrics.series import Metrics
from actors.order.actor import NAME as ORDER_ACTOR
from actors.order.messages import ApplyRepairs
from actors.reconcile.actor import ReconcilerActor, ReconcilerSettings
from actors.reconcile.messages import RunReconciliation
from actors.reconcile.reports import last_successes
from actors.runtime import Clock
from actors.supervisor import Registry, SupervisedActor
from tests.recon_support import EmptyExchange


class Orders(SupervisedActor):
    """OrderActor's part in a run: it stores the trade cursors and confirms."""

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry, ORDER_ACTOR)
        self._handlers = {ApplyRepairs: lambda message: message.reply([])}


def test_a_run_of_one_exchange_is_no_success_of_all(tmp_path: Path) -> None:
    Ledger(tmp_path / "ledger.sqlite").close()
    metrics = Metrics()
    registry = Registry()
    registry.start(ORDER_ACTOR, lambda: Orders.start(registry))
    settings = ReconcilerSettings(tmp_path / "ledger.sqlite", ("a", "b"),
                                  tmp_path / "reconciliation.jsonl")
    actor = ReconcilerActor(registry, settings, Clock(), metrics=metrics,
                            queries=lambda name: EmptyExchange(up=name == "a"))
    gauge = "orderd_reconciliation_last_success_timestamp_seconds"

    def last(of: Metrics, exchange: str) -> float | None:
        return of.registry.get_sample_value(gauge, {"exchange": exchange})

    replies: list[Any] = []
    try:
        assert (last(metrics, "a"), last(metrics, "b")) == (0, 0)  # both exist from the start
        actor.on_receive(RunReconciliation(None, replies.append))  # the schedule's: b fails
        first = last(metrics, "a")
        assert first and last(metrics, "b") == 0
        actor.on_receive(RunReconciliation("a", replies.append))  # an operator's: a alone
        assert (last(metrics, "a") or 0) >= first and last(metrics, "b") == 0
        assert set(last_successes(settings.report_file)) == {"a"}
        restarted = Metrics()
        ReconcilerActor(registry, settings, Clock(), metrics=restarted,
                        queries=lambda name: EmptyExchange(up=name == "a"))
        assert last(restarted, "a") == pytest.approx(last(metrics, "a"), abs=0.01)
        assert last(restarted, "b") == 0
    finally:
        registry.stop_all()
