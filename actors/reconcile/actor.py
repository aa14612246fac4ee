"""ReconcilerActor: runs reconciliations (on request or on a schedule) and keeps reports.

Runs are messages in this actor's inbox, so two never overlap: a `reconcile`
command during a scheduled run waits for it, then runs. Exchange calls go through
the exchange's ExchangeActor (its one client), ledger reads through a read-only
connection, and repairs to OrderActor, which alone writes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from actors.exchange.errors import describe
from actors.exchange.messages import (
    FetchOpenOrders,
    FetchTrades,
    LookupOrder,
    OrderTicket,
    OrderView,
    TradePage,
)
from actors.exchange.routing import side_worker_name
from actors.ledger.reader import LedgerReader
from actors.metrics.alerts import Alert, Alerter, LogAlerter
from actors.metrics.monitoring import log_execution_time, track_metrics
from actors.metrics.series import Metrics
from actors.order.actor import NAME as ORDER_ACTOR
from actors.order.messages import ApplyRepairs
from actors.orders import rfc3339
from actors.reconcile.compare import ExchangeCheck, ExchangeQueries, ReconcileSettings, Section
from actors.reconcile.messages import RECONCILER, RecordDiscrepancy, RunReconciliation
from actors.reconcile.reports import append_report, last_successes
from actors.reconcile.schedule import TIMEZONE, Schedule, trigger
from actors.runtime import Clock
from actors.supervisor import Registry, SupervisedActor
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)

NAME = RECONCILER
RUN_TIMEOUT_S = 3600.0
MAX_LISTED = 1000
"""Discrepancies and repairs listed per exchange in a report; counts cover all."""


@dataclass(frozen=True)
class ReconcilerSettings:
    """What ReconcilerActor needs to know from the configuration."""

    ledger_path: Path
    exchanges: tuple[str, ...]
    report_file: Path
    history_days: int = 30
    check: ReconcileSettings = field(default_factory=ReconcileSettings)
    ask_timeout_s: float = 30.0
    """Per exchange query and per batch of repairs."""
    repair_batch: int = 1000


class ActorQueries:
    """ExchangeQueries answered by an ExchangeActor (asks with a timeout)."""

    def __init__(self, registry: Registry, exchange: str, timeout_s: float) -> None:
        self.registry, self.timeout_s = registry, timeout_s
        self.name = side_worker_name(exchange)

    def open_orders(self) -> list[OrderView]:
        return self._ask(FetchOpenOrders())  # type: ignore[no-any-return]

    def trades(self, symbol: str, since: int | None, from_id: str | None,
               limit: int) -> TradePage:
        return self._ask(FetchTrades(symbol, since, from_id, limit))  # type: ignore[no-any-return]

    def lookup(self, ticket: OrderTicket) -> OrderView:
        return self._ask(LookupOrder(ticket))  # type: ignore[no-any-return]

    def _ask(self, message: Any) -> Any:
        return self.registry.ask(self.name, message, timeout=self.timeout_s)


class ReconcilerActor(SupervisedActor):
    """One reconciliation at a time; each appends a report and alerts on findings."""

    long_messages = True  # a whole run is one message: minutes of exchange queries

    def __init__(self, registry: Registry, settings: ReconcilerSettings,
                 clock: Clock | None = None, alerter: Alerter | None = None,
                 queries: Callable[[str], ExchangeQueries] | None = None,
                 metrics: Metrics | None = None) -> None:
        super().__init__(registry, NAME)
        self.settings = settings
        self.clock = clock or Clock()
        self.alerter: Alerter = alerter or LogAlerter()
        self.metrics = metrics or Metrics()
        self._run_once = log_execution_time(level=logging.INFO)(
            track_metrics(self.metrics, "reconciliation_run")(self.run))
        self.queries = queries or (
            lambda name: ActorQueries(registry, name, settings.ask_timeout_s))
        self._handlers: dict[type, Callable[[Any], Any]] = {
            RunReconciliation: self._run_requested, RecordDiscrepancy: self._record}
        # from the report file, before the daemon is ready: else the gauge reads 0 after
        # every start and a rule on the time since the last success fires at once; every
        # exchange's series exists, at 0 until its first success
        finished = last_successes(settings.report_file)
        for name in settings.exchanges:
            self.metrics.reconciliation_last_success.labels(name).set(finished.get(name, 0.0))

    def _record(self, message: RecordDiscrepancy) -> None:
        """A discrepancy found while tracking, as a report of its own."""
        at, kind = rfc3339(self.clock.now()), message.entry["kind"]
        section = {"counts": {"discrepancies": 1, kind: 1}, "discrepancies": [message.entry],
                   "repairs": [], "errors": []}
        report = {"run_id": uuid.uuid4().hex[:16], "found_by": "tracking", "started_at": at,
                  "finished_at": at, "exchanges": {message.exchange: section}}
        append_report(self.settings.report_file, report, self.settings.history_days,
                      self.clock.now())
        self.metrics.discrepancies.labels(message.exchange, kind).inc()

    def _run_requested(self, message: RunReconciliation) -> Any:
        try:
            report = self._run_once(message.exchange)
        except Exception as exc:
            log.exception("reconciliation failed")
            self.metrics.reconciliation_runs.labels("failed").inc()
            # every failed run, not only the first in a row (as @alert_on_failure does): a
            # daily run failing all week must not page on its first day alone; the repeat
            # limiter holds back runs failing close together
            self.alerter.alert(Alert("reconciliation_failed", "critical",
                                     f"reconciliation_failed: {describe(exc)}"))
            if message.reply is None:
                raise
            message.reply(ProtocolError("internal", f"reconciliation failed: {exc}"))
            return None
        if message.reply is not None:
            message.reply({"report": report})
        return report

    def run(self, exchange: str | None = None) -> dict[str, Any]:
        run_id = uuid.uuid4().hex[:16]
        started = self.clock.now()
        names = [n for n in self.settings.exchanges if exchange in (None, n)]
        sections: dict[str, Any] = {}
        reader = LedgerReader(self.settings.ledger_path)
        try:
            for name in names:
                check = ExchangeCheck(name, reader, self.queries(name), self.settings.check,
                                      self.clock)
                sections[name] = self._finish(run_id, name, check.run())
        finally:
            reader.close()
        finished = self.clock.now()
        report = {"run_id": run_id, "started_at": rfc3339(started),
                  "finished_at": rfc3339(finished), "exchanges": sections}
        append_report(self.settings.report_file, report, self.settings.history_days,
                      self.clock.now())
        self._alert(run_id, sections)
        self._count(sections, finished)
        log.info("reconciliation %s done: %s", run_id, "; ".join(
            f"{name} " + " ".join(f"{key}={value}" for key, value in section["counts"].items())
            for name, section in sections.items()))
        return report

    def _finish(self, run_id: str, exchange: str, section: Section) -> dict[str, Any]:
        results = self._apply(run_id, section)
        counts = dict(section.counts)
        counts["discrepancies"] = len(section.discrepancies)
        counts["repairs"] = sum(1 for r in results if r.get("applied"))
        for item in section.discrepancies:
            counts[item["kind"]] = counts.get(item["kind"], 0) + 1
            self.metrics.discrepancies.labels(exchange, item["kind"]).inc()
        return {"counts": counts, "discrepancies": section.discrepancies[:MAX_LISTED],
                "repairs": results[:MAX_LISTED], "errors": section.errors}

    def _apply(self, run_id: str, section: Section) -> list[dict[str, Any]]:
        """Hand the repairs (and the new trade cursors) to OrderActor; wait for the commit."""
        repairs, size = section.repairs, self.settings.repair_batch
        batches = [tuple(repairs[i:i + size]) for i in range(0, len(repairs), size)] or [()]
        if not repairs and not section.cursors:
            return []
        results: list[dict[str, Any]] = []
        for index, batch in enumerate(batches):
            done: Future[list[dict[str, Any]] | ProtocolError] = Future()
            cursors = tuple(section.cursors) if index == len(batches) - 1 else ()
            sent = self.registry.tell(ORDER_ACTOR, ApplyRepairs(run_id, batch, cursors,
                                                                done.set_result))
            try:
                if not sent:
                    raise FutureTimeout
                applied = done.result(timeout=self.settings.ask_timeout_s)
            except FutureTimeout:
                applied = ProtocolError("timeout", "the order actor did not confirm the repairs")
            if isinstance(applied, ProtocolError):
                section.errors.append({"query": "repairs", "code": applied.code,
                                       "error": applied.message})
                break
            results.extend(applied)
        return results

    def _count(self, sections: dict[str, Any], finished: float) -> None:
        """`finished`: the report's, so that a restart reads the same from the file."""
        errors = any(section["errors"] for section in sections.values())
        self.metrics.reconciliation_runs.labels("errors" if errors else "ok").inc()
        # per exchange: a run of one (`reconcile --exchange a`) says nothing of the others,
        # and one exchange failing every run must go stale though the others succeed
        for name, section in sections.items():
            if not section["errors"]:
                self.metrics.reconciliation_last_success.labels(name).set(finished)

    def _alert(self, run_id: str, sections: dict[str, Any]) -> None:
        for name, section in sections.items():
            found, errors = section["counts"]["discrepancies"], len(section["errors"])
            if found or errors:
                self.alerter.alert(Alert(
                    "reconciliation_discrepancies", "warning" if not errors else "critical",
                    f"reconciliation found {found} discrepancies and {errors} errors",
                    {"exchange": name, "run_id": run_id}))


class ScheduledRuns:
    """Asks ReconcilerActor for a run on the schedule (APScheduler, one at a time)."""

    def __init__(self, registry: Registry, schedule: Schedule) -> None:
        self.registry = registry
        self.scheduler = BackgroundScheduler(timezone=TIMEZONE)
        # a run missed (the machine suspended over its time, the scheduler held up) runs
        # late rather than not at all: no grace time ends it; several missed are one run
        self.job = self.scheduler.add_job(self.run, trigger(schedule), id="reconcile",
                                          max_instances=1, coalesce=True,
                                          misfire_grace_time=None)

    def start(self) -> None:
        self.scheduler.start()
        log.info("reconciliation scheduled; next run %s", self.job.next_run_time)

    def run(self) -> None:
        try:
            self.registry.ask(NAME, RunReconciliation(), timeout=RUN_TIMEOUT_S)
        except Exception:
            log.exception("scheduled reconciliation failed")

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
