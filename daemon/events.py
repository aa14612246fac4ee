"""The PUB socket that order events go out on."""

from __future__ import annotations

import threading
from typing import Any

import zmq

from daemon.security import Curve, bind


class ZmqPublisher:
    """Publishes event frames; a lock makes it safe from any thread."""

    def __init__(self, context: zmq.Context[Any], endpoint: str,
                 curve: Curve | None = None) -> None:
        self._socket = context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, 100_000)
        if curve is not None:
            curve.secure(self._socket)
        try:
            bind(self._socket, endpoint)
        except zmq.ZMQError:
            self._socket.close()  # else the context's term() waits for it forever
            raise
        self._lock = threading.Lock()

    def publish(self, frames: list[bytes]) -> None:
        with self._lock:
            self._socket.send_multipart(frames, zmq.NOBLOCK)

    @property
    def socket(self) -> zmq.Socket[Any]:
        socket: zmq.Socket[Any] = self._socket
        return socket

    def close(self) -> None:
        with self._lock:
            self._socket.close()
