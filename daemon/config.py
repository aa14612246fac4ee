"""The configuration of orderd (TOML): the whole `Config`, and the sections the
process itself reads ([control], [events], the top-level keys). Every other section is
defined in the package that reads it; every key has a default."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from actors.circuit.breakers import BreakerSettings
from actors.exchange.config import ExchangeConfig
from actors.exchange.retry import RetryPolicy
from actors.metrics.actor import MetricsSettings
from actors.metrics.alert_sinks import AlertSettings
from actors.order.config import OrdersConfig, TrackingConfig
from actors.order.resolution import ResolveSettings
from actors.reconcile.config import ReconciliationConfig, ReportingConfig
from actors.reconcile.schedule import Schedule
from actors.supervisor import SupervisorSettings
from daemon.affinity import AUTO, check_cpu
from daemon.config_loader import ConfigError, build
from daemon.security import is_abstract, is_local
from protocol.codec import DEFAULT_MAX_REQUEST_BYTES

ENDPOINT = re.compile(r"tcp://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.*-]+):(\d{1,5})|ipc://.+")


def check_endpoint(value: str) -> None:
    match = ENDPOINT.fullmatch(value)
    if match is None or (match.group(2) is not None and not 0 < int(match.group(2)) < 65536):
        raise ValueError(f"endpoint: {value!r} is not tcp://HOST:PORT or ipc://PATH")


@dataclass(frozen=True)
class ControlConfig:
    """[control]: the command socket (ROUTER)."""

    endpoint: str = "tcp://127.0.0.1:5555"
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    curve_secret_key_file: Path | None = None
    """The server's secret certificate (zmq.auth format); turns CURVE on."""
    curve_clients_dir: Path | None = None
    """Public certificates of the only clients let in."""

    def check(self) -> None:
        check_endpoint(self.endpoint)
        if not 64 <= self.max_request_bytes <= 16 * 1024 * 1024:
            raise ValueError("max_request_bytes: must be from 64 to 16777216")
        if (self.curve_secret_key_file is None) != (self.curve_clients_dir is None):
            raise ValueError("curve_secret_key_file: set it together with "
                             "curve_clients_dir, or neither")
        if self.curve_secret_key_file is not None and not self.curve_secret_key_file.is_file():
            raise ValueError(f"curve_secret_key_file: {self.curve_secret_key_file} "
                             "is not a file")
        if self.curve_clients_dir is not None and not self.curve_clients_dir.is_dir():
            raise ValueError(f"curve_clients_dir: {self.curve_clients_dir} is not a folder")

    @property
    def curve(self) -> bool:
        return self.curve_secret_key_file is not None


@dataclass(frozen=True)
class EventsConfig:
    """[events]: the order event socket (PUB)."""

    endpoint: str = "tcp://127.0.0.1:5556"

    def check(self) -> None:
        check_endpoint(self.endpoint)


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
    schedule: Schedule = field(default_factory=Schedule)
    reporting: ReportingConfig = field(default_factory=ReportingConfig)
    reconciliation: ReconciliationConfig = field(default_factory=ReconciliationConfig)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)

    def check(self) -> None:
        """ValueError('key: why'), the key from the top of the file."""
        if not self.exchanges:
            raise ValueError("exchanges: configure at least one exchange")
        names = [e.name for e in self.exchanges]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"exchanges: name {name!r} is used twice")
        if self.control.endpoint == self.events.endpoint:
            raise ValueError("events.endpoint: must differ from control.endpoint")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("log_level: one of DEBUG, INFO, WARNING, ERROR")
        if self.log_format not in ("text", "json"):
            raise ValueError("log_format: text or json")
        wrong_cpu = check_cpu(self.cpu)
        if wrong_cpu is not None:
            raise ValueError(f"cpu: {wrong_cpu}")
        for endpoint_key in ("control.endpoint", "events.endpoint"):
            section, _ = endpoint_key.split(".")
            endpoint = getattr(self, section).endpoint
            if not self.control.curve and not is_local(endpoint):
                reach = ("is an abstract socket (no file, so no permissions): any local "
                         "user can connect" if is_abstract(endpoint)
                         else "is reachable from other machines")
                raise ValueError(
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
        raise ConfigError(str(path), f"cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML ({exc})") from None
    except UnicodeDecodeError as exc:  # TOML is UTF-8; tomllib lets this through
        # where, not what: the line may hold a secret
        line = exc.object[:exc.start].count(b"\n") + 1
        raise ConfigError(str(path), f"not valid TOML (not UTF-8 at line {line})") from None
    return build(Config, table, "", path.resolve().parent)
