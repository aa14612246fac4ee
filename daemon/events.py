"""The PUB socket that order events go out on."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import zmq

from daemon.security import Curve, bind

log = logging.getLogger(__name__)

REBIND_TIMEOUT_S = 2.0


class ZmqPublisher:
    """Publishes event frames; a lock makes it safe from any thread."""

    def __init__(self, context: zmq.Context[Any], endpoint: str,
                 curve: Curve | None = None) -> None:
        self._socket = context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, 100_000)
        if curve is not None:
            curve.secure(self._socket)
        bind(self._socket, endpoint)
        self._endpoint = endpoint
        self._lock = threading.Lock()

    def publish(self, frames: list[bytes]) -> None:
        with self._lock:
            self._socket.send_multipart(frames, zmq.NOBLOCK)

    def rebind(self) -> None:
        """Close every subscriber's connection by binding the endpoint anew.

        A PUB socket cannot tell which connection carries which key, and CURVE checks
        keys only at the handshake: after a reload that removed a key, this makes every
        subscriber handshake again, so a revoked one is refused. The others reconnect by
        themselves (ZeroMQ's reconnect interval, 100 ms by default); events published
        meanwhile are missed, a gap in `seq` they catch up on with `list`."""
        with self._lock:
            # the address bound (a wildcard resolved), the one unbind knows
            endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
            self._socket.unbind(endpoint)
            error = _bind_when_free(self._socket, endpoint)
            if error is not None:
                log.error("events socket could not bind %s again (%s): no events until a "
                          "restart", endpoint, error)

    @property
    def socket(self) -> zmq.Socket[Any]:
        socket: zmq.Socket[Any] = self._socket
        return socket

    def close(self) -> None:
        with self._lock:
            self._socket.close()


def _bind_when_free(socket: zmq.Socket[Any], endpoint: str) -> zmq.ZMQError | None:
    """Bind once the listener just unbound is closed: ZeroMQ closes it in its own thread,
    and the address is busy until then. (An ipc path is free at once: bind replaces the
    file, and libzmq 4.3 leaves a closing listener's file alone.)"""
    deadline = time.monotonic() + REBIND_TIMEOUT_S
    pause = threading.Event()
    while True:
        try:
            bind(socket, endpoint)
            return None
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EADDRINUSE or time.monotonic() >= deadline:
                return exc
        pause.wait(0.01)
