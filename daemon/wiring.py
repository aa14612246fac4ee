"""What each part of the actor system gets from the configuration: OrderActor's and
the reconciler's settings, an exchange's backlog limit, request budget and client
factory. Pure functions of a Config, so a reader sees every setting's way in one
place."""


from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from actors.exchange.budget import RequestBudget
from actors.exchange.client import ExchangeClient
from actors.exchange.config import ExchangeConfig
from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from actors.exchange.drivers.paper import PaperExchange, PaperVenue
from actors.exchange.limits import BINANCE_LIMITS, NO_LIMITS, Limits
from actors.order.actor import OrderSettings
from actors.order.resolution import SignedWindow
from actors.order.risk import RiskPolicy
from actors.order.tracking import Pace
from actors.reconcile.actor import ReconcilerSettings
from actors.reconcile.compare import ReconcileSettings
from actors.runtime import Clock
from actors.stream.connection import BuildConnection, OnEvent, StreamConnection
from actors.stream.health import StreamHealth
from actors.stream.paper_stream import PaperStream
from daemon.config import Config
from daemon.config_loader import refused
from venue.limits import VenueLimiter

log = logging.getLogger(__name__)

ClientFactory = Callable[[], ExchangeClient]


def order_settings(config: Config, risk: RiskPolicy | None = None,
                   budgets: dict[str, RequestBudget] | None = None,
                   streams: StreamHealth | None = None) -> OrderSettings:
    orders, tracking = config.orders, config.tracking
    return OrderSettings(
        ledger_path=config.state_dir / "ledger.sqlite",
        default_exchange=config.default_exchange,
        workers={e.name: e.concurrency for e in config.exchanges},
        accept_timeout_s=orders.accept_timeout_s,
        client_id_prefix=orders.client_id_prefix,
        refresh_interval_s=tracking.interval_s,
        young_interval_s=tracking.young_interval_s,
        young_age_s=tracking.young_age_s,
        send_deadline_s=orders.send_deadline_s,
        backlogs={e.name: backlog_limit(config, e) for e in config.exchanges},
        resolution=config.resolution,
        signed_windows=signed_windows(config),
        risk=risk,
        budgets=budgets or {},
        tracking_pace=tracking_pace(budgets or {}),
        stream_health=streams,
        safety_interval_s=tracking.safety_interval_s,
        places={e.name: placement(e) for e in config.exchanges},
    )


BINANCE_API_URL = "https://api.binance.com"
"""Where the binance driver goes without an `api_url`."""
BINANCE_HOSTS = re.compile(r"api(-gcp|[1-4])?\.binance\.com")
"""binance's base endpoints of its live API: one venue, one account ("use whichever
works best for your setup")."""
DEFAULT_PORTS = {"http": 80, "https": 443}


def placement(exchange: ExchangeConfig) -> str:
    """What the entry's orders are placed on (see actors.ledger.placement), as JSON: the
    driver and, on binance, the address (testnet and live are two). Not the API key: a
    key rotated on the same account must keep its orders managed (the account's id
    would tell another account's key apart, at the cost of a request at start). The
    paper venue's book is `paper-NAME.sqlite` next to the ledger: the account in it."""
    if exchange.driver == "paper":
        return json.dumps({"driver": "paper", "account": exchange.account})
    return json.dumps({"driver": exchange.driver, "address": venue_address(exchange.api_url)})


def venue_address(api_url: str | None) -> str:
    """The one spelling of the venue `api_url` reaches: an entry switched among binance's
    own base endpoints, or given the scheme's port, reaches the same orders."""
    parts = urlsplit((api_url or BINANCE_API_URL).rstrip("/").lower())
    netloc = parts.netloc
    if parts.port is not None and parts.port == DEFAULT_PORTS.get(parts.scheme):
        netloc = netloc.rsplit(":", 1)[0]
    if parts.scheme == "https" and BINANCE_HOSTS.fullmatch(netloc):
        return BINANCE_API_URL
    return f"{parts.scheme}://{netloc}"


def tracking_pace(budgets: dict[str, RequestBudget]) -> Pace:
    """Each exchange's tracking pace, from its request budget (none: as configured)."""
    def pace(exchange: str) -> float:
        budget = budgets.get(exchange)
        return 1.0 if budget is None else budget.pace()
    return pace


def streamed(config: Config) -> list[ExchangeConfig]:
    """The exchanges whose user-data stream the daemon listens to."""
    return [e for e in config.exchanges
            if config.tracking.stream and e.streamed()]


def stream_builder(exchange: ExchangeConfig, clients: ClientFactory,
                   budget: RequestBudget) -> BuildConnection:
    """How the stream of a streamed `exchange` connects: ccxt.pro to binance's WebSocket
    API, its requests through the entry's `budget` (they spend the address's weight),
    or a listener on the paper venue of the clients `clients` makes (down while their
    outage fault holds)."""
    if exchange.driver == "binance":
        # here, not at the top: ccxt.pro and ccxt's asyncio exchanges it loads take some
        # 33 MB, which a daemon without a binance stream (the paper one) need not carry
        from actors.stream.pro_driver import build_binance_pro

        return partial(build_binance_pro, driver_settings(exchange), budget=budget)

    def paper(on_event: OnEvent) -> StreamConnection:
        client = clients()
        if not isinstance(client, PaperExchange):
            raise TypeError(f"{exchange.name}: a paper stream needs a paper client")
        return PaperStream(client, on_event)

    return paper


def signed_window(exchange: ExchangeConfig) -> SignedWindow:
    """How long a create signed for `exchange` may still be booked (see resolution)."""
    return SignedWindow(exchange.recv_window_ms / 1000, exchange.timeout_ms / 1000)


def signed_windows(config: Config) -> dict[str, SignedWindow]:
    """The signed window of each exchange that has one: the in-process paper venue
    books a create at once or never."""
    return {e.name: signed_window(e) for e in config.exchanges if e.driver != "paper"}


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


REQUESTS_PER_ORDER = 3
"""At most: the create, the verifying fetch and the order's trades."""


def backlog_limit(config: Config, exchange: ExchangeConfig) -> int:
    """[orders] max_backlog, or fewer where the exchange's configured pace could not send
    them all before their send deadline: what is accepted beyond that would expire unsent."""
    rate = exchange.rate_limit_per_s
    if rate is None:
        return config.orders.max_backlog
    in_time = int(rate * config.orders.send_deadline_s / REQUESTS_PER_ORDER)
    return max(1, min(config.orders.max_backlog, in_time))


def request_budget(exchange: ExchangeConfig, clock: Clock) -> RequestBudget:
    """The entry's request budget: binance's limits until its exchangeInfo tells them; the
    paper venue's own when its entry keeps limits, else none (only `[exchanges.budget]`'s)."""
    limits = NO_LIMITS
    if exchange.driver == "binance":
        limits = BINANCE_LIMITS
    elif exchange.limits is not None:
        venue = exchange.limits
        orders = ((venue.orders_window_s, venue.orders_per_10s), (86400, venue.orders_per_day))
        limits = Limits(venue.weight_per_minute or None, venue.weight_window_s,
                        tuple((s, n) for s, n in orders if n))
    return RequestBudget(exchange.name, exchange.budget, limits, clock.now)


def credentials(exchange: ExchangeConfig) -> tuple[str, str]:
    """The entry's API key and secret, read now: a ConfigError like the loader's when one
    went missing since (or the Config was made in code, never loaded)."""
    try:
        return exchange.credentials()
    except ValueError as exc:
        raise refused("exchanges", exc) from None


def driver_settings(exchange: ExchangeConfig) -> DriverSettings:
    """What every ccxt client of the entry is built with, REST and stream alike."""
    api_key, secret = credentials(exchange)
    return DriverSettings(api_key, secret, exchange.api_url, exchange.timeout_ms,
                          exchange.recv_window_ms)


def client_factory(exchange: ExchangeConfig, state_dir: Path, clock: Clock,
                   venues: dict[str, PaperVenue]) -> ClientFactory:
    """What makes the clients of `exchange`: ccxt binance, or the paper venue, opened in
    `state_dir` and added to `venues` (its owner closes it)."""
    if exchange.driver == "binance":
        settings = driver_settings(exchange)
        log.info("exchange %s: %s driver, credentials loaded", exchange.name, exchange.driver)
        # called in each ExchangeActor's start: one ccxt instance per actor
        return lambda: build_binance(settings)
    venue = PaperVenue(state_dir / f"paper-{exchange.name}.sqlite", clock=clock.now)
    venues[exchange.name] = venue
    faults = exchange.faults
    started = clock.now()
    # one limiter for every client of the entry: binance counts the whole address
    limiter = None if exchange.limits is None else VenueLimiter(exchange.limits, clock.now)

    def factory() -> ExchangeClient:
        return PaperExchange(venue, account=exchange.account, faults=faults,
                             sleep=clock.sleep, clock=clock.now, started=started,
                             limiter=limiter)

    return factory
