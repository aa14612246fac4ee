"""The configuration dict of the Python library, turned into the daemon's Config.

The executors take the original module's dict: the daemon's keys as a dict
(`state_dir`, `retry`, `circuit_breaker`, `orders`, `tracking`, ...), where one
exchange may be given as `"exchange": {...}` instead of `"exchanges": [{...}]`:

    {"exchange": {"name": "paper", "driver": "paper"},
     "state_dir": "/var/lib/myapp/orders",
     "retry": {"max_retries": 3, "backoff_base": 2.0, "initial_delay": 0.2,
               "max_delay": 10.0, "retryable_errors": ["NetworkError", ...]},
     "circuit_breaker": {"error_threshold": ..., "warning_threshold": ...,
                         "window_size_minutes": ..., "cool_down_seconds": ...}}

It is loaded as strictly as the TOML file: an unknown key or a wrong type is a
`ConfigError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daemon.config import Config
from daemon.config_loader import ConfigError, build


def executor_table(config: Mapping[str, Any]) -> dict[str, Any]:
    """The daemon's table from the library's dict (`exchange` becomes `exchanges`)."""
    if not isinstance(config, Mapping):
        raise ConfigError("config", "expected a dict")
    table = dict(config)
    if "exchange" in table:
        if "exchanges" in table:
            raise ConfigError("exchange", "give exchange or exchanges, not both")
        table["exchanges"] = [table.pop("exchange")]
    return table


def executor_config(config: Mapping[str, Any] | Config | None,
                    base_dir: Path | None = None) -> Config:
    """A Config from the library's dict (None: every default, the paper venue);
    relative paths are relative to `base_dir` (default: the current folder)."""
    if isinstance(config, Config):
        return config
    return build(Config, executor_table(config or {}), "", base_dir or Path.cwd())


EXCHANGE_KEYS = frozenset({"name", "driver", "account", "faults", "api_url", "api_key", "secret",
                           "api_key_file", "secret_file", "timeout_ms", "budget"})
BASIC_KEYS: dict[str, frozenset[str] | None] = {
    "state_dir": None, "retry": None, "exchange": EXCHANGE_KEYS, "exchanges": EXCHANGE_KEYS,
    "orders": frozenset({"client_id_prefix"}),
    "resolution": frozenset({"interval_s", "window_s", "absent_needed", "clock_skew_s"}),
}
"""What BasicOrderExecutor uses: each section, and its keys where it uses only some."""


def basic_config(config: Mapping[str, Any] | Config | None,
                 base_dir: Path | None = None) -> Config:
    """As `executor_config`, refusing the settings BasicOrderExecutor would not honour
    (a circuit breaker, tracking, a retry budget, ...) with a ConfigError naming the key.
    A Config object is taken as it is."""
    loaded = executor_config(config, base_dir)  # unknown keys and wrong types first
    if isinstance(config, Mapping):
        for key, value in config.items():
            _refuse_unused(key, value)
    return loaded


def _refuse_unused(key: str, value: Any) -> None:
    if key not in BASIC_KEYS:
        raise ConfigError(key, "not supported by BasicOrderExecutor (it has no ledger, "
                               "circuit breaker, tracking or scheduler); remove it, or use "
                               "ReliableOrderExecutor")
    used = BASIC_KEYS[key]
    tables = list(enumerate(value)) if key == "exchanges" else [(None, value)]
    for index, table in tables:
        where = key if index is None else f"{key}[{index}]"
        for name in table:
            if used is not None and name not in used:
                raise ConfigError(f"{where}.{name}", "not supported by BasicOrderExecutor; "
                                  "remove it, or use ReliableOrderExecutor")
