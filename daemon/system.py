"""The actor system of orderd, wired from a Config.

The daemon, the reconciliation job and the Python library all run this same
system; the daemon adds the sockets around it.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from actors.circuit.actor import CircuitActor
from actors.circuit.breakers import NAME as CIRCUIT_ACTOR
from actors.circuit.breakers import CircuitBoard, Circuits
from actors.exchange.actor import ExchangeActor
from actors.exchange.budget import RequestBudget
from actors.exchange.config import ExchangeConfig
from actors.exchange.drivers.paper import PaperVenue
from actors.exchange.failure import error_info
from actors.exchange.link import ExchangeLink
from actors.exchange.messages import FetchOpenOrders, LoadMarkets, RefreshPrices
from actors.exchange.retry import RateLimiter, RetryBudget
from actors.exchange.routing import side_worker_name, worker_name
from actors.ledger.reader import LedgerReader
from actors.metrics.actor import NAME as METRICS_ACTOR
from actors.metrics.actor import AlertRouter, MetricsActor
from actors.metrics.alerts import Alert, Alerter
from actors.metrics.messages import MetricsTick, ReloadAlerts
from actors.metrics.monitoring import Defaults, drop_defaults, log_execution_time, use_defaults
from actors.metrics.series import Metrics
from actors.order.actor import NAME as ORDER_ACTOR
from actors.order.actor import OrderActor
from actors.order.messages import Flush, IsRecovered, Tick
from actors.order.risk import RiskPolicy
from actors.reconcile.actor import NAME as RECONCILER
from actors.reconcile.actor import ReconcilerActor
from actors.runtime import AUTOMATIC, OPERATOR, Clock, DaemonState, EventSink, NoEvents
from actors.stream.actor import StreamActor, StreamSettings, stream_name
from actors.stream.health import StreamCollector, StreamHealth
from actors.supervisor import Registry, Supervisor
from daemon import __version__
from daemon.config import Config
from daemon.market_steps import Steps, steps_of
from daemon.startup import close_metrics, serve_metrics
from daemon.state_lock import StateDirLock
from daemon.wiring import (
    ClientFactory,
    client_factory,
    order_settings,
    reconciler_settings,
    request_budget,
    stream_builder,
    streamed,
)

log = logging.getLogger(__name__)

TICK_S = 0.1
MARKETS_TIMEOUT_S = 30.0
MARKETS_RETRY_TICKS = 50
METRICS_TICKS = 10


class ActorSystem:
    """Supervisor, circuits, orders, exchange workers and the reconciler."""

    def __init__(self, config: Config, *, clock: Clock | None = None,
                 alerter: Alerter | None = None, events: EventSink | None = None,
                 clients: dict[str, ClientFactory] | None = None,
                 risk: RiskPolicy | None = None,
                 escalate: Callable[[str], None] | None = None,
                 budgets: Mapping[str, RequestBudget] | None = None) -> None:
        """`clients` replaces the configured client of an exchange (embedding, tests);
        `risk` is shared with whoever reloads it; `escalate` is told when a restart storm
        needs the process to stop; `alerter` also receives every alert the system raises;
        `budgets` are request budgets kept from an earlier system, by exchange name, on
        `clock`'s time (the library's executor keeps them across configure(): a 429 or
        ban under way is not forgotten); an exchange without one gets a new one."""
        self.config = config
        self.clock = clock or Clock()
        self.extra_alerter = alerter
        self.registry = Registry()
        self.alerter: Alerter = AlertRouter(self.registry)
        # one code path: without an endpoint the registry is simply never scraped
        self.metrics = Metrics()
        self.metrics.watch_actors(self.registry.health)
        self.metrics.declare([e.name for e in config.exchanges], __version__)
        self.events: EventSink = events or NoEvents()
        self.clients = clients or {}
        self.risk = risk
        self.state = DaemonState(self.clock.monotonic)
        self.state.on_halt = self._halted
        self.metrics.watch_state(self.state, self.registry.reported)
        self.lock = StateDirLock(config.state_dir)
        self._metrics_server: Any = None
        self._escalate_to = escalate or self._halt
        self.escalated: str | None = None
        """Why a restart storm escalated, once one did."""
        self._alerts = config.alerts  # the current [alerts]: a restarted MetricsActor's too
        self.venues: dict[str, PaperVenue] = {}
        self._factories: dict[str, ClientFactory] = {}
        """Each exchange's client factory, as its workers got it."""
        self.markets: dict[str, dict[str, Steps]] = {}
        """Each exchange's symbols and their steps, once loaded."""
        names = [e.name for e in config.exchanges]
        self.board = CircuitBoard(names, self.clock.monotonic)
        self.circuits = Circuits(names, config.circuit_breaker, self.board,
                                 self.clock.monotonic, self.alerter, self.metrics)
        self._ticker_stop = threading.Event()
        self._loading = threading.Lock()
        self._ticker = threading.Thread(target=self._tick, name="ticker", daemon=True)
        self.streams = StreamHealth([e.name for e in streamed(config)],
                                    config.tracking.stream_stale_s, time.time)
        """Each streamed exchange's stream, compared with ccxt's wall-clock frame times."""
        self.metrics.registry.register(StreamCollector(self.streams))
        self._defaults = Defaults(self.metrics, self.board, config.default_exchange,
                                  self.alerter)
        kept = budgets or {}
        self.budgets = {e.name: kept[e.name] if e.name in kept
                        else request_budget(e, self.clock) for e in config.exchanges}
        """Each exchange entry's request budget, shared by its workers."""
        for budget in self.budgets.values():
            budget.on_ban = self._banned_by(budget.exchange)
        self.metrics.watch_budgets(self.budgets)

    def _banned_by(self, exchange: str) -> Callable[[float], None]:
        def banned(seconds: float) -> None:
            message = (f"{exchange} banned this address or disabled the key (418, or -2015 "
                       f"after the key worked) for {seconds:.0f} s; no request goes out "
                       "until then")
            log.critical("%s", message, extra={"exchange": exchange})
            self.alerter.alert(Alert("exchange_banned", "critical", message,
                                     {"exchange": exchange}))
        return banned

    def _halt(self, reason: str) -> None:
        self.state.condition("restart_storm", reason)  # not recorded: a restart is the remedy

    def _halted(self, reason: str) -> None:
        # an operator's maintenance halt is news, not a page
        operator = self.state.halted_by == OPERATOR
        self.alerter.alert(Alert("daemon_halted", "info" if operator else "critical",
                                 f"submits halted: {reason}",
                                 {"by": self.state.halted_by or AUTOMATIC}))

    def escalate(self, reason: str) -> None:
        """A restart storm: alert, then do what the owner of the system asked for."""
        self.escalated = reason
        self.alerter.alert(Alert("restart_storm", "critical", reason))
        self._escalate_to(reason)

    def reload_alerts(self, config: Config) -> str:
        """SIGHUP: new alert sinks and repeat interval."""
        self._alerts = config.alerts
        self.registry.tell(METRICS_ACTOR, ReloadAlerts(config.alerts))
        sinks = [name for name in ("file", "exec", "webhook_url")
                 if getattr(config.alerts, name) is not None]
        return f"alert sinks: log{''.join(', ' + s for s in sinks)}"

    def start(self) -> None:
        """Take the state_dir (StateDirInUse when another owner has it), serve the
        metrics, start every actor and load the markets; the state stays `starting`. Until
        `stop`, this system's metrics, circuits and alert route are the defaults of the
        monitoring decorators, and the process stops it at exit if nobody did (its
        actors run on daemon threads: they never keep a finished program alive).

        If anything fails, what was started is stopped again before the error goes on."""
        atexit.register(self.stop)
        use_defaults(self._defaults)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.lock.acquire()
        self._metrics_server = serve_metrics(self.config.metrics, self.metrics.registry)
        if self._metrics_server is not None:
            log.info("metrics on http://%s/metrics", self.config.metrics.listen)
        registry = self.registry
        # a restarted worker gets the requests queued for its predecessor (the registry
        # keeps them) and reports each: OrderActor's counts of them stay as they are
        registry.supervisor = Supervisor.start(
            registry, self.config.supervisor, self.clock.monotonic, self.clock.sleep,
            self.escalate)
        registry.start(METRICS_ACTOR, lambda: MetricsActor.start(
            registry, self.metrics, self._alerts, self.state, self.clock,
            self.extra_alerter))
        registry.start(CIRCUIT_ACTOR, lambda: CircuitActor.start(registry, self.circuits))
        settings = order_settings(self.config, self.risk, self.budgets, self.streams)
        registry.start(ORDER_ACTOR, lambda: OrderActor.start(
            registry, settings, self.state, self.events, self.clock, self.alerter,
            self.metrics))
        for exchange in self.config.exchanges:
            self._start_workers(exchange)
        self._load_markets()
        for exchange in streamed(self.config):
            if exchange.name not in self.clients:  # a replaced client has no stream
                self._start_stream(exchange)
        self._prime_prices()
        registry.ask(ORDER_ACTOR, Flush())  # the ledger exists once OrderActor has started
        reconciler = reconciler_settings(self.config)
        registry.start(RECONCILER, lambda: ReconcilerActor.start(
            registry, reconciler, self.clock, self.alerter, metrics=self.metrics))
        self._ticker.start()

    def guard_start(self) -> None:
        """Halts that apply before orders are taken (the daemon and the executor call
        it; the reconciliation job, which takes none, does not): `[orders]
        start_halted`, and an empty ledger while an exchange holds open orders with
        our client-id prefix (the ledger that recorded them is gone)."""
        if self.config.orders.start_halted:
            self.state.halt("[orders] start_halted is set; `resume` accepts orders")
        reason = self._orders_without_ledger()
        if reason is not None:
            log.critical("%s", reason)
            self.state.halt(reason)

    def _orders_without_ledger(self) -> str | None:
        prefix = self.config.orders.client_id_prefix
        if not prefix:
            return None  # no order is recognisably ours
        names = [e.name for e in self.config.exchanges]
        reader = LedgerReader(self.config.state_dir / "ledger.sqlite")
        try:
            if any(reader.count(name) for name in names):
                return None
        finally:
            reader.close()
        for name in names:
            if name not in self.markets:  # unreachable now: no second wait on it
                log.warning("the ledger is empty and %s cannot be asked for open orders "
                            "now; reconciliation will show any", name)
                continue
            try:
                views = self.registry.ask(side_worker_name(name), FetchOpenOrders(),
                                          timeout=MARKETS_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - said, and left to reconciliation
                log.warning("the ledger is empty and the open orders of %s could not be "
                            "read to check it (%s)", name, error_info(exc).message)
                continue
            ours = [v for v in views if (v.client_order_id or "").startswith(prefix)]
            if ours:
                return (f"the ledger is empty but {name} has {len(ours)} open orders with "
                        f"client ids starting {prefix!r} (e.g. {ours[0].client_order_id}): "
                        "the ledger that recorded them is gone. Run `orderctl reconcile` "
                        "to adopt them, then `orderctl resume`")
        return None

    def wait_recovered(self, stop: threading.Event) -> None:
        """Until orders left unresolved by the last run are resolved (or `stop`)."""
        while not stop.is_set():
            if self.registry.ask(ORDER_ACTOR, IsRecovered()):
                return
            stop.wait(TICK_S)

    def stop(self) -> None:
        """Stop the actors in reverse order (OrderActor commits last), close the venues
        and the metrics endpoint, and let the state_dir go."""
        atexit.unregister(self.stop)
        drop_defaults(self._defaults)
        self._ticker_stop.set()
        if self._ticker.is_alive():
            self._ticker.join(timeout=MARKETS_TIMEOUT_S)
        self.registry.stop_all()
        for venue in self.venues.values():
            venue.close()
        self.venues.clear()
        if self._metrics_server is not None:
            close_metrics(self._metrics_server)
            self._metrics_server = None
        self.lock.release()

    def _start_workers(self, exchange: ExchangeConfig) -> None:
        link = ExchangeLink(
            exchange=exchange.name,
            policy=self.config.retry,
            budget=RetryBudget(exchange.retry_budget, exchange.retry_budget_per_s,
                               self.clock.monotonic),
            limiter=RateLimiter(exchange.rate_limit_per_s, self.clock.monotonic,
                                self.clock.sleep),
            board=self.board,
            clock=self.clock,
            metrics=self.metrics,
            requests=self.budgets[exchange.name],
        )
        self.metrics.retry_budget.labels(exchange.name).set_function(link.budget.level)
        factory = (self.clients.get(exchange.name)
                   or client_factory(exchange, self.config.state_dir, self.clock, self.venues))
        self._factories[exchange.name] = factory
        names = [worker_name(exchange.name, i) for i in range(exchange.concurrency)]
        # the reconciler's queries get a worker of their own: they never hold up orders
        names.append(side_worker_name(exchange.name))
        for seed, name in enumerate(names):
            self.registry.start(name, self._worker_starter(name, link, factory, seed))

    def _start_stream(self, exchange: ExchangeConfig) -> None:
        budget = self.budgets[exchange.name]
        build = stream_builder(exchange, self._factories[exchange.name], budget)
        settings = StreamSettings(exchange.name, build,
                                  partial(self._raw_markets, exchange.name),
                                  self.config.tracking.stream_stale_s,
                                  paused_for=budget.paused_for)
        self.registry.start(stream_name(exchange.name), lambda: StreamActor.start(
            self.registry, settings, self.streams, self.alerter))

    def _raw_markets(self, exchange: str) -> dict[str, Any] | None:
        """The markets the exchange's workers loaded; None when they cannot say now."""
        try:
            markets: dict[str, Any] = self.registry.ask(
                worker_name(exchange, 0), LoadMarkets(), timeout=MARKETS_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the stream loads its own then
            log.info("markets of %s not shared with its stream: %s", exchange, exc)
            return None
        return markets

    def _worker_starter(self, name: str, link: ExchangeLink, factory: ClientFactory,
                        seed: int) -> Callable[[], Any]:
        return lambda: ExchangeActor.start(self.registry, name, link, factory, seed=seed)

    @log_execution_time(level=logging.DEBUG)
    def _load_markets(self) -> None:
        """Markets of every exchange not loaded yet; one that cannot be reached now is
        tried again later (its submits get exchange_unavailable meanwhile)."""
        for exchange in self.config.exchanges:
            if exchange.name in self.markets:
                continue
            try:
                loaded = self.registry.ask(worker_name(exchange.name, 0), LoadMarkets(),
                                           timeout=MARKETS_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - any failure: try again later
                log.error("markets of %s not loaded (%s); trying again", exchange.name,
                          error_info(exc).message)
                continue
            self.markets[exchange.name] = steps_of(loaded)

    def _retry_markets(self) -> None:
        with self._loading:
            self._load_markets()

    def _prime_prices(self) -> None:
        """Reference prices before the first order, where a notional limit needs them."""
        if self.risk is None:
            return
        for exchange in self.risk.exchanges_needing_prices():
            symbols = self.risk.of(exchange).symbols
            try:
                self.registry.ask(side_worker_name(exchange), RefreshPrices(
                    exchange, None if symbols is None else tuple(symbols)),
                    timeout=MARKETS_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - refreshed on the ticks that follow
                log.error("prices of %s not loaded: %s", exchange, exc)

    def _tick(self) -> None:
        """The clock of OrderActor and MetricsActor: ticks reach whichever actor is current
        (a restarting one gets them once it is back), and no failure ends this thread."""
        ticks = 0
        while not self._ticker_stop.wait(TICK_S):
            ticks += 1
            try:
                self._tick_once(ticks)
            except Exception:
                log.exception("tick %d failed; ticking on", ticks)

    def _tick_once(self, ticks: int) -> None:
        self.registry.tell(ORDER_ACTOR, Tick(self.clock.monotonic()))
        if ticks % METRICS_TICKS == 0:
            self.registry.tell(METRICS_ACTOR, MetricsTick())
        missing = len(self.markets) < len(self.config.exchanges)
        if ticks % MARKETS_RETRY_TICKS == 0 and missing and not self._loading.locked():
            # in its own thread: a slow exchange must not hold up the ticks
            threading.Thread(target=self._retry_markets, name="markets", daemon=True).start()
