"""Wiring: the actors, the sockets and the process lifecycle of one daemon."""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path
from typing import Any

import zmq

from actors.exchange_actor import ExchangeActor, LoadMarkets
from actors.exchanges.client import ExchangeClient
from actors.exchanges.paper import PaperExchange, PaperFaults, PaperVenue
from actors.messages import RefreshPrices, Tick
from actors.order_actor import NAME as ORDER_ACTOR
from actors.order_actor import OrderActor, OrderSettings, exchange_actor_name
from actors.risk import RiskPolicy
from actors.runtime import Clock, DaemonState
from actors.supervisor import Registry, Supervisor
from daemon.commands import Commands
from daemon.config import Config, ExchangeConfig
from daemon.events import ZmqPublisher
from daemon.frontend import Frontend
from daemon.limits import client_rates, describe, risk_limits
from daemon.logs import set_level
from daemon.rate_limit import RateLimiter
from daemon.reload import Reloader
from daemon.security import Curve, RefusalWatch
from daemon.systemd import PING_TIMEOUT_S, Heartbeat, Notifier, SystemdLoop, watchdog_interval_s

log = logging.getLogger(__name__)

TICK_S = 0.1
DRAIN_TIMEOUT_S = 10.0
MARKETS_TIMEOUT_S = 30.0


class Daemon:
    """One running orderd: start, serve, stop."""

    def __init__(self, config: Config, clock: Clock | None = None,
                 config_path: Path | None = None) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.state = DaemonState()
        self.registry = Registry()
        self.context: zmq.Context[Any] = zmq.Context()
        self.venues: dict[str, PaperVenue] = {}
        self._stop = threading.Event()
        self._ticker_stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="ticker", daemon=True)
        self.notifier = Notifier()
        self.risk = RiskPolicy(risk_limits(config))
        self.limiter = RateLimiter(client_rates(config), self.clock.monotonic)
        self.reloader = Reloader(config, config_path)
        self.refusals = RefusalWatch()
        self.curve: Curve | None = None
        interval = watchdog_interval_s()
        heartbeat = Heartbeat(self.registry, min(PING_TIMEOUT_S, (interval or 2.0) / 2))
        self.systemd = SystemdLoop(self.notifier, heartbeat, self._summary, interval)

    # --- start -----------------------------------------------------------------

    def start(self) -> None:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        control = self.config.control
        if control.curve_secret_key_file and control.curve_clients_dir:
            self.curve = Curve(self.context, control.curve_secret_key_file,
                               control.curve_clients_dir)
        self.events = ZmqPublisher(self.context, self.config.events.endpoint, self.curve)
        if self.curve is not None:  # monitors go on before another thread uses the socket
            self.refusals.watch("events", self.events.socket)
        self.registry.supervisor = Supervisor.start(self.registry)
        self._start_order_actor()
        for exchange in self.config.exchanges:
            self._start_exchange_actor(exchange)
        markets = self._load_markets()
        self._prime_prices()
        commands = Commands(self.registry, self.state, markets, self.config.default_exchange,
                            self._circuits, limiter=self.limiter,
                            refused=lambda: self.refusals.refused)
        self.frontend = Frontend(self.context, control.endpoint, control.max_request_bytes,
                                 commands.handlers(), self.curve)
        if self.curve is not None:
            self.refusals.watch("control", self.frontend.socket)
            self.refusals.start()
        self.frontend.start()
        self._register_reload_hooks()
        self._ticker.start()
        self.state.set("ready")
        self.notifier.ready()
        self.systemd.start()
        log.info("orderd ready: commands on %s, events on %s%s", control.endpoint,
                 self.config.events.endpoint, " (CURVE)" if self.curve else "")

    def _start_order_actor(self) -> None:
        orders = self.config.orders
        settings = OrderSettings(
            ledger_path=self.config.state_dir / "ledger.sqlite",
            default_exchange=self.config.default_exchange,
            accept_timeout_s=orders.accept_timeout_s,
            client_id_prefix=orders.client_id_prefix,
            refresh_interval_s=orders.refresh_interval_s,
        )
        settings = dataclasses.replace(settings, risk=self.risk)
        self.registry.start(ORDER_ACTOR, lambda: OrderActor.start(
            self.registry, settings, self.state, self.events, self.clock))

    def _start_exchange_actor(self, exchange: ExchangeConfig) -> None:
        name = exchange_actor_name(exchange.name)
        factory = self._client_factory(exchange)
        self.registry.start(name, lambda: ExchangeActor.start(self.registry, name, factory))

    def _client_factory(self, exchange: ExchangeConfig) -> Any:
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
            name = exchange_actor_name(exchange.name)
            loaded = self.registry.ask(name, LoadMarkets(), timeout=MARKETS_TIMEOUT_S)
            markets[exchange.name] = frozenset(loaded)
        return markets

    def _prime_prices(self) -> None:
        """Reference prices before the first order, where a notional limit needs them."""
        for exchange in self.risk.exchanges_needing_prices():
            symbols = self.risk.of(exchange).symbols
            self.registry.ask(exchange_actor_name(exchange), RefreshPrices(
                exchange, None if symbols is None else tuple(symbols)),
                timeout=MARKETS_TIMEOUT_S)

    def _summary(self) -> str:
        """One line for systemd's STATUS=."""
        reason = f" ({self.state.reason})" if self.state.reason else ""
        return f"{self.state.value}{reason}; commands on {self.config.control.endpoint}"

    # --- reload --------------------------------------------------------------------

    def _register_reload_hooks(self) -> None:
        self.reloader.register(self._reload_log_level)
        self.reloader.register(self._reload_risk)
        if self.curve is not None:
            self.reloader.register(lambda _config: self.curve.reload_clients()
                                   if self.curve else "")

    def _reload_log_level(self, config: Config) -> str:
        set_level(config.log_level)
        return f"log level {config.log_level.upper()}"

    def _reload_risk(self, config: Config) -> str:
        self.risk.replace(risk_limits(config))
        self.limiter.set_rates(client_rates(config))
        return f"risk limits {describe(config)}"

    def reload(self) -> None:
        """SIGHUP: apply what is safe to change without a restart."""
        self.notifier.reloading()
        self.reloader.reload()
        self.notifier.ready()

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
        self.notifier.stopping()
        self.systemd.stop()
        self.state.set("stopping")
        self._stop.set()
        self._drain()
        self._ticker_stop.set()
        self.registry.stop_all()
        self.refusals.close()
        # a start-up that failed part way has not made every socket
        for part in (getattr(self, "frontend", None), getattr(self, "events", None)):
            if part is not None:
                part.close()
        if self.curve is not None:
            self.curve.stop()
        for venue in self.venues.values():
            venue.close()
        self.context.term()
        self.notifier.close()
        log.info("orderd stopped")

    def _drain(self) -> None:
        deadline = self.clock.monotonic() + DRAIN_TIMEOUT_S
        frontend = getattr(self, "frontend", None)
        while (frontend is not None and frontend.in_flight() > 0
               and self.clock.monotonic() < deadline):
            self._ticker_stop.wait(0.01)
