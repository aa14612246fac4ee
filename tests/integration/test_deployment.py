"""The deployment of docs/operations.md: the production configuration with systemd
credentials, and a backup of the ledger taken while the daemon runs."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.config import load_config
from tests.helpers import ROOT, DaemonProcess, market_buy, running_daemon

PRODUCTION = ROOT / "etc" / "orderd-production.toml"
API_KEY, SECRET = "prod-key-0123", "prod-secret-4567"


def credentials(folder: Path) -> Path:
    """What systemd's LoadCredential=orderd:/etc/orderd/credentials puts in place."""
    folder.mkdir(mode=0o700)
    (folder / "orderd_binance_api_key").write_text(API_KEY + "\n")
    (folder / "orderd_binance_secret").write_text(SECRET + "\n")
    return folder


def check_config(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    return subprocess.run([sys.executable, "-m", "daemon.cli", "check-config", "--config",
                           str(config)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**clean, **env})


def test_production_config_reads_the_systemd_credentials(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "orderd" / "orderd.toml"
    config.parent.mkdir(parents=True)
    shutil.copy(PRODUCTION, config)
    folder = credentials(tmp_path / "credentials")
    done = check_config(config, {"CREDENTIALS_DIRECTORY": str(folder)})
    assert done.returncode == 0, done.stderr
    # outside the service (no LoadCredential=): a clear message, no secret
    done = check_config(config, {})
    assert done.returncode == 2
    assert "exchanges[0].api_key_file: $CREDENTIALS_DIRECTORY is not set" in done.stderr
    assert API_KEY not in done.stdout + done.stderr


def test_production_state_dir_is_the_units_state_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials(tmp_path / "credentials")))
    config = load_config(PRODUCTION)
    assert config.exchanges[0].credentials() == (API_KEY, SECRET)
    unit = (ROOT / "etc" / "orderd.service").read_text()
    state = re.search(r"^StateDirectory=(\S+)$", unit, re.M)
    assert state is not None
    assert config.state_dir == Path("/var/lib") / state.group(1)
    # the quick start keeps its state in the source tree, wherever it is run from
    assert load_config(ROOT / "etc" / "orderd.toml").state_dir.resolve() == ROOT / "var"


def orders_in(ledger: Path) -> set[str]:
    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {row[0] for row in db.execute("SELECT client_order_id FROM orders")}
    finally:
        db.close()


def test_ledger_backup_while_running_restores(tmp_path: Path) -> None:
    sqlite = shutil.which("sqlite3")
    if sqlite is None:
        pytest.skip("the sqlite3 command is not installed (Debian package sqlite3)")
    backup = tmp_path / "backup" / "ledger.sqlite"
    for folder in ("backup", "live", "restored"):
        (tmp_path / folder).mkdir()
    with running_daemon(tmp_path / "live") as daemon:
        client = daemon.client()
        placed = {client.submit(market_buy())["client_order_id"] for _ in range(5)}
        done = subprocess.run([sqlite, str(daemon.state_dir / "ledger.sqlite"),
                               f".backup '{backup}'"], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert client.submit(market_buy())["status"] == "filled"  # it kept running
        daemon.stop()
    assert placed <= orders_in(backup)
    # restore: the backup is the ledger of a new daemon
    restored = DaemonProcess(tmp_path / "restored")
    restored.state_dir.mkdir()
    shutil.copy(backup, restored.state_dir / "ledger.sqlite")
    restored.start()
    try:
        cid = sorted(placed)[0]
        assert restored.client().status(client_order_id=cid)["status"] == "filled"
    finally:
        restored.stop()
