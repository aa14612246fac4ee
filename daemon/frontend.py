"""The ZeroMQ front end: a thin loop that decodes, validates, dispatches and replies.

One thread owns the ROUTER socket. Requests are handed to actors without waiting
for them; actors answer through a reply callback that queues the reply and wakes
the loop through a pipe, so the loop never blocks on an actor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

import zmq

from daemon.security import Curve, bind
from protocol.codec import DecodeError, decode_request, encode_error, encode_result, split_envelope
from protocol.errors import ProtocolError
from protocol.messages import Request
from protocol.validation import parse_args

log = logging.getLogger(__name__)

Answer = Callable[[dict[str, Any] | ProtocolError], None]
Handler = Callable[[Request, Any, Answer], None]
"""A command handler: request, typed args, and where its answer goes."""


class Wakeup:
    """A pipe that wakes the poll loop; writes only when the loop may be asleep."""

    def __init__(self) -> None:
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._armed = False

    def wake(self) -> None:
        if not self._armed:
            self._armed = True
            # a full pipe means the loop is awake anyway
            with contextlib.suppress(BlockingIOError):
                os.write(self._write_fd, b"x")

    def clear(self) -> None:
        """Drain, then disarm; the caller then takes everything queued.

        In this order a wake racing the drain either finds the flag still armed (and its
        item is taken right after) or writes a new byte that wakes the next poll. The
        other order could eat that byte and leave the flag armed: replies then wait for
        the poll timeout."""
        try:
            while os.read(self.read_fd, 4096):
                pass
        except BlockingIOError:
            pass
        self._armed = False

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self._write_fd)


class Frontend:
    """Serves the command socket in its own thread."""

    def __init__(self, context: zmq.Context[Any], endpoint: str, max_request_bytes: int,
                 handlers: dict[str, Handler], curve: Curve | None = None) -> None:
        self._socket = context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 1000)
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        # far above the request limit: larger requests get request_too_large, but a
        # frame this big only costs the sender its connection, never our memory
        self._socket.setsockopt(zmq.MAXMSGSIZE, max(16 * max_request_bytes, 8 << 20))
        if curve is not None:
            curve.secure(self._socket)
        self._curve = curve is not None
        try:
            bind(self._socket, endpoint)
        except zmq.ZMQError:
            self._socket.close()  # else the context's term() waits for it forever
            raise
        self._max_request_bytes = max_request_bytes
        self._handlers = handlers
        self._outbox: queue.SimpleQueue[list[bytes]] = queue.SimpleQueue()
        self._wakeup = Wakeup()
        self._stopped = threading.Event()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="frontend", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    @property
    def socket(self) -> zmq.Socket[Any]:
        socket: zmq.Socket[Any] = self._socket
        return socket

    def close(self) -> None:
        self._stopped.set()
        self._wakeup.wake()
        if self._thread.ident is not None:  # started (start-up may fail before)
            self._thread.join(timeout=5)
        self._socket.close()
        self._wakeup.close()

    # --- the loop ---------------------------------------------------------------

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._wakeup.read_fd, zmq.POLLIN)
        while not self._stopped.is_set():
            events = dict(poller.poll(1000))
            self._wakeup.clear()
            self._send_replies()
            if self._socket in events:
                self._read_requests()
        self._send_replies()

    def _read_requests(self) -> None:
        # a bounded burst, so replies are not starved by a flood of requests
        for _ in range(256):
            try:
                if self._curve:
                    frames, client = self._recv_curve()
                else:
                    frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=True)
                    client = frames[0].hex()
            except zmq.Again:
                return
            self._serve(frames, client)

    def _recv_curve(self) -> tuple[list[bytes], str]:
        """Frames and the sender's CURVE public key (the ZAP handler's User-Id)."""
        parts = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
        return [part.bytes for part in parts], str(parts[-1].get("User-Id"))

    def _send_replies(self) -> None:
        while True:
            try:
                frames = self._outbox.get_nowait()
            except queue.Empty:
                return
            try:
                self._socket.send_multipart(frames, zmq.NOBLOCK)
            except zmq.ZMQError as exc:
                log.debug("reply dropped: %s", exc)

    def _serve(self, frames: list[bytes], client: str) -> None:
        split = split_envelope(frames)
        if split is None:
            return  # no payload frame: dropped, as the contract says
        envelope, payload = split
        try:
            request = decode_request(payload, self._max_request_bytes)
        except DecodeError as exc:
            self._socket.send_multipart([*envelope, encode_error(exc.request_id, exc.error)])
            return
        request = dataclasses.replace(request, client=client)
        with self._lock:
            self._in_flight += 1
        answer = self._answer_to(envelope, request.id)
        try:
            args = parse_args(request.cmd, request.args)
            handler = self._handlers.get(request.cmd)
            if handler is None:
                raise ProtocolError("unknown_command", f"command {request.cmd!r} is not served")
            handler(request, args, answer)
        except ProtocolError as exc:
            answer(exc)
        except Exception:
            log.exception("internal error serving %s", request.cmd)
            answer(ProtocolError("internal", "internal error; see the daemon log"))

    def _answer_to(self, envelope: list[bytes], request_id: str) -> Answer:
        done = False

        def answer(payload: dict[str, Any] | ProtocolError) -> None:
            nonlocal done
            if done:
                return
            done = True
            body = (encode_error(request_id, payload) if isinstance(payload, ProtocolError)
                    else encode_result(request_id, payload))
            with self._lock:
                self._in_flight -= 1
            self._outbox.put([*envelope, body])
            self._wakeup.wake()

        return answer
