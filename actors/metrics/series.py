"""The Prometheus metrics of orderd, built on a given registry.

prometheus_client metrics are thread-safe, so every actor updates them directly
(one call per event, no message). Labels are bounded: exchange names, order
statuses, error codes and actor names come from the configuration or from fixed
tables; never an order id, a run id or anything secret.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from actors.exchange.budget import WAIT_REASONS, RequestBudget
from actors.exchange.errors import ERROR_TABLE, UNCLASSIFIED
from actors.metrics.alerts import ALERT_NAMES
from actors.reconcile.compare import DISCREPANCY_KINDS
from actors.runtime import HALTED_BY, STATES, DaemonState
from protocol.messages import TERMINAL_STATUSES

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0)
COMMIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
GROUP_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
CIRCUIT_STATES = ("closed", "open", "half_open")
REQUEST_OPS = ("create", "cancel", "fetch", "read")
RECONCILIATION_RESULTS = ("ok", "errors", "failed")
M = TypeVar("M", bound=MetricWrapperBase)


class Metrics:
    """Every metric family of orderd, on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """A private registry (that nobody scrapes) when none is given: library use."""
        self.registry = registry if registry is not None else CollectorRegistry()
        self._children: dict[tuple[int, tuple[str, ...]], MetricWrapperBase] = {}
        r = self.registry
        self.orders_submitted = Counter(
            "orderd_orders_submitted", "New orders recorded, by exchange.", ["exchange"],
            registry=r)
        self.orders_finished = Counter(
            "orderd_orders", "Orders that reached a final status, by exchange and status.",
            ["exchange", "status"], registry=r)
        self.submit_latency = Histogram(
            "orderd_submit_latency_seconds",
            "From the submit reaching the order actor to the exchange's answer.",
            ["exchange"], buckets=LATENCY_BUCKETS, registry=r)
        self.open_orders = Gauge(
            "orderd_open_orders", "Orders not yet in a final status.", registry=r)
        self.unknown_orders = Gauge(
            "orderd_unknown_orders", "Orders whose exchange outcome is being resolved.",
            registry=r)
        self.orders_set_aside = Gauge(
            "orderd_orders_set_aside",
            "Live orders of an exchange no longer configured, left as the ledger has them "
            "(not sent, tracked, resolved or cancelled), by that exchange's name.",
            ["exchange"], registry=r)
        self.unknown_oldest_age = Gauge(
            "orderd_unknown_order_oldest_age_seconds",
            "Age of the oldest order whose outcome is being resolved (0 when none).",
            registry=r)
        self.request_duration = Histogram(
            "orderd_exchange_request_duration_seconds",
            "One request to an exchange, by exchange and operation.",
            ["exchange", "op"], buckets=LATENCY_BUCKETS, registry=r)
        self.request_errors = Counter(
            "orderd_exchange_request_errors", "Failed exchange requests, by error class.",
            ["exchange", "error"], registry=r)
        self.retries = Counter(
            "orderd_exchange_retries", "Exchange requests sent again after a failure.",
            ["exchange"], registry=r)
        self.retry_budget = Gauge(
            "orderd_retry_budget_tokens", "Retries the exchange's retry budget still allows.",
            ["exchange"], registry=r)
        self.retry_budget_exhausted = Counter(
            "orderd_retry_budget_exhausted",
            "Failures not retried because the retry budget was empty.", ["exchange"],
            registry=r)
        self.circuit_state = Gauge(
            "orderd_circuit_state", "1 for the current state of the exchange's circuit.",
            ["exchange", "state"], registry=r)
        self.circuit_transitions = Counter(
            "orderd_circuit_transitions", "Circuit state changes, by the state entered.",
            ["exchange", "state"], registry=r)
        self.errors_per_minute = Gauge(
            "orderd_exchange_errors_per_minute",
            "Transient exchange errors per minute over the breaker's window.", ["exchange"],
            registry=r)
        self.reconciliation_runs = Counter(
            "orderd_reconciliation_runs", "Reconciliation runs, by result (ok or failed).",
            ["result"], registry=r)
        self.discrepancies = Counter(
            "orderd_reconciliation_discrepancies", "Discrepancies found, by exchange and kind.",
            ["exchange", "kind"], registry=r)
        self.reconciliation_last_success = Gauge(
            "orderd_reconciliation_last_success_timestamp_seconds",
            "When the last reconciliation run finished without errors on the exchange "
            "(Unix time; 0: never).", ["exchange"], registry=r)
        self.commit_duration = Histogram(
            "orderd_ledger_commit_duration_seconds", "One grouped ledger commit.",
            buckets=COMMIT_BUCKETS, registry=r)
        self.commit_group = Histogram(
            "orderd_ledger_commit_orders", "Orders written by one grouped ledger commit.",
            buckets=GROUP_BUCKETS, registry=r)
        self.events_published = Counter(
            "orderd_events_published", "Order events published.", registry=r)
        self.daemon_state = Gauge(
            "orderd_daemon_state", "1 for the daemon's current state.", ["state"], registry=r)
        self.daemon_halted = Gauge(
            "orderd_daemon_halted",
            "1 while submits are halted, by who halted them (operator or automatic).",
            ["by"], registry=r)
        self.build_info = Gauge(
            "orderd_build_info", "Always 1; the running orderd's version is in the label.",
            ["version"], registry=r)
        self.alerts = Counter(
            "orderd_alerts", "Alerts raised, by name.", ["name"], registry=r)
        self.alerts_suppressed = Counter(
            "orderd_alerts_suppressed", "Repeats of an alert held back by rate limiting.",
            ["name"], registry=r)
        self.sink_failures = Counter(
            "orderd_alert_sink_failures", "Alerts a sink could not deliver.", ["sink"],
            registry=r)
        self.calls = Counter(
            "orderd_function_calls", "Calls of functions tracked with @track_metrics.",
            ["function"], registry=r)
        self.call_errors = Counter(
            "orderd_function_errors", "Calls of tracked functions that raised.",
            ["function"], registry=r)
        self.call_duration = Histogram(
            "orderd_function_duration_seconds", "Duration of calls of tracked functions.",
            ["function"], buckets=LATENCY_BUCKETS, registry=r)
        # process_cpu_seconds_total, process_resident_memory_bytes, process_start_time_seconds...
        ProcessCollector(registry=r)
        for name in ALERT_NAMES:
            self.alerts.labels(name)
            self.alerts_suppressed.labels(name)
        for result in RECONCILIATION_RESULTS:
            self.reconciliation_runs.labels(result)

    def child(self, metric: M, *labels: str) -> M:
        """The metric's series for these labels, looked up once: `labels()` takes the
        metric's lock and builds its key on every call, which costs on a per-order path
        shared by many threads. Safe without a lock: a race only looks it up twice."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found  # type: ignore[return-value]

    # --- helpers that set several series at once ----------------------------------------

    def declare(self, exchanges: Iterable[str], version: str) -> None:
        """Every series whose labels are known in advance, at 0 from the start: a series
        born at 1 on its first event has no earlier sample, so `increase()` and `rate()`
        would miss that first event after each start."""
        codes = sorted({rule.code for rule in ERROR_TABLE.values()} | {UNCLASSIFIED.code})
        self.build_info.labels(version).set(1)
        for exchange in exchanges:
            for metric in (self.orders_submitted, self.submit_latency, self.retries,
                           self.retry_budget_exhausted):
                metric.labels(exchange)
            for status in sorted(TERMINAL_STATUSES):
                self.orders_finished.labels(exchange, status)
            for op in REQUEST_OPS:
                self.request_duration.labels(exchange, op)
            for code in codes:
                self.request_errors.labels(exchange, code)
            for state in CIRCUIT_STATES:
                self.circuit_transitions.labels(exchange, state)
            for kind in DISCREPANCY_KINDS:
                self.discrepancies.labels(exchange, kind)
            self.set_circuit(exchange, "closed", 0.0)  # every circuit starts closed

    def watch_state(self, state: DaemonState,
                    reported: Callable[[str], str] = lambda value: value) -> None:
        """The daemon's state and who halted it, read at scrape; `reported` says the
        state as `ping` and `health` do (`starting` while an actor restarts)."""
        for name in STATES:
            self.daemon_state.labels(name).set_function(
                lambda name=name: 1.0 if reported(state.value) == name  # type: ignore[misc]
                else 0.0)
        for by in HALTED_BY:
            self.daemon_halted.labels(by).set_function(
                lambda by=by: 1.0 if state.value == "halted" and state.halted_by == by
                else 0.0)  # type: ignore[misc]

    def set_circuit(self, exchange: str, current: str, errors_per_minute: float) -> None:
        for state in CIRCUIT_STATES:
            self.circuit_state.labels(exchange, state).set(1 if state == current else 0)
        self.errors_per_minute.labels(exchange).set(errors_per_minute)

    def watch_actors(self, health: Callable[[], dict[str, dict[str, object]]]) -> None:
        """Actor liveness and restarts, read from the supervisor's registry at scrape."""
        self.registry.register(_ActorCollector(health))

    def watch_budgets(self, budgets: Mapping[str, RequestBudget]) -> None:
        """Each exchange's request budget, read at scrape: nothing per request."""
        self.registry.register(_BudgetCollector(budgets))

    def names(self) -> set[str]:
        """Every sample name this registry exposes now (for tests and the dashboard)."""
        return {s.name for family in self.registry.collect() for s in family.samples}


class _ActorCollector(Collector):
    def __init__(self, health: Callable[[], dict[str, dict[str, object]]]) -> None:
        self._health = health

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        restarts = CounterMetricFamily("orderd_actor_restarts",
                                       "Restarts of each actor by the supervisor.",
                                       labels=["actor"])
        up = GaugeMetricFamily("orderd_actor_up", "1 while the actor is alive.",
                               labels=["actor"])
        for name, info in self._health().items():
            restarts.add_metric([name], float(info["restarts"]))  # type: ignore[arg-type]
            up.add_metric([name], 1.0 if info["alive"] else 0.0)
        return [restarts, up]


class _BudgetCollector(Collector):
    """Weight and order counts as the exchange reported them, 429s and 418s, requests by
    endpoint and the requests the budget held back, per exchange."""

    def __init__(self, budgets: Mapping[str, RequestBudget]) -> None:
        self._budgets = budgets

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        used = GaugeMetricFamily(
            "orderd_exchange_weight_used",
            "Request weight used in the current window: the exchange's X-MBX-USED-WEIGHT "
            "figure (every process on the address) plus our requests in flight.",
            labels=["exchange"])
        limit = GaugeMetricFamily(
            "orderd_exchange_weight_limit",
            "The exchange's request weight limit per window (0: none).", labels=["exchange"])
        orders = GaugeMetricFamily(
            "orderd_exchange_order_count",
            "New orders counted in the current order window (X-MBX-ORDER-COUNT).",
            labels=["exchange", "window"])
        order_limit = GaugeMetricFamily(
            "orderd_exchange_order_limit", "New orders allowed per order window.",
            labels=["exchange", "window"])
        paused = GaugeMetricFamily(
            "orderd_exchange_paused_seconds",
            "Seconds until requests may go out again after a 429 or 418 (0: not paused).",
            labels=["exchange"])
        refusals = CounterMetricFamily(
            "orderd_exchange_rate_limit_answers",
            "Answers refusing for rate limits, by status (429: wait; 418: banned).",
            labels=["exchange", "status"])
        requests = CounterMetricFamily(
            "orderd_exchange_requests", "Requests sent, by endpoint.",
            labels=["exchange", "endpoint"])
        weight = CounterMetricFamily(
            "orderd_exchange_weight_spent", "Request weight of the requests this process sent.",
            labels=["exchange"])
        waits = CounterMetricFamily(
            "orderd_exchange_budget_waits",
            "Requests and submits the request budget held back or refused, by reason.",
            labels=["exchange", "reason"])
        for name, budget in self._budgets.items():
            weight_used, weight_limit, windows = budget.gauges()
            used.add_metric([name], weight_used)
            limit.add_metric([name], float(weight_limit or 0))
            for window, count, allowed in windows:
                orders.add_metric([name, window], count)
                order_limit.add_metric([name, window], float(allowed or 0))
            paused.add_metric([name], budget.paused_for() or 0.0)
            counts = budget.counts
            refusals.add_metric([name, "429"], counts.http_429)
            refusals.add_metric([name, "418"], counts.http_418)
            for endpoint, count in sorted(counts.requests.copy().items()):
                requests.add_metric([name, endpoint], count)
            weight.add_metric([name], counts.weight_spent)
            for reason in WAIT_REASONS:
                waits.add_metric([name, reason], counts.waits.get(reason, 0))
        return [used, limit, orders, order_limit, paused, refusals, requests, weight, waits]
