"""The configuration schema of orderd (TOML). Every key has a default."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from daemon.config_loader import ConfigError, build
from daemon.security import is_local

ENDPOINT = re.compile(r"tcp://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.*-]+):(\d{1,5})|ipc://.+")
DRIVERS = ("paper",)
CLIENT_ID_PREFIX = re.compile(r"[A-Za-z0-9_-]{0,8}")


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
class FaultsConfig:
    """[exchanges.faults]: simulated misbehaviour of the paper venue."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    ambiguous_rate: float = 0.0
    reject_rate: float = 0.0
    outage_after_s: float | None = None
    outage_duration_s: float = 0.0
    seed: int = 0

    def check(self, key: str) -> None:
        for name in ("error_rate", "ambiguous_rate", "reject_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{key}.{name}: must be from 0 to 1")
        for name in ("latency_ms", "outage_duration_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{key}.{name}: must not be negative")


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


@dataclass(frozen=True)
class ExchangeConfig:
    """[[exchanges]]: one exchange account."""

    name: str = "paper"
    driver: str = "paper"
    account: str = "default"
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    risk: RiskConfig = field(default_factory=RiskConfig)

    def check(self, key: str) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", self.name):
            raise ConfigError(f"{key}.name: use lower-case letters, digits and _ (max 32)")
        if self.driver not in DRIVERS:
            raise ConfigError(f"{key}.driver: {self.driver!r} is not one of {', '.join(DRIVERS)}")
        if self.faults != FaultsConfig() and self.driver != "paper":
            raise ConfigError(f"{key}.faults: only the paper driver simulates faults")


@dataclass(frozen=True)
class OrdersConfig:
    """[orders]: how orders are handled."""

    accept_timeout_s: float = 5.0
    """The submit deadline for wait=accepted and the cancel deadline."""
    client_id_prefix: str = "od-"
    """Prefix of the client order ids the daemon makes."""
    refresh_interval_s: float = 2.0
    """How often live orders are looked up on their exchange."""

    def check(self, key: str) -> None:
        if not 0.01 <= self.accept_timeout_s <= 300:
            raise ConfigError(f"{key}.accept_timeout_s: must be from 0.01 to 300")
        if not CLIENT_ID_PREFIX.fullmatch(self.client_id_prefix):
            raise ConfigError(f"{key}.client_id_prefix: up to 8 of [A-Za-z0-9_-]")
        if self.refresh_interval_s <= 0:
            raise ConfigError(f"{key}.refresh_interval_s: must be greater than 0")


@dataclass(frozen=True)
class Config:
    """The whole configuration."""

    state_dir: Path = Path("var")
    log_level: str = "INFO"
    log_format: str = "text"
    control: ControlConfig = field(default_factory=ControlConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    exchanges: tuple[ExchangeConfig, ...] = (ExchangeConfig(),)
    orders: OrdersConfig = field(default_factory=OrdersConfig)

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
        for endpoint_key in ("control.endpoint", "events.endpoint"):
            section, _ = endpoint_key.split(".")
            endpoint = getattr(self, section).endpoint
            if not self.control.curve and not is_local(endpoint):
                raise ConfigError(
                    f"{endpoint_key}: {endpoint} is reachable from other machines and no "
                    "authentication is configured; bind to 127.0.0.1 or an ipc:// path, or "
                    "set control.curve_secret_key_file and control.curve_clients_dir")

    @property
    def default_exchange(self) -> str:
        return self.exchanges[0].name

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
