"""Wiring: the actors, the sockets and the process lifecycle of one daemon."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import zmq

from actors.alerts import Alerter, LogAlerter
from actors.circuit import NAME as CIRCUIT_ACTOR
from actors.circuit import CircuitBoard, Circuits
from actors.circuit_actor import CircuitActor
from actors.exchange_actor import ExchangeActor, LoadMarkets
from actors.exchange_link import ExchangeLink
from actors.exchanges.ccxt_driver import DriverSettings, build_binance, default_rate_per_s
from actors.exchanges.client import ExchangeClient
from actors.exchanges.paper import PaperExchange, PaperFaults, PaperVenue
from actors.messages import Tick
from actors.order_actor import NAME as ORDER_ACTOR
from actors.order_actor import IsRecovered, OrderActor, OrderSettings
from actors.retry import RateLimiter, RetryBudget
from actors.routing import worker_name
from actors.runtime import Clock, DaemonState
from actors.supervisor import Registry, Supervisor
from daemon.commands import Commands
from daemon.config import Config, ExchangeConfig
from daemon.events import ZmqPublisher
from daemon.frontend import Frontend

log = logging.getLogger(__name__)

TICK_S = 0.1
DRAIN_TIMEOUT_S = 10.0
MARKETS_TIMEOUT_S = 30.0
EXIT_ESCALATED = 70


class Daemon:
    """One running orderd: start, serve, stop."""

    def __init__(self, config: Config, clock: Clock | None = None,
                 alerter: Alerter | None = None,
                 clients: dict[str, Callable[[], ExchangeClient]] | None = None) -> None:
        """`clients` replaces the configured client of an exchange (embedding, tests)."""
        self.config = config
        self.clients = clients or {}
        self.clock = clock or Clock()
        self.alerter = alerter or LogAlerter()
        self.state = DaemonState(self.clock.monotonic)
        self.registry = Registry()
        self.context: zmq.Context[Any] = zmq.Context()
        self.venues: dict[str, PaperVenue] = {}
        self.exit_code = 0
        names = [e.name for e in config.exchanges]
        self.board = CircuitBoard(names, self.clock.monotonic)
        self.circuits = Circuits(names, config.circuit_breaker, self.board,
                                 self.clock.monotonic, self.alerter)
        self._stop = threading.Event()
        self._ticker_stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="ticker", daemon=True)

    # --- start -----------------------------------------------------------------

    def start(self) -> None:
        """Start everything; `ready` once orders left unresolved by the last run are resolved."""
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self.events = ZmqPublisher(self.context, self.config.events.endpoint)
        self.registry.supervisor = Supervisor.start(
            self.registry, self.config.supervisor, self.clock.monotonic, self.clock.sleep,
            self._escalate)
        self.registry.start(CIRCUIT_ACTOR, lambda: CircuitActor.start(
            self.registry, self.circuits))
        self._start_order_actor()
        for exchange in self.config.exchanges:
            self._start_workers(exchange)
        markets = self._load_markets()
        commands = Commands(self.registry, self.state, markets, self.config.default_exchange,
                            self.board)
        self.frontend = Frontend(self.context, self.config.control.endpoint,
                                 self.config.control.max_request_bytes, commands.handlers())
        self.frontend.start()
        self._ticker.start()
        self._wait_recovered()
        self.state.set("ready")
        log.info("orderd ready: commands on %s, events on %s",
                 self.config.control.endpoint, self.config.events.endpoint)

    def _start_order_actor(self) -> None:
        orders = self.config.orders
        settings = OrderSettings(
            ledger_path=self.config.state_dir / "ledger.sqlite",
            default_exchange=self.config.default_exchange,
            workers={e.name: e.concurrency for e in self.config.exchanges},
            accept_timeout_s=orders.accept_timeout_s,
            client_id_prefix=orders.client_id_prefix,
            refresh_interval_s=orders.refresh_interval_s,
            send_deadline_s=orders.send_deadline_s,
            resolution=self.config.resolution,
        )
        self.registry.start(ORDER_ACTOR, lambda: OrderActor.start(
            self.registry, settings, self.state, self.events, self.clock, self.alerter))

    def _start_workers(self, exchange: ExchangeConfig) -> None:
        link = ExchangeLink(
            exchange=exchange.name,
            policy=self.config.retry,
            budget=RetryBudget(exchange.retry_budget, exchange.retry_budget_per_s,
                               self.clock.monotonic),
            limiter=RateLimiter(_rate_per_s(exchange), self.clock.monotonic, self.clock.sleep),
            board=self.board,
            clock=self.clock,
        )
        factory = self.clients.get(exchange.name) or self._client_factory(exchange)
        for index in range(exchange.concurrency):
            name = worker_name(exchange.name, index)
            self.registry.start(name, lambda name=name, index=index: ExchangeActor.start(  # type: ignore[misc]
                self.registry, name, link, factory, seed=index))

    def _client_factory(self, exchange: ExchangeConfig) -> Any:
        if exchange.driver == "binance":
            api_key, secret = exchange.credentials()
            settings = DriverSettings(api_key, secret, exchange.api_url, exchange.timeout_ms)
            # called in each ExchangeActor's start: one ccxt instance per actor
            return lambda: build_binance(settings)
        venue = PaperVenue(self.config.state_dir / f"paper-{exchange.name}.sqlite",
                           clock=self.clock.now)
        self.venues[exchange.name] = venue
        faults = PaperFaults(**vars(exchange.faults))
        started = self.clock.now()

        def factory() -> ExchangeClient:
            return PaperExchange(venue, account=exchange.account, faults=faults,
                                 sleep=self.clock.sleep, clock=self.clock.now, started=started)

        return factory

    def _load_markets(self) -> dict[str, frozenset[str]]:
        markets = {}
        for exchange in self.config.exchanges:
            name = worker_name(exchange.name, 0)
            loaded = self.registry.ask(name, LoadMarkets(), timeout=MARKETS_TIMEOUT_S)
            markets[exchange.name] = frozenset(loaded)
        return markets

    def _wait_recovered(self) -> None:
        """Submits get `halted` (state starting) until recovery is done; reads work."""
        while not self._stop.is_set():
            if self.registry.ask(ORDER_ACTOR, IsRecovered()):
                return
            self._stop.wait(TICK_S)

    def _tick(self) -> None:
        while not self._ticker_stop.wait(TICK_S):
            self.registry.tell(ORDER_ACTOR, Tick(self.clock.monotonic()))

    def _escalate(self, reason: str) -> None:
        """A restart storm: halt submits, then stop (flushing the ledger) and exit non-zero."""
        self.state.set("halted", reason)
        self.exit_code = EXIT_ESCALATED
        self._stop.set()

    # --- stop --------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Until a stop is requested (signal, escalation); False on timeout."""
        return self._stop.wait(timeout)

    def stop(self) -> None:
        """Refuse new submits; finish and commit what is in flight; stop actors in reverse."""
        log.info("orderd stopping")
        self.state.set("stopping")
        self._stop.set()
        frontend = getattr(self, "frontend", None)
        if frontend is not None:
            self._drain(frontend)
        self._ticker_stop.set()
        self.registry.stop_all()
        if frontend is not None:
            frontend.close()
        if hasattr(self, "events"):
            self.events.close()
        for venue in self.venues.values():
            venue.close()
        self.context.term()
        log.info("orderd stopped")

    def _drain(self, frontend: Frontend) -> None:
        deadline = self.clock.monotonic() + DRAIN_TIMEOUT_S
        while frontend.in_flight() > 0 and self.clock.monotonic() < deadline:
            self._ticker_stop.wait(0.01)


def _rate_per_s(exchange: ExchangeConfig) -> float | None:
    """The configured pace, else the ccxt class's own; the paper venue has none."""
    if exchange.rate_limit_per_s is not None or exchange.driver == "paper":
        return exchange.rate_limit_per_s
    return default_rate_per_s(exchange.driver)
