"""Who may reach the daemon: endpoint exposure, ipc socket permissions, ZeroMQ CURVE.

Key files are those of `zmq.auth` (`create_certificates`): the server's secret
certificate, and a folder of the allowed clients' public certificates. Clients
whose key is not listed, and clients without CURVE, fail the handshake: they
never reach the command loop and get no reply; each refusal is logged and
counted. A key removed by a reload is refused at once: its open connections get
`unauthorized` on their next request, and event subscribers must handshake again.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

log = logging.getLogger(__name__)

LOCAL_NAMES = frozenset({"localhost", "lo"})
REFUSALS = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "key not allowed",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "not a CURVE client of this server",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake failed",
}


def is_local(endpoint: str) -> bool:
    """True for tcp:// on a loopback address or interface and for filesystem ipc:// paths.

    An abstract ipc://@name is not: it has no file, so no permission keeps another
    local user out."""
    if endpoint.startswith("ipc://"):
        return not is_abstract(endpoint)
    host = endpoint.removeprefix("tcp://").rsplit(":", 1)[0].strip("[]")
    if host in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a wildcard, a host name or an interface: reachable from outside


def is_abstract(endpoint: str) -> bool:
    """An ipc:// endpoint in Linux's abstract namespace: a name without a file."""
    return endpoint.startswith("ipc://@")


@contextlib.contextmanager
def _private_umask() -> Iterator[None]:
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def bind(socket: zmq.Socket[Any], endpoint: str) -> None:
    """Bind; an ipc:// socket file is created readable and writable by its owner only."""
    if not endpoint.startswith("ipc://"):
        socket.bind(endpoint)
        return
    path = endpoint.removeprefix("ipc://")
    with _private_umask():  # no moment when the file is open to others
        socket.bind(endpoint)
    if not is_abstract(endpoint):  # abstract sockets have no file
        os.chmod(path, 0o600)


class Curve:
    """CURVE on the daemon's sockets, with a ZAP handler that admits listed clients only.

    ZAP runs once, at a connection's handshake. So the front end also asks `allows`
    for every message: after a reload that removed a key, a connection opened with it
    is refused on its next message."""

    def __init__(self, context: zmq.Context[Any], secret_key_file: Path,
                 clients_dir: Path) -> None:
        public, secret = zmq.auth.load_certificate(secret_key_file)
        if secret is None:
            raise ValueError(f"{secret_key_file} holds no secret key (is it the public "
                             "certificate?)")
        self._public, self._secret = public, secret
        self._clients_dir = clients_dir
        self._allowed: frozenset[bytes] = frozenset()
        self.reload_clients()
        self._auth = ThreadAuthenticator(context, log=logging.getLogger("orderd.zap"))
        self._auth.start()
        # the handler asks `callback`, so handshakes and messages check one key set
        self._auth.configure_curve_callback(domain="*", credentials_provider=self)

    @property
    def allowed(self) -> frozenset[bytes]:
        """The z85 public keys let in now."""
        return self._allowed

    def callback(self, domain: str, key: bytes) -> bool:
        """The ZAP handler's question (its thread): may this z85 public key connect?"""
        return key in self._allowed

    def allows(self, user_id: str) -> bool:
        """Is a message's sender (its ZAP User-Id: the z85 public key) still let in?"""
        return user_id.encode("ascii", "replace") in self._allowed

    def reload_clients(self) -> str:
        """Read the allowed clients' public keys again; the new set replaces the old
        one at once (one assignment), for handshakes and messages alike."""
        self._allowed = frozenset(client_keys(self._clients_dir))
        return f"{len(self._allowed)} CURVE client key(s) from {self._clients_dir}"

    def secure(self, socket: zmq.Socket[Any]) -> None:
        """Make `socket` a CURVE server; call before bind."""
        socket.curve_secretkey = self._secret
        socket.curve_publickey = self._public
        socket.curve_server = True

    def stop(self) -> None:
        self._auth.stop()


def client_keys(folder: Path) -> set[bytes]:
    """The z85 public keys of the certificates (`*.key`) in `folder`.

    A file that is no certificate is skipped with a warning; a folder that cannot be
    read lets no one in (a failed reload must not keep a removed key)."""
    if not folder.is_dir():
        log.error("CURVE clients folder %s cannot be read: no client is let in", folder)
        return set()
    keys = set()
    for path in sorted(folder.glob("*.key")):
        try:
            public, _ = zmq.auth.load_certificate(path)
        except (OSError, ValueError) as exc:
            log.warning("skipped %s: not a readable CURVE certificate (%s)", path,
                        type(exc).__name__)
            continue
        keys.add(public)
    return keys


class RefusalWatch:
    """Logs and counts clients refused at the handshake, from the sockets' monitors."""

    def __init__(self) -> None:
        self.refused = 0
        self._monitors: list[tuple[str, zmq.Socket[Any], zmq.Socket[Any]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="auth-watch", daemon=True)

    def watch(self, name: str, socket: zmq.Socket[Any]) -> None:
        events = 0
        for event in REFUSALS:
            events |= event
        self._monitors.append((name, socket, socket.get_monitor_socket(events)))

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        poller = zmq.Poller()
        for _, _, monitor in self._monitors:
            poller.register(monitor, zmq.POLLIN)
        while not self._stop.is_set():
            ready = dict(poller.poll(200))
            for name, _, monitor in self._monitors:
                if monitor in ready:
                    self._record(name, dict(recv_monitor_message(monitor)))

    def _record(self, name: str, message: dict[str, Any]) -> None:
        reason = REFUSALS.get(message["event"])
        if reason is None:
            return
        self.refused += 1
        log.warning("refused a client on the %s socket: %s (%d refused so far)",
                    name, reason, self.refused)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for _, socket, monitor in self._monitors:
            with contextlib.suppress(zmq.ZMQError):
                socket.disable_monitor()
            monitor.close(linger=0)
