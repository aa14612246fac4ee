"""Wiring: the actors, the sockets and the process lifecycle of one daemon."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import zmq

from actors.exchange_actor import ExchangeActor, LoadMarkets
from actors.exchanges.client import ExchangeClient
from actors.exchanges.paper import PaperExchange, PaperFaults, PaperVenue
from actors.messages import Flush, Tick
from actors.order_actor import NAME as ORDER_ACTOR
from actors.order_actor import OrderActor, OrderSettings, exchange_actor_name
from actors.reconcile import ReconcileSettings
from actors.reconcile_messages import RunReconciliation
from actors.reconciler_actor import NAME as RECONCILER
from actors.reconciler_actor import ReconcilerActor, ReconcilerSettings, ScheduledRuns
from actors.runtime import Clock, DaemonState
from actors.schedule import Schedule
from actors.supervisor import Registry, Supervisor
from daemon.commands import Commands
from daemon.config import Config, ExchangeConfig
from daemon.events import ZmqPublisher
from daemon.frontend import Frontend

log = logging.getLogger(__name__)

TICK_S = 0.1
DRAIN_TIMEOUT_S = 10.0
MARKETS_TIMEOUT_S = 30.0


def order_settings(config: Config) -> OrderSettings:
    orders, tracking = config.orders, config.tracking
    return OrderSettings(
        ledger_path=config.state_dir / "ledger.sqlite",
        default_exchange=config.default_exchange,
        accept_timeout_s=orders.accept_timeout_s,
        client_id_prefix=orders.client_id_prefix,
        refresh_interval_s=tracking.interval_s,
        young_interval_s=tracking.young_interval_s,
        young_age_s=tracking.young_age_s,
    )


def reconciler_settings(config: Config) -> ReconcilerSettings:
    rec = config.reconciliation
    return ReconcilerSettings(
        ledger_path=config.state_dir / "ledger.sqlite",
        exchanges=tuple(e.name for e in config.exchanges),
        report_file=config.report_file,
        history_days=config.reporting.history_days,
        check=ReconcileSettings(
            client_id_prefix=config.orders.client_id_prefix,
            max_lookups_per_run=rec.max_lookups_per_run,
            lookup_spacing_ms=rec.lookup_spacing_ms, min_age_s=rec.min_age_s),
    )


def schedule_of(config: Config) -> Schedule:
    return Schedule(config.schedule.interval, config.schedule.time, config.schedule.day)


def paper_client_factory(config: Config, exchange: ExchangeConfig, clock: Clock,
                         venues: dict[str, PaperVenue]) -> Callable[[], ExchangeClient]:
    """Clients of the exchange's paper venue (opened here, kept in `venues`)."""
    venue = PaperVenue(config.state_dir / f"paper-{exchange.name}.sqlite", clock=clock.now)
    venues[exchange.name] = venue
    faults = PaperFaults(**vars(exchange.faults))
    started = clock.now()

    def factory() -> ExchangeClient:
        return PaperExchange(venue, account=exchange.account, faults=faults,
                             sleep=clock.sleep, clock=clock.now, started=started)

    return factory


class Daemon:
    """One running orderd: start, serve, stop."""

    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.state = DaemonState()
        self.registry = Registry()
        self.context: zmq.Context[Any] = zmq.Context()
        self.venues: dict[str, PaperVenue] = {}
        self._stop = threading.Event()
        self._ticker_stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="ticker", daemon=True)

    # --- start -----------------------------------------------------------------

    def start(self) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self.events = ZmqPublisher(self.context, self.config.events.endpoint)
        self.registry.supervisor = Supervisor.start(self.registry)
        self._start_order_actor()
        for exchange in self.config.exchanges:
            self._start_exchange_actor(exchange)
        markets = self._load_markets()
        self._start_reconciler()
        commands = Commands(self.registry, self.state, markets, self.config.default_exchange,
                            self._circuits)
        self.frontend = Frontend(self.context, self.config.control.endpoint,
                                 self.config.control.max_request_bytes, commands.handlers())
        self.frontend.start()
        self._ticker.start()
        self.state.set("ready")
        log.info("orderd ready: commands on %s, events on %s",
                 self.config.control.endpoint, self.config.events.endpoint)

    def _start_order_actor(self) -> None:
        settings = order_settings(self.config)
        self.registry.start(ORDER_ACTOR, lambda: OrderActor.start(
            self.registry, settings, self.state, self.events, self.clock))

    def _start_reconciler(self) -> None:
        # the reconciler reads the ledger, which exists once OrderActor has started
        self.registry.ask(ORDER_ACTOR, Flush(), timeout=MARKETS_TIMEOUT_S)
        settings = reconciler_settings(self.config)
        self.registry.start(RECONCILER, lambda: ReconcilerActor.start(
            self.registry, settings, self.clock))
        self.scheduled = ScheduledRuns(self.registry, schedule_of(self.config))
        self.scheduled.start()
        if self.config.reconciliation.run_on_start:
            self.registry.tell(RECONCILER, RunReconciliation())

    def _start_exchange_actor(self, exchange: ExchangeConfig) -> None:
        name = exchange_actor_name(exchange.name)
        factory = self._client_factory(exchange)
        self.registry.start(name, lambda: ExchangeActor.start(self.registry, name, factory))

    def _client_factory(self, exchange: ExchangeConfig) -> Any:
        return paper_client_factory(self.config, exchange, self.clock, self.venues)

    def _load_markets(self) -> dict[str, frozenset[str]]:
        markets = {}
        for exchange in self.config.exchanges:
            name = exchange_actor_name(exchange.name)
            loaded = self.registry.ask(name, LoadMarkets(), timeout=MARKETS_TIMEOUT_S)
            markets[exchange.name] = frozenset(loaded)
        return markets

    def _circuits(self) -> dict[str, Any]:
        return {e.name: {"state": "closed", "errors_per_minute": 0.0}
                for e in self.config.exchanges}

    def _tick(self) -> None:
        while not self._ticker_stop.wait(TICK_S):
            self.registry.tell(ORDER_ACTOR, Tick(self.clock.monotonic()))

    # --- stop --------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def wait(self) -> None:
        self._stop.wait()

    def stop(self) -> None:
        """Refuse new submits; finish and commit what is in flight; stop actors in reverse."""
        log.info("orderd stopping")
        self.state.set("stopping")
        self._stop.set()
        self._drain()
        self._ticker_stop.set()
        if hasattr(self, "scheduled"):
            self.scheduled.shutdown()
        self.registry.stop_all()
        self.frontend.close()
        self.events.close()
        for venue in self.venues.values():
            venue.close()
        self.context.term()
        log.info("orderd stopped")

    def _drain(self) -> None:
        deadline = self.clock.monotonic() + DRAIN_TIMEOUT_S
        while self.frontend.in_flight() > 0 and self.clock.monotonic() < deadline:
            self._ticker_stop.wait(0.01)
