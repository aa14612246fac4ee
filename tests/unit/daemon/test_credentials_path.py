"""Paths in systemd's credentials folder ($CREDENTIALS_DIRECTORY), and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import load_config
from daemon.config_loader import ConfigError


def alerts_file(tmp_path: Path, value: str) -> Path | None:
    config = tmp_path / "orderd.toml"
    config.write_text(f'[alerts]\nfile = "{value}"\n')
    return load_config(config).alerts.file


@pytest.mark.parametrize("value", ["$CREDENTIALS_DIRECTORY/x", "${CREDENTIALS_DIRECTORY}/x"])
def test_a_path_may_start_in_the_credentials_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/orderd@a.service")
    assert alerts_file(tmp_path, value) == Path("/run/credentials/orderd@a.service/x")


@pytest.mark.parametrize("value", ["$CREDENTIALS_DIRECTORYX/x", "sub/$CREDENTIALS_DIRECTORY",
                                   "$HOME/x"])
def test_nothing_else_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  value: str) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/orderd.service")
    assert alerts_file(tmp_path, value) == tmp_path / value


def test_outside_systemd_the_key_is_named(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match=r"^alerts\.file: \$CREDENTIALS_DIRECTORY is not"):
        alerts_file(tmp_path, "$CREDENTIALS_DIRECTORY/x")
