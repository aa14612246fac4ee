"""`[[exchanges]]`: one exchange account, as its workers, driver and budget are built."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from actors.exchange.drivers.ccxt_driver import DEFAULT_RECV_WINDOW_MS
from actors.exchange.drivers.paper import PaperFaults
from actors.exchange.limits import BudgetConfig
from actors.order.config import RiskConfig
from venue.limits import VenueLimits

DRIVERS = ("paper", "binance")
API_URL = re.compile(r"https?://[A-Za-z0-9.\[\]:-]+/?")
MAX_CONCURRENCY = 256
"""Workers per exchange: one thread each (about 8 MB of address space, little RSS)."""


STREAMED_BY_DEFAULT = frozenset({"binance", "paper"})
"""Drivers whose user-data stream is listened to unless the entry says `stream = false`
(every driver has one: binance's WebSocket API, the in-process paper venue's listeners)."""


def is_base_url(url: str) -> bool:
    """http(s)://HOST[:PORT] with a host and a port a socket can take: urlsplit refuses a
    port beyond 65535 only when a request is made, on every request."""
    if not API_URL.fullmatch(url):
        return False
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return False
    return bool(parts.hostname) and (port is None or port > 0)


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
    stream: bool | None = None
    """Listen to this account's user-data stream (with `[tracking] stream` on); None: the
    driver's default, on for binance and paper."""

    def streamed(self) -> bool:
        """Whether this entry's stream is listened to (when `[tracking] stream` is on)."""
        return self.driver in STREAMED_BY_DEFAULT if self.stream is None else self.stream

    def check(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", self.name):
            raise ValueError("name: use lower-case letters, digits and _ (max 32)")
        if self.driver not in DRIVERS:
            raise ValueError(f"driver: {self.driver!r} is not one of {', '.join(DRIVERS)}")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise ValueError(f"concurrency: must be from 1 to {MAX_CONCURRENCY}")
        if self.rate_limit_per_s is not None and self.rate_limit_per_s <= 0:
            raise ValueError("rate_limit_per_s: must be greater than 0")
        if self.retry_budget < 0 or self.retry_budget_per_s < 0:
            raise ValueError("retry_budget: must not be negative")
        if self.faults != PaperFaults() and self.driver != "paper":
            raise ValueError("faults: only the paper driver simulates faults")
        if self.limits is not None and self.driver != "paper":
            raise ValueError("limits: only the paper driver simulates limits "
                             "(a real exchange keeps its own)")
        if self.api_url is not None and not is_base_url(self.api_url):
            raise ValueError("api_url: expected http(s)://HOST[:PORT], a port from 1 to "
                             "65535")
        if not 100 <= self.timeout_ms <= 600_000:
            raise ValueError("timeout_ms: must be from 100 to 600000")
        if not 1000 <= self.recv_window_ms <= 60_000:  # binance refuses more than 60000
            raise ValueError("recv_window_ms: must be from 1000 to 60000")
        if self.driver == "paper":
            for name in ("api_url", "api_key", "secret", "api_key_file", "secret_file"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name}: the paper driver takes no {name}")
        else:
            self.credentials()

    def credentials(self) -> tuple[str, str]:
        """(api key, secret): from the config, else its files, else the environment;
        ValueError('field: why') when one is missing or unreadable."""
        return (self._credential("api_key", "API_KEY"), self._credential("secret", "SECRET"))

    def _credential(self, name: str, env_suffix: str) -> str:
        value: str | None = getattr(self, name)
        path: Path | None = getattr(self, f"{name}_file")
        env = f"ORDERD_{self.name.upper()}_{env_suffix}"
        if value is not None and path is not None:
            raise ValueError(f"{name}: set {name} or {name}_file, not both")
        if path is not None:
            try:
                value = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or "not UTF-8 text"
                raise ValueError(f"{name}_file: cannot read {path} ({reason})") from None
            if not value:
                raise ValueError(f"{name}_file: {path} is empty")
            return value
        if value is None:
            value = os.environ.get(env)
        if not value:
            raise ValueError(f"{name}: the {self.driver} driver needs {name}, "
                             f"{name}_file or the environment variable {env}")
        return value
