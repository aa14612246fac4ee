"""The configuration schema of orderd (TOML). Every key has a default."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from actors.alert_sinks import AlertSettings
from actors.circuit import BreakerSettings
from actors.exchanges.ccxt_driver import DEFAULT_RECV_WINDOW_MS
from actors.exchanges.paper import PaperFaults
from actors.exchanges.paper_limits import VenueLimits
from actors.metrics_actor import MetricsSettings
from actors.request_limits import BudgetConfig
from actors.resolution import ResolveSettings
from actors.retry import RetryPolicy
from actors.schedule import DAYS, INTERVALS
from actors.supervisor import SupervisorSettings
from daemon.affinity import AUTO, check_cpu
from daemon.config_loader import ConfigError, build
from daemon.security import is_abstract, is_local

ENDPOINT = re.compile(r"tcp://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.*-]+):(\d{1,5})|ipc://.+")
DRIVERS = ("paper", "binance")
API_URL = re.compile(r"https?://[A-Za-z0-9.\[\]:-]+/?")
CLIENT_ID_PREFIX = re.compile(r"[A-Za-z0-9_-]{0,8}")
HH_MM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def check_endpoint(value: str, key: str) -> None:
    match = ENDPOINT.fullmatch(value)
    if match is None or (match.group(2) is not None and not 0 < int(match.group(2)) < 65536):
        raise ConfigError(f"{key}: {value!r} is not tcp://HOST:PORT or ipc://PATH")


@dataclass(frozen=True)
class ControlConfig:
    """[control]: the command socket (ROUTER)."""

    endpoint: str = "tcp://127.0.0.1:5555"
    max_request_bytes: int = 65536
    curve_secret_key_file: Path | None = None
    """The server's secret certificate (zmq.auth format); turns CURVE on."""
    curve_clients_dir: Path | None = None
    """Public certificates of the only clients let in."""

    def check(self, key: str) -> None:
        check_endpoint(self.endpoint, f"{key}.endpoint")
        if not 64 <= self.max_request_bytes <= 16 * 1024 * 1024:
            raise ConfigError(f"{key}.max_request_bytes: must be from 64 to 16777216")
        if (self.curve_secret_key_file is None) != (self.curve_clients_dir is None):
            raise ConfigError(f"{key}.curve_secret_key_file: set it together with "
                              "curve_clients_dir, or neither")
        if self.curve_secret_key_file is not None and not self.curve_secret_key_file.is_file():
            raise ConfigError(f"{key}.curve_secret_key_file: {self.curve_secret_key_file} "
                              "is not a file")
        if self.curve_clients_dir is not None and not self.curve_clients_dir.is_dir():
            raise ConfigError(f"{key}.curve_clients_dir: {self.curve_clients_dir} "
                              "is not a folder")

    @property
    def curve(self) -> bool:
        return self.curve_secret_key_file is not None


@dataclass(frozen=True)
class EventsConfig:
    """[events]: the order event socket (PUB)."""

    endpoint: str = "tcp://127.0.0.1:5556"

    def check(self, key: str) -> None:
        check_endpoint(self.endpoint, f"{key}.endpoint")


@dataclass(frozen=True)
class RiskConfig:
    """[exchanges.risk]: limits checked before an order is recorded or sent; 0 is no limit."""

    max_order_notional: float = 0.0
    """Largest amount x price of one order, in the quote currency."""
    max_open_orders: int = 0
    """Most orders not yet terminal on this exchange."""
    max_open_orders_per_symbol: int = 0
    """Most orders not yet terminal on one market."""
    symbols: tuple[str, ...] = ()
    """The only markets that may be traded; empty allows all."""
    client_submit_rate_per_s: float = 0.0
    """Submits per second one client may send to this exchange."""
    client_submit_burst: int = 0
    """Submits one client may send at once; 0 means max(1, the rate)."""

    def check(self, key: str) -> None:
        for name in ("max_order_notional", "max_open_orders", "max_open_orders_per_symbol",
                     "client_submit_rate_per_s", "client_submit_burst"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{key}.{name}: must not be negative")
        for symbol in self.symbols:
            if not re.fullmatch(r"[A-Za-z0-9]+/[A-Za-z0-9]+", symbol):
                raise ConfigError(f"{key}.symbols: {symbol!r} is not BASE/QUOTE")


MAX_CONCURRENCY = 256
"""Workers per exchange: one thread each (about 8 MB of address space, little RSS)."""


@dataclass(frozen=True)
class ExchangeConfig:
    """[[exchanges]]: one exchange account."""

    name: str = "paper"
    driver: str = "paper"
    account: str = "default"
    concurrency: int = 4
    """Requests to this exchange that may be in flight at once (one worker each)."""
    rate_limit_per_s: float | None = None
    """Requests per second for all workers together (creates and cancels take their place
    without waiting); None: no pace, the request budget alone."""
    retry_budget: float = 20.0
    """Retries that may be spent at once (the bucket's size)."""
    retry_budget_per_s: float = 2.0
    """Retries earned back per second."""
    faults: PaperFaults = field(default_factory=PaperFaults)
    limits: VenueLimits | None = None
    """binance's request limits kept by the paper venue; None (no table): none kept."""
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    """How the exchange's request weight and order counts are shared out."""
    api_url: str | None = None
    """Base URL replacing the exchange's API hosts (e.g. a local paper venue)."""
    # Credentials never show in repr, logs or errors.
    api_key: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    api_key_file: Path | None = None
    secret_file: Path | None = None
    timeout_ms: int = 10000
    """ccxt's request timeout."""
    recv_window_ms: int = DEFAULT_RECV_WINDOW_MS
    """binance driver: how long a signed request stays valid after its timestamp."""
    risk: RiskConfig = field(default_factory=RiskConfig)

    def check(self, key: str) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", self.name):
            raise ConfigError(f"{key}.name: use lower-case letters, digits and _ (max 32)")
        if self.driver not in DRIVERS:
            raise ConfigError(f"{key}.driver: {self.driver!r} is not one of {', '.join(DRIVERS)}")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ConfigError(f"{key}.concurrency: must be from 1 to {MAX_CONCURRENCY}")
        if self.rate_limit_per_s is not None and self.rate_limit_per_s <= 0:
            raise ConfigError(f"{key}.rate_limit_per_s: must be greater than 0")
        if self.retry_budget < 0 or self.retry_budget_per_s < 0:
            raise ConfigError(f"{key}.retry_budget: must not be negative")
        if self.faults != PaperFaults() and self.driver != "paper":
            raise ConfigError(f"{key}.faults: only the paper driver simulates faults")
        if self.limits is not None and self.driver != "paper":
            raise ConfigError(f"{key}.limits: only the paper driver simulates limits "
                              "(a real exchange keeps its own)")
        if self.api_url is not None and not API_URL.fullmatch(self.api_url):
            raise ConfigError(f"{key}.api_url: expected http(s)://HOST[:PORT]")
        if not 100 <= self.timeout_ms <= 600_000:
            raise ConfigError(f"{key}.timeout_ms: must be from 100 to 600000")
        if not 1000 <= self.recv_window_ms <= 60_000:  # binance refuses more than 60000
            raise ConfigError(f"{key}.recv_window_ms: must be from 1000 to 60000")
        if self.driver == "paper":
            for name in ("api_url", "api_key", "secret", "api_key_file", "secret_file"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"{key}.{name}: the paper driver takes no {name}")
        else:
            self.credentials(key)

    def credentials(self, key: str = "exchanges") -> tuple[str, str]:
        """(api key, secret): from the config, else its files, else the environment."""
        return (self._credential(key, "api_key", "API_KEY"),
                self._credential(key, "secret", "SECRET"))

    def _credential(self, key: str, name: str, env_suffix: str) -> str:
        value: str | None = getattr(self, name)
        path: Path | None = getattr(self, f"{name}_file")
        env = f"ORDERD_{self.name.upper()}_{env_suffix}"
        if value is not None and path is not None:
            raise ConfigError(f"{key}.{name}: set {name} or {name}_file, not both")
        if path is not None:
            try:
                value = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or "not UTF-8 text"
                raise ConfigError(f"{key}.{name}_file: cannot read {path} ({reason})") from None
            if not value:
                raise ConfigError(f"{key}.{name}_file: {path} is empty")
            return value
        if value is None:
            value = os.environ.get(env)
        if not value:
            raise ConfigError(f"{key}.{name}: the {self.driver} driver needs {name}, "
                              f"{name}_file or the environment variable {env}")
        return value


@dataclass(frozen=True)
class OrdersConfig:
    """[orders]: how orders are handled."""

    accept_timeout_s: float = 5.0
    """The submit deadline for wait=accepted and the cancel deadline."""
    client_id_prefix: str = "od-"
    """Prefix of the client order ids the daemon makes."""
    send_deadline_s: float = 30.0
    """An order not sent within this long of its submission expires instead."""
    max_backlog: int = 2000
    """Orders sent to one exchange's workers whose create is not yet answered, from which
    on a new submit to it is answered `rate_limited` rather than left to expire unsent.
    Kept below OrderActor's window of recently finished orders (4096), so the late
    verification of an order that filled at once finds it in memory, not in the ledger."""
    start_halted: bool = False
    """Start halted (recorded like any halt): submits wait for `resume`."""

    def check(self, key: str) -> None:
        if not 0.01 <= self.accept_timeout_s <= 300:
            raise ConfigError(f"{key}.accept_timeout_s: must be from 0.01 to 300")
        if not CLIENT_ID_PREFIX.fullmatch(self.client_id_prefix):
            raise ConfigError(f"{key}.client_id_prefix: up to 8 of [A-Za-z0-9_-]")
        if self.send_deadline_s < self.accept_timeout_s:
            raise ConfigError(f"{key}.send_deadline_s: must be at least accept_timeout_s")
        if self.max_backlog < 1:
            raise ConfigError(f"{key}.max_backlog: must be at least 1")


@dataclass(frozen=True)
class TrackingConfig:
    """[tracking]: how often open orders are looked up until they are terminal."""

    interval_s: float = 2.0
    young_interval_s: float = 0.5
    young_age_s: float = 60.0
    stream: bool = True
    """Listen to each exchange's user-data stream where its driver has one (binance,
    paper)."""
    safety_interval_s: float = 60.0
    """How often a symbol is read while its exchange's stream is live."""
    stream_stale_s: float = 10.0
    """A stream with no event and no heartbeat for this long is stale: tracking takes
    over at its normal pace, and the stream is connected again."""

    def check(self, key: str) -> None:
        for name in ("interval_s", "young_interval_s", "safety_interval_s",
                     "stream_stale_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{key}.{name}: must be greater than 0")
        if self.young_age_s < 0:
            raise ConfigError(f"{key}.young_age_s: must not be negative")


@dataclass(frozen=True)
class ScheduleConfig:
    """[schedule]: when reconciliation runs (UTC)."""

    interval: str = "daily"
    time: str = "02:00"
    day: str = "mon"

    def check(self, key: str) -> None:
        if self.interval not in INTERVALS:
            raise ConfigError(f"{key}.interval: one of {', '.join(INTERVALS)}")
        if not HH_MM.fullmatch(self.time):
            raise ConfigError(f"{key}.time: HH:MM, from 00:00 to 23:59")
        if self.day not in DAYS:
            raise ConfigError(f"{key}.day: one of {', '.join(DAYS)}")


@dataclass(frozen=True)
class ReportingConfig:
    """[reporting]: where reconciliation reports go and how long they are kept."""

    file: Path | None = None
    """JSON lines; default `reconciliation.jsonl` in state_dir."""
    history_days: int = 30

    def check(self, key: str) -> None:
        if not 1 <= self.history_days <= 3650:
            raise ConfigError(f"{key}.history_days: must be from 1 to 3650")


@dataclass(frozen=True)
class ReconciliationConfig:
    """[reconciliation]: what one run does."""

    run_on_start: bool = False
    max_lookups_per_run: int = 500
    lookup_spacing_ms: float = 50.0
    min_age_s: float = 30.0

    def check(self, key: str) -> None:
        if not 0 <= self.max_lookups_per_run <= 1_000_000:
            raise ConfigError(f"{key}.max_lookups_per_run: must be from 0 to 1000000")
        for name in ("lookup_spacing_ms", "min_age_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{key}.{name}: must not be negative")


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    state_dir: Path = Path("var")
    log_level: str = "INFO"
    log_format: str = "text"
    cpu: int | str = AUTO
    """The CPU every thread of `orderd run` runs on: "auto", "any" or a number (see
    daemon.affinity); whether that CPU exists is checked when the daemon starts."""
    control: ControlConfig = field(default_factory=ControlConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    exchanges: tuple[ExchangeConfig, ...] = (ExchangeConfig(),)
    orders: OrdersConfig = field(default_factory=OrdersConfig)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    circuit_breaker: BreakerSettings = field(default_factory=BreakerSettings)
    resolution: ResolveSettings = field(default_factory=ResolveSettings)
    supervisor: SupervisorSettings = field(default_factory=SupervisorSettings)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    reporting: ReportingConfig = field(default_factory=ReportingConfig)
    reconciliation: ReconciliationConfig = field(default_factory=ReconciliationConfig)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)

    def check(self, key: str) -> None:
        if not self.exchanges:
            raise ConfigError("exchanges: configure at least one exchange")
        names = [e.name for e in self.exchanges]
        for name in names:
            if names.count(name) > 1:
                raise ConfigError(f"exchanges: name {name!r} is used twice")
        if self.control.endpoint == self.events.endpoint:
            raise ConfigError("events.endpoint: must differ from control.endpoint")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("log_level: one of DEBUG, INFO, WARNING, ERROR")
        if self.log_format not in ("text", "json"):
            raise ConfigError("log_format: text or json")
        wrong_cpu = check_cpu(self.cpu)
        if wrong_cpu is not None:
            raise ConfigError(f"cpu: {wrong_cpu}")
        for endpoint_key in ("control.endpoint", "events.endpoint"):
            section, _ = endpoint_key.split(".")
            endpoint = getattr(self, section).endpoint
            if not self.control.curve and not is_local(endpoint):
                reach = ("is an abstract socket (no file, so no permissions): any local "
                         "user can connect" if is_abstract(endpoint)
                         else "is reachable from other machines")
                raise ConfigError(
                    f"{endpoint_key}: {endpoint} {reach} and no authentication is "
                    "configured; bind to 127.0.0.1 or a filesystem ipc:// path, or set "
                    "control.curve_secret_key_file and control.curve_clients_dir")

    @property
    def default_exchange(self) -> str:
        return self.exchanges[0].name

    @property
    def report_file(self) -> Path:
        return self.reporting.file or self.state_dir / "reconciliation.jsonl"

    def exchange(self, name: str) -> ExchangeConfig:
        return next(e for e in self.exchanges if e.name == name)


def load_config(path: Path | None) -> Config:
    """The configuration from a TOML file, or the defaults when `path` is None.

    Relative paths in a file are relative to the file's own folder.
    """
    if path is None:
        return build(Config, {}, "", Path.cwd())
    try:
        with path.open("rb") as handle:
            table = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return build(Config, table, "", path.resolve().parent)
