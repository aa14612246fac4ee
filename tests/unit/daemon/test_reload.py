"""SIGHUP's Reloader: per-exchange settings apply by name, to running exchanges only."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from daemon.config import Config, load_config
from daemon.reload import Reloader


def entry(name: str, symbol: str) -> str:
    return (f'[[exchanges]]\nname = "{name}"\ndriver = "paper"\n'
            f'[exchanges.risk]\nsymbols = ["{symbol}"]\n')


def started(tmp_path: Path, *entries: str) -> tuple[Reloader, list[Config]]:
    """A Reloader of a file with `entries`, and what its one hook is given."""
    path = tmp_path / "orderd.toml"
    path.write_text("".join(entries))
    reloader = Reloader(load_config(path), path)
    given: list[Config] = []

    def hook(config: Config) -> str:
        given.append(config)
        return "noted"

    reloader.register(hook)
    return reloader, given


def symbols(config: Config) -> dict[str, tuple[str, ...]]:
    return {e.name: tuple(e.risk.symbols) for e in config.exchanges}


def test_limits_follow_the_name_when_entries_move(tmp_path: Path) -> None:
    reloader, given = started(tmp_path, entry("a", "BTC/USD"), entry("b", "ETH/USD"))
    assert reloader.path is not None
    reloader.path.write_text(entry("b", "SOL/USD") + entry("a", "ETH/USD"))
    assert reloader.reload()
    assert symbols(given[0]) == {"a": ("ETH/USD",), "b": ("SOL/USD",)}
    assert symbols(reloader.config) == symbols(given[0])


def test_a_running_exchange_the_file_drops_keeps_its_limits(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    reloader, given = started(tmp_path, entry("a", "BTC/USD"), entry("b", "ETH/USD"))
    assert reloader.path is not None
    reloader.path.write_text(entry("b", "SOL/USD") + entry("c", "BTC/USD"))
    with caplog.at_level(logging.INFO, logger="daemon.reload"):
        assert reloader.reload()
    # the running exchanges, in their order; c starts only with a restart
    assert symbols(given[0]) == {"a": ("BTC/USD",), "b": ("SOL/USD",)}
    assert "changes to exchanges need a restart and were not applied" in caplog.text
    assert "keep their risk limits until a restart: a" in caplog.text
    assert "were not applied (a restart starts them): c" in caplog.text
