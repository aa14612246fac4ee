"""The binance driver's HTTP session: failures reach ccxt as the classes `requests` gave,
so an exchange error is classified as it was (a refused connection is not a timeout)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from ccxt.base.errors import NetworkError, RequestTimeout

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from actors.exchange.drivers.http_session import PooledSession
from tests.helpers import free_port


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    closing = threading.Event()

    def accept() -> None:
        while not closing.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    closing.set()
    listener.close()
    for conn in accepted:
        conn.close()


def client_at(url: str) -> Any:
    return build_binance(DriverSettings("key", "secret", api_url=url, timeout_ms=200))


def test_the_driver_uses_the_pooled_session() -> None:
    assert isinstance(client_at("http://127.0.0.1:1").session, PooledSession)


def test_a_refused_connection_is_a_network_error_not_a_timeout() -> None:
    client = client_at(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(NetworkError) as raised:
        client.fetch_time()
    assert not isinstance(raised.value, RequestTimeout)


def test_an_answer_that_never_comes_is_a_timeout(silent_server: str) -> None:
    with pytest.raises(RequestTimeout):
        client_at(silent_server).fetch_time()
