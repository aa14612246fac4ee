"""SIGHUP: read the configuration file again and apply what is safe to change live.

Each reloadable part registers a hook that applies the new configuration and
says what it did. Everything else (endpoints, exchanges, state_dir) needs a
restart; a reload that changes it says so and leaves it as it is.

What is set per exchange (its risk limits) applies by name, and only to the
exchanges that are running: a running exchange the file no longer names (renamed
or removed, which takes a restart) keeps what it had, and an entry the file adds
waits for the restart that starts its exchange.
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
"""Applies the reloaded configuration, whose exchanges are the running ones (see
`_applicable`); returns a short account of what it did."""


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
        applied = _applicable(self.config, new)
        done = [hook(applied) for hook in self._hooks]
        log.info("reloaded %s: %s", self.path or "(defaults)", "; ".join(done))
        ignored = _needs_restart(self.config, new)
        if ignored:
            log.warning("reload: changes to %s need a restart and were not applied",
                        ", ".join(ignored))
        for unmatched in _unmatched(self.config, new):
            log.warning("reload: %s", unmatched)
        self.config = applied
        return True


def _applicable(running: Config, new: Config) -> Config:
    """The configuration a reload applies: the file's log level and alerts, and each
    running exchange's risk from the file's entry of the same name (its own where the
    file has none). Matched by name: positions change when an entry is added or moved."""
    fresh = {e.name: e.risk for e in new.exchanges}
    exchanges = tuple(dataclasses.replace(e, risk=fresh.get(e.name, e.risk))
                      for e in running.exchanges)
    return dataclasses.replace(running, log_level=new.log_level, alerts=new.alerts,
                               exchanges=exchanges)


def _unmatched(running: Config, new: Config) -> list[str]:
    """Per-exchange settings the reload could not apply by name, said so an operator
    knows which limits are in force."""
    old_names = [e.name for e in running.exchanges]
    new_names = [e.name for e in new.exchanges]
    kept = [name for name in old_names if name not in new_names]
    waiting = [name for name in new_names if name not in old_names]
    said = []
    if kept:
        said.append("running exchanges the file does not name keep their risk limits "
                    f"until a restart: {', '.join(kept)}")
    if waiting:
        said.append("risk limits of exchanges that are not running were not applied "
                    f"(a restart starts them): {', '.join(waiting)}")
    return said


def _needs_restart(old: Config, new: Config) -> list[str]:
    keys = [f.name for f in dataclasses.fields(Config)
            if f.name not in ("log_level", "exchanges", "alerts")]
    changed = [key for key in keys if getattr(old, key) != getattr(new, key)]
    def without_risk(config: Config) -> list[ExchangeConfig]:
        return [dataclasses.replace(e, risk=RiskConfig()) for e in config.exchanges]

    if without_risk(old) != without_risk(new):
        changed.append("exchanges")
    return changed
