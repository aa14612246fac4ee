"""SIGHUP: read the configuration file again and apply what is safe to change live.

Each reloadable part registers a hook that applies the new configuration and
says what it did. Everything else (endpoints, exchanges, state_dir) needs a
restart; a reload that changes it says so and leaves it as it is.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path

from actors.exchange.config import ExchangeConfig
from actors.order.config import RiskConfig
from daemon.config import Config, load_config
from daemon.config_loader import ConfigError

log = logging.getLogger(__name__)

ReloadHook = Callable[[Config], str]
"""Applies the new configuration; returns a short account of what it did."""


class Reloader:
    """Holds the reload hooks and the configuration currently applied."""

    def __init__(self, config: Config, path: Path | None) -> None:
        self.config = config
        self.path = path
        self._hooks: list[ReloadHook] = []

    def register(self, hook: ReloadHook) -> None:
        self._hooks.append(hook)

    def reload(self) -> bool:
        """Apply the file's reloadable settings; False (and nothing changed) on a bad file."""
        try:
            new = load_config(self.path)
        except ConfigError as exc:
            log.error("reload refused, configuration unchanged: %s", exc)
            return False
        done = [hook(new) for hook in self._hooks]
        log.info("reloaded %s: %s", self.path or "(defaults)", "; ".join(done))
        ignored = _needs_restart(self.config, new)
        if ignored:
            log.warning("reload: changes to %s need a restart and were not applied",
                        ", ".join(ignored))
        self.config = dataclasses.replace(
            self.config, log_level=new.log_level, alerts=new.alerts,
            exchanges=tuple(dataclasses.replace(old, risk=fresh.risk)
                            for old, fresh in zip(self.config.exchanges, new.exchanges,
                                                  strict=False)))
        return True


def _needs_restart(old: Config, new: Config) -> list[str]:
    keys = [f.name for f in dataclasses.fields(Config)
            if f.name not in ("log_level", "exchanges", "alerts")]
    changed = [key for key in keys if getattr(old, key) != getattr(new, key)]
    def without_risk(config: Config) -> list[ExchangeConfig]:
        return [dataclasses.replace(e, risk=RiskConfig()) for e in config.exchanges]

    if without_risk(old) != without_risk(new):
        changed.append("exchanges")
    return changed
