"""Who gets in: loopback-only defaults, ipc permissions, CURVE, and refused clients."""

from __future__ import annotations

import contextlib
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq.auth

from protocol.client import EventSubscriber, NoAnswer, OrderdClient, ProtocolError
from tests.helpers import ROOT, DaemonProcess, free_ports, resting_limit_buy, running_daemon


def orderd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def orderctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "protocol.orderctl", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("host", ["0.0.0.0", "*", "[::]", "192.0.2.1", "example.org"])
def test_a_public_endpoint_without_authentication_is_refused(tmp_path: Path,
                                                             host: str) -> None:
    control, events = free_ports(2)
    config = tmp_path / "orderd.toml"
    config.write_text(f'[control]\nendpoint = "tcp://{host}:{control}"\n'
                      f'[events]\nendpoint = "tcp://127.0.0.1:{events}"\n')
    result = orderd("--config", str(config))
    assert result.returncode == 2
    assert "control.endpoint" in result.stderr and "no authentication" in result.stderr


def test_ipc_socket_files_are_owner_only(tmp_path: Path) -> None:
    control, events = f"ipc://{tmp_path}/control.sock", f"ipc://{tmp_path}/events.sock"
    with running_daemon(tmp_path, control=control, events=events) as daemon:
        for name in ("control.sock", "events.sock"):
            mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
            assert mode == 0o600, oct(mode)
        assert daemon.client().ping()["state"] == "ready"


@pytest.fixture(scope="module")
def curve_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    work = tmp_path_factory.mktemp("curve")
    keys, clients = work / "keys", work / "clients"
    clients.mkdir()
    keys.mkdir()
    zmq.auth.create_certificates(keys, "server")
    for name in ("allowed", "stranger"):
        assert orderctl("keygen", str(keys), "--name", name).returncode == 0
    (clients / "allowed.key").write_bytes((keys / "allowed.key").read_bytes())
    port = free_ports(1)[0]
    # a public endpoint: allowed only because CURVE is on
    daemon = DaemonProcess(work, control=f"tcp://0.0.0.0:{port}",
                           curve_keys=(keys / "allowed.key_secret", keys / "server.key"))
    daemon.config.write_text(daemon.config.read_text().replace(
        "[control]\n", '[control]\ncurve_secret_key_file = "keys/server.key_secret"\n'
                       'curve_clients_dir = "clients"\n'))
    daemon.control = f"tcp://127.0.0.1:{port}"
    with running(daemon):
        yield daemon


@contextlib.contextmanager
def running(daemon: DaemonProcess) -> Iterator[DaemonProcess]:
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def keyed(daemon: DaemonProcess, name: str, timeout_s: float = 5.0) -> OrderdClient:
    assert daemon.curve_keys is not None
    keys = daemon.curve_keys[1].parent
    return OrderdClient(daemon.control, timeout_s=timeout_s,
                        client_key_file=keys / f"{name}.key_secret",
                        server_key_file=keys / "server.key")


def test_a_listed_key_gets_in(curve_daemon: DaemonProcess) -> None:
    with keyed(curve_daemon, "allowed") as client:
        assert client.ping()["state"] == "ready"


def test_an_unlisted_key_and_a_plain_client_get_nothing(curve_daemon: DaemonProcess) -> None:
    with keyed(curve_daemon, "allowed") as admin:
        before = admin.health()["refused_clients"]
    with keyed(curve_daemon, "stranger", timeout_s=1.0) as stranger, pytest.raises(NoAnswer):
        stranger.ping()
    with OrderdClient(curve_daemon.control, timeout_s=1.0) as plain, pytest.raises(NoAnswer):
        plain.ping()
    with keyed(curve_daemon, "allowed") as admin:
        assert admin.health()["refused_clients"] >= before + 2
    curve_daemon.wait_for_log("refused a client on the control socket: key not allowed")


def test_orderctl_takes_client_keys(curve_daemon: DaemonProcess) -> None:
    assert curve_daemon.curve_keys is not None
    keys = curve_daemon.curve_keys[1].parent
    result = orderctl("--endpoint", curve_daemon.control, "--client-key",
                      str(keys / "allowed.key_secret"), "--server-key",
                      str(keys / "server.key"), "ping")
    assert result.returncode == 0 and "state: ready" in result.stdout


def test_keygen_writes_a_private_secret(tmp_path: Path) -> None:
    result = orderctl("keygen", str(tmp_path / "k"))
    assert result.returncode == 0, result.stderr
    secret = tmp_path / "k" / "client.key_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    public, private = zmq.auth.load_certificate(secret)
    assert private is not None and zmq.auth.load_certificate(tmp_path / "k" / "client.key")[0] \
        == public


def curve_daemon_with(work: Path, *clients: str) -> DaemonProcess:
    """A daemon (not started) with CURVE on, letting in `clients` (keys made here)."""
    keys, allowed = work / "keys", work / "clients"
    keys.mkdir()
    allowed.mkdir()
    zmq.auth.create_certificates(keys, "server")
    for name in clients:
        zmq.auth.create_certificates(keys, name)
        (allowed / f"{name}.key").write_bytes((keys / f"{name}.key").read_bytes())
    daemon = DaemonProcess(work, curve_keys=(keys / f"{clients[0]}.key_secret",
                                             keys / "server.key"))
    daemon.config.write_text(daemon.config.read_text().replace(
        "[control]\n", '[control]\ncurve_secret_key_file = "keys/server.key_secret"\n'
                       'curve_clients_dir = "clients"\n'))
    return daemon


def subscriber(daemon: DaemonProcess, name: str) -> EventSubscriber:
    keys = daemon.workdir / "keys"
    return EventSubscriber(daemon.events, client_key_file=keys / f"{name}.key_secret",
                           server_key_file=keys / "server.key")


def seqs_until_quiet(sub: EventSubscriber) -> list[int]:
    """The seq of every event queued for `sub`, until none comes for 300 ms."""
    seqs = []
    with contextlib.suppress(NoAnswer):
        while True:
            seqs.append(sub.receive(timeout_s=0.3)[1]["seq"])
    return seqs


def first_event_seq(client: OrderdClient, sub: EventSubscriber, tag: str) -> int:
    """Submit resting orders until `sub` receives an event (a subscriber that has just
    connected misses what was published before); that event's seq."""
    for n in range(100):
        client.submit(resting_limit_buy(client_order_id=f"{tag}-{n}"), wait="durable")
        with contextlib.suppress(NoAnswer):
            return int(sub.receive(timeout_s=0.2)[1]["seq"])
    raise AssertionError(f"{tag}: no event reached the subscriber")


def test_a_removed_key_is_refused_on_its_open_connection_after_a_reload(
        tmp_path: Path) -> None:
    daemon = curve_daemon_with(tmp_path, "alice", "bob")
    with running(daemon):
        assert daemon.process is not None
        with keyed(daemon, "alice") as alice, keyed(daemon, "bob") as bob, \
                contextlib.closing(subscriber(daemon, "alice")) as alice_events, \
                contextlib.closing(subscriber(daemon, "bob")) as bob_events:
            assert bob.ping()["state"] == "ready" and alice.ping()["state"] == "ready"
            first_event_seq(alice, alice_events, "before-a")
            first_event_seq(alice, bob_events, "before-b")
            seen_by_bob = max(seqs_until_quiet(bob_events))
            seqs_until_quiet(alice_events)

            (tmp_path / "clients" / "bob.key").unlink()
            daemon.process.send_signal(signal.SIGHUP)
            daemon.wait_for_log("1 CURVE client key(s)")

            reply = bob.request("ping")  # the connection opened before the reload
            assert reply["ok"] is False and reply["error"]["code"] == "unauthorized"
            assert reply["id"] is not None, "the refusal answers the request's id"
            with pytest.raises(ProtocolError) as refused:
                bob.submit(resting_limit_buy(client_order_id="revoked-1"), wait="durable")
            assert refused.value.code == "unauthorized"
            assert alice.ping()["state"] == "ready", "an allowed client keeps its connection"
            # event subscribers handshake again: alice is let back in, bob is not
            after = first_event_seq(alice, alice_events, "after")
            assert after > seen_by_bob
            assert all(seq <= seen_by_bob for seq in seqs_until_quiet(bob_events))
            with pytest.raises(ProtocolError) as missing:
                alice.status(client_order_id="revoked-1")
            assert missing.value.code == "not_found", "the refused submit was never placed"
        with keyed(daemon, "bob", timeout_s=1.0) as fresh, pytest.raises(NoAnswer):
            fresh.ping()  # a new connection fails the handshake
        log = daemon.wait_for_log("refused a request from removed CURVE client key")
        assert "event subscribers reconnect" in log
