"""The PUB socket that order events go out on."""

from __future__ import annotations

import threading
from typing import Any

import zmq


class ZmqPublisher:
    """Publishes event frames; a lock makes it safe from any thread."""

    def __init__(self, context: zmq.Context[Any], endpoint: str) -> None:
        self._socket = context.socket(zmq.PUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, 100_000)
        self._socket.bind(endpoint)
        self._lock = threading.Lock()

    def publish(self, frames: list[bytes]) -> None:
        with self._lock:
            self._socket.send_multipart(frames, zmq.NOBLOCK)

    def close(self) -> None:
        with self._lock:
            self._socket.close()
