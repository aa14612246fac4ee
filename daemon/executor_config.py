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
        raise ConfigError("config: expected a dict")
    table = dict(config)
    if "exchange" in table:
        if "exchanges" in table:
            raise ConfigError("exchange: give exchange or exchanges, not both")
        table["exchanges"] = [table.pop("exchange")]
    return table


def executor_config(config: Mapping[str, Any] | Config | None,
                    base_dir: Path | None = None) -> Config:
    """A Config from the library's dict (None: every default, the paper venue);
    relative paths are relative to `base_dir` (default: the current folder)."""
    if isinstance(config, Config):
        return config
    return build(Config, executor_table(config or {}), "", base_dir or Path.cwd())
