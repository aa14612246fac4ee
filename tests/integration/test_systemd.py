"""systemd: the unit file, the notify protocol, the watchdog, SIGHUP and SIGUSR1."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.client import OrderdClient
from protocol.errors import ProtocolError
from tests.helpers import (
    ROOT,
    DaemonProcess,
    VenueProcess,
    market_buy,
    running_daemon,
    wait_until,
    write_config,
)
from tests.integration.test_budget_daemon import NO_STREAM, entry

SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"


class NotifySocket:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(15)
        self.seen: list[str] = []

    def next(self) -> list[str]:
        lines = self.sock.recv(4096).decode().split("\n")
        self.seen.extend(lines)
        return lines

    def until(self, wanted: str) -> list[str]:
        """Every line received up to and including the first that starts with `wanted`."""
        lines: list[str] = []
        while True:
            for line in self.next():
                lines.append(line)
                if line.startswith(wanted):
                    return lines

    def close(self) -> None:
        self.sock.close()


@pytest.fixture()
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(tmp_path / "notify.sock")
    yield sock
    sock.close()


def installed_orderd() -> str:
    """This virtualenv's orderd, as /opt/orderd/bin/orderd is in a deployment; the module
    where the package is not installed (verify insists the program exists)."""
    script = Path(sys.executable).parent / "orderd"
    return str(script) if script.exists() else f"{sys.executable} -m daemon.cli"


@pytest.mark.parametrize("unit,name", [("orderd.service", "orderd.service"),
                                       ("orderd@.service", "orderd@main.service")])
def test_unit_files_verify_without_a_word(tmp_path: Path, unit: str, name: str) -> None:
    if not os.path.exists(SYSTEMD_ANALYZE):
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    text = (ROOT / "etc" / unit).read_text()
    assert "ExecStart=/opt/orderd/bin/orderd --config /etc/orderd/" in text
    (tmp_path / unit).write_text(text.replace("/opt/orderd/bin/orderd", installed_orderd()))
    # an instance name loads the template, as `systemctl start orderd@main` does
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(tmp_path / name)],
                            capture_output=True, text=True, timeout=60)
    assert result.stdout + result.stderr == "" and result.returncode == 0


def settings(unit: str) -> list[str]:
    return [line for line in unit.splitlines() if line and not line.startswith("#")]


def test_the_template_is_the_unit_per_instance() -> None:
    """Hardening and restarts must not drift apart between the two files."""
    single = (ROOT / "etc" / "orderd.service").read_text()
    expected = (single.replace("daemon\n", "daemon %i\n")
                .replace("/etc/orderd/orderd.toml", "/etc/orderd/%i.toml")
                .replace("StateDirectory=orderd\n", "StateDirectory=orderd-%i\n")
                .replace("RuntimeDirectory=orderd\n", "RuntimeDirectory=orderd-%i\n")
                .replace("/etc/orderd/credentials\n", "/etc/orderd/credentials/%i\n"))
    template = (ROOT / "etc" / "orderd@.service").read_text()
    assert settings(template) == settings(expected)


def test_ready_status_watchdog_then_stopping(tmp_path: Path, notify: NotifySocket) -> None:
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"}
    daemon = DaemonProcess(tmp_path, env=env).start()
    try:
        notify.until("READY=1")
        notify.until("STATUS=ready")
        notify.until("WATCHDOG=1")
        notify.until("WATCHDOG=1")
    finally:
        assert daemon.stop() == 0
    notify.until("STOPPING=1")
    order = [line.split("=")[0] for line in notify.seen]
    first = {key: order.index(key) for key in ("READY", "STATUS", "WATCHDOG", "STOPPING")}
    assert first["READY"] < first["STATUS"] < first["WATCHDOG"] < first["STOPPING"]


def test_a_busy_exchange_worker_keeps_the_watchdog_fed(tmp_path: Path,
                                                      notify: NotifySocket) -> None:
    """The venue holds the create's answer until the test lets it go, so the one exchange
    worker is busy on it all the while the test watches: busy is not hung, and
    WATCHDOG=1 (every 0.2 s here) keeps coming. A hung actor that must answer pings is in
    tests/unit/daemon/test_watchdog.py."""
    venue = VenueProcess(tmp_path / "venue")
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"}
    try:
        venue.script({"path": "/api/v3/order", "method": "POST", "fault": "hold_answer"})
        with running_daemon(tmp_path, exchanges=entry(venue) + "concurrency = 1\n",
                            tracking=NO_STREAM, env=env) as daemon:
            notify.until("WATCHDOG=1")
            client = daemon.client()
            sent = client.submit(market_buy(), wait="durable")
            wait_until(lambda: venue.held() == 1, "the create's answer held")
            for _ in range(3):  # 0.6 s with the worker waiting on the create
                notify.until("WATCHDOG=1")
            assert not any("not answering" in line for line in notify.seen), notify.seen
            assert venue.held() == 1, "the create was answered before the watchdog beat"
            order = client.status(client_order_id=sent["client_order_id"])
            assert order["status"] != "filled", "the create was over before the watchdog beat"
            assert venue.release() == 1
            assert daemon.stop() == 0
    finally:
        venue.stop()


def test_sighup_reloads_risk_limits_and_log_level(tmp_path: Path,
                                                  notify: NotifySocket) -> None:
    risky = ('[[exchanges]]\nname = "paper"\n[exchanges.risk]\nsymbols = ["BTC/USD"]\n')
    with running_daemon(tmp_path, exchanges=risky,
                        env={"NOTIFY_SOCKET": str(notify.path)}) as daemon:
        client = daemon.client()
        eth = market_buy(symbol="ETH/USD", amount="0.01")
        with pytest.raises(ProtocolError) as refused:
            client.submit(eth)
        assert refused.value.code == "risk_rejected"
        notify.until("READY=1")
        write_config(daemon.config, control=daemon.control, events=daemon.events,
                     extra='log_level = "DEBUG"', exchanges='[[exchanges]]\nname = "paper"\n')
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        notify.until("RELOADING=1")
        notify.until("READY=1")
        log = daemon.wait_for_log("reloaded")
        assert "log level DEBUG" in log and "risk limits paper: none" in log
        assert client.submit(eth)["status"] == "filled"
        assert daemon.stop() == 0


def test_a_reload_that_renames_a_running_exchange_keeps_its_limits(
        tmp_path: Path) -> None:
    """The rename needs a restart and is reported as not applied; the limits used to be
    replaced by the new file's names, leaving the running exchange with none."""
    risky = ('[[exchanges]]\nname = "paper"\n[exchanges.risk]\nsymbols = ["BTC/USD"]\n')
    with running_daemon(tmp_path, exchanges=risky) as daemon:
        client = daemon.client()
        eth = market_buy(symbol="ETH/USD", amount="0.01")
        with pytest.raises(ProtocolError) as refused:
            client.submit(eth)
        assert refused.value.code == "risk_rejected"
        # the same limits, the entry renamed for the next restart
        write_config(daemon.config, control=daemon.control, events=daemon.events,
                     exchanges=risky.replace('"paper"', '"paper_main"'))
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        # the last of the reload's lines
        log = daemon.wait_for_log("were not applied (a restart starts them): paper_main")
        assert "changes to exchanges need a restart and were not applied" in log
        assert "keep their risk limits until a restart: paper\n" in log
        with pytest.raises(ProtocolError) as still:
            client.submit(eth)
        assert still.value.code == "risk_rejected"
        assert daemon.stop() == 0


def test_a_bad_file_on_reload_changes_nothing(tmp_path: Path) -> None:
    risky = ('[[exchanges]]\nname = "paper"\n[exchanges.risk]\nsymbols = ["BTC/USD"]\n')
    with running_daemon(tmp_path, exchanges=risky) as daemon:
        daemon.config.write_text("this is = not [toml")
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for_log("reload refused, configuration unchanged")
        with pytest.raises(ProtocolError) as refused:
            daemon.client().submit(market_buy(symbol="ETH/USD"))
        assert refused.value.code == "risk_rejected"
        assert daemon.client().ping()["state"] == "ready"


def test_a_file_that_is_not_utf8_on_reload_changes_nothing(tmp_path: Path) -> None:
    """A comment saved in Latin-1: the reload's UnicodeDecodeError used to end the
    daemon's main thread with a traceback, and the daemon with it."""
    with running_daemon(tmp_path) as daemon:
        daemon.config.write_bytes(b"# caf\xe9\n" + daemon.config.read_bytes())
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        log = daemon.wait_for_log("reload refused, configuration unchanged")
        assert "not UTF-8" in log and "Traceback" not in log
        assert daemon.client().ping()["state"] == "ready"
        assert daemon.stop() == 0


def test_a_reload_that_fails_otherwise_than_on_a_bad_file_leaves_the_daemon_serving(
        tmp_path: Path) -> None:
    """An alert program's path too long for the file system: its check raises OSError,
    not a ConfigError, and the reload's error used to end the daemon's main thread."""
    with running_daemon(tmp_path) as daemon:
        daemon.config.write_text(daemon.config.read_text()
                                 + f'\n[alerts]\nexec = "/{"a" * 5000}"\n')
        assert daemon.process is not None
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for_log("reload failed, possibly part-way")
        assert daemon.client().ping()["state"] == "ready"
        assert daemon.stop() == 0


def test_check_config_of_a_file_that_is_not_utf8_names_it(tmp_path: Path) -> None:
    bad = tmp_path / "orderd.toml"
    bad.write_bytes(b'log_level = "INFO" # caf\xe9\n')
    result = subprocess.run([sys.executable, "-m", "daemon.cli", "check-config", "--config",
                             str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert f"{bad}: not valid TOML (not UTF-8" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigusr1_logs_every_threads_stack(daemon: DaemonProcess) -> None:
    assert daemon.process is not None
    daemon.process.send_signal(signal.SIGUSR1)
    log = daemon.wait_for_log("thread frontend")
    assert "thread MainThread" in log and "_run" in log
    with OrderdClient(daemon.control) as client:
        assert client.ping()["state"] == "ready"


def test_client_text_never_reaches_the_notify_socket_as_assignments(
        tmp_path: Path, notify: NotifySocket) -> None:
    injection = "x\nWATCHDOG=trigger\nWATCHDOG_USEC=1"
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "400000"}
    with running_daemon(tmp_path, env=env) as daemon:
        hostile, calm = daemon.client(), daemon.client()
        notify.until("WATCHDOG=1")
        for reason in (injection, "surrogate \ud800 here"):
            with pytest.raises(ProtocolError) as refused:
                hostile.halt(reason)
            assert refused.value.code == "bad_request"
            assert refused.value.details == {"field": "reason"}
            assert calm.submit(market_buy())["status"] == "filled"  # served right behind
            assert calm.ping()["state"] == "ready"
        # the thread that feeds the watchdog is alive: WATCHDOG=1 keeps coming
        notify.until("WATCHDOG=1")
        notify.until("WATCHDOG=1")
        # a printable reason that looks like an assignment stays inside STATUS=
        assert hostile.halt("maintenance WATCHDOG=trigger")["state"] == "halted"
        status = notify.until("STATUS=halted")[-1]
        assert status.startswith("STATUS=halted (maintenance WATCHDOG=trigger)")
        notify.until("WATCHDOG=1")
        with pytest.raises(ProtocolError) as halted:
            calm.submit(market_buy())
        assert halted.value.code == "halted"
        assert halted.value.message.endswith("halted: maintenance WATCHDOG=trigger")
        assert daemon.stop() == 0
    assigned = [line.split("=", 1)[0] for line in notify.seen]
    assert set(assigned) <= {"READY", "STATUS", "WATCHDOG", "STOPPING"}, notify.seen
    assert all(line == "WATCHDOG=1" for line in notify.seen if line.startswith("WATCHDOG"))
