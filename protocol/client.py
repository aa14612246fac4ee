"""A synchronous client for the orderd command and event sockets.

One DEALER socket per client, so several requests may be in flight
(`send` / `receive`); the command methods send one and wait for its reply.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import zmq
import zmq.auth

from protocol.codec import dumps, encode_request, loads
from protocol.errors import ProtocolError

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"
DEFAULT_EVENTS_ENDPOINT = "tcp://127.0.0.1:5556"


class NoAnswer(Exception):
    """The daemon did not answer within the timeout."""


def use_curve(socket: zmq.Socket[Any], client_key_file: str | Path | None,
              server_key_file: str | Path | None) -> None:
    """Make `socket` a CURVE client: our secret certificate and the server's public one
    (both in `zmq.auth` format, as `orderctl keygen` writes them). Nothing when both
    are None."""
    if client_key_file is None and server_key_file is None:
        return
    if client_key_file is None or server_key_file is None:
        raise ValueError("CURVE needs both the client's secret key file and the server's "
                         "public key file")
    public, secret = zmq.auth.load_certificate(client_key_file)
    if secret is None:
        raise ValueError(f"{client_key_file} holds no secret key")
    server_public, _ = zmq.auth.load_certificate(server_key_file)
    socket.curve_publickey = public
    socket.curve_secretkey = secret
    socket.curve_serverkey = server_public


class OrderdClient:
    """Commands to one daemon. Not thread-safe: one client per thread."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        timeout_s: float = 5.0,
        context: zmq.Context[Any] | None = None,
        client_key_file: str | Path | None = None,
        server_key_file: str | Path | None = None,
    ) -> None:
        """`client_key_file` (our secret certificate) and `server_key_file` (the daemon's
        public certificate) turn CURVE on."""
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        use_curve(self._socket, client_key_file, server_key_file)
        self._socket.connect(endpoint)
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}-{id(self):x}-"

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self) -> OrderdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, cmd: str, args: dict[str, Any] | None = None) -> str:
        """Send one request without waiting; returns its id."""
        request_id = f"{self._prefix}{next(self._ids)}"
        self._socket.send(encode_request(request_id, cmd, args))
        return request_id

    def receive(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The next reply, whatever request it answers."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        if not self._socket.poll(int(timeout * 1000)):
            raise NoAnswer(f"no answer from {self.endpoint} within {timeout:g} s")
        reply = loads(self._socket.recv_multipart()[-1])
        if not isinstance(reply, dict):
            raise ProtocolError("internal", "reply is not a JSON object")
        return reply

    def request(self, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one request and return its whole reply (ok or not)."""
        request_id = self.send(cmd, args)
        while True:
            reply = self.receive()
            if reply.get("id") == request_id:
                return reply

    def call(self, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """The result of one command; a failed reply raises ProtocolError."""
        reply = self.request(cmd, args)
        if not reply.get("ok"):
            raise ProtocolError.from_wire(reply.get("error") or {})
        result = reply.get("result")
        return result if isinstance(result, dict) else {}

    def ping(self) -> dict[str, Any]:
        return self.call("ping")

    def submit(self, order: dict[str, Any], *, wait: str = "accepted") -> dict[str, Any]:
        """Place an order; returns the Order."""
        return self.call("submit", {"order": order, "wait": wait})["order"]  # type: ignore[no-any-return]

    def status(self, *, client_order_id: str | None = None,
               order_id: str | None = None) -> dict[str, Any]:
        return self.call("status", _ref(client_order_id, order_id))["order"]  # type: ignore[no-any-return]

    def cancel(self, *, client_order_id: str | None = None,
               order_id: str | None = None) -> dict[str, Any]:
        return self.call("cancel", _ref(client_order_id, order_id))["order"]  # type: ignore[no-any-return]

    def list(self, **filters: Any) -> dict[str, Any]:
        """One page: `{"orders": [...], "next": cursor or None}`."""
        return self.call("list", {k: v for k, v in filters.items() if v is not None})

    def health(self) -> dict[str, Any]:
        return self.call("health")

    def stats(self) -> dict[str, Any]:
        return self.call("stats")

    def reconcile(self, exchange: str | None = None) -> dict[str, Any]:
        return self.call("reconcile", {"exchange": exchange} if exchange else {})

    def cancel_all(self, exchange: str | None = None,
                   symbol: str | None = None) -> dict[str, Any]:
        """Ask every live order in scope to cancel: `{"orders": [Order]}` as recorded."""
        scope = {"exchange": exchange, "symbol": symbol}
        return self.call("cancel_all", {k: v for k, v in scope.items() if v is not None})

    def balance(self, exchange: str | None = None) -> dict[str, Any]:
        """`{"balances": {exchange: {currency: {"free", "used", "total"}}}, "at"}`."""
        return self.call("balance", {"exchange": exchange} if exchange else {})

    def halt(self, reason: str | None = None) -> dict[str, Any]:
        return self.call("halt", {"reason": reason} if reason else {})

    def resume(self, reason: str | None = None) -> dict[str, Any]:
        return self.call("resume", {"reason": reason} if reason else {})


def _ref(client_order_id: str | None, order_id: str | None) -> dict[str, Any]:
    if client_order_id is not None:
        return {"client_order_id": client_order_id}
    return {"order_id": order_id}


class EventSubscriber:
    """Order events from the daemon's PUB socket."""

    def __init__(self, endpoint: str = DEFAULT_EVENTS_ENDPOINT, *, topic: str = "order.",
                 context: zmq.Context[Any] | None = None,
                 client_key_file: str | Path | None = None,
                 server_key_file: str | Path | None = None) -> None:
        self._socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        use_curve(self._socket, client_key_file, server_key_file)
        self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self._socket.connect(endpoint)

    def subscribe(self, topic: str) -> None:
        """Receive the events of `topic` too (e.g. `order.filled`)."""
        self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode())

    def receive(self, timeout_s: float = 5.0) -> tuple[str, dict[str, Any]]:
        """(topic, event) of the next event."""
        if not self._socket.poll(int(timeout_s * 1000)):
            raise NoAnswer(f"no event within {timeout_s:g} s")
        topic, body = self._socket.recv_multipart()
        event = loads(body)
        return topic.decode(), event

    def close(self) -> None:
        self._socket.close(linger=0)


__all__ = ["EventSubscriber", "NoAnswer", "OrderdClient", "ProtocolError", "dumps"]
