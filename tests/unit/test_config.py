"""Configuration loading and `orderd check-config`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config import load_config
from daemon.config_loader import ConfigError
from tests.helpers import ROOT


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "orderd.toml"
    path.write_text(text)
    return path


def test_defaults_without_a_file() -> None:
    config = load_config(None)
    assert config.control.endpoint == "tcp://127.0.0.1:5555"
    assert config.default_exchange == "paper"


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'state_dir = "here"\n'))
    assert config.state_dir == tmp_path / "here"


def test_shipped_config_is_valid() -> None:
    assert load_config(ROOT / "etc" / "orderd.toml").exchanges[0].driver == "paper"


@pytest.mark.parametrize("text,key", [
    ("colour = 1\n", "colour"),
    ("[control]\nendpoint = 5\n", "control.endpoint"),
    ('[control]\nendpoint = "http://x:1"\n', "control.endpoint"),
    ('[control]\nendpoint = "tcp://127.0.0.1:99999"\n', "control.endpoint"),
    ("[control]\nmax_request_bytes = true\n", "control.max_request_bytes"),
    ('[events]\nendpont = "tcp://127.0.0.1:1"\n', "events.endpont"),
    ('[[exchanges]]\nname = "p"\ndriver = "nasdaq"\n', "exchanges[0].driver"),
    ('[[exchanges]]\nname = "p"\n[exchanges.faults]\nerror_rate = 2\n',
     "exchanges[0].faults.error_rate"),
    ("state_dir = [1]\n", "state_dir"),
])
def test_bad_values_name_their_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert str(caught.value).startswith(f"{key}:")


def test_check_config_command(tmp_path: Path) -> None:
    bad = write(tmp_path, "[control]\nendpoint = 5\n")
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "check-config", "--config",
                             str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "control.endpoint" in result.stderr
    good = subprocess.run([sys.executable, "-m", "daemon.cli", "check-config", "--config",
                           str(ROOT / "etc" / "orderd.toml")], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert good.returncode == 0, good.stderr


def test_daemon_refuses_bad_config_with_status_2(tmp_path: Path) -> None:
    bad = write(tmp_path, "unknown_key = 1\n")
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "--config", str(bad)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "unknown_key" in result.stderr
