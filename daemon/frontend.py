"""The ZeroMQ front end: a thin loop that decodes, validates and dispatches.

One thread reads the ROUTER socket. Requests are handed to actors without waiting
for them; an actor answers through a reply callback. While the loop sleeps, the
reply is sent at once from the actor's thread: waking the loop to send it cost
about 7 % of a durable submit's latency at one order in flight (bench/README.md).
While the loop is awake, the reply is queued for it instead, and the loop sends
every queued reply at its next turn: under load that keeps the socket's sends,
each of which lets go of the interpreter, off the actors' threads.

ZeroMQ sockets are not thread-safe, so every send and receive holds one lock. The
loop sleeps on the socket's notification descriptor (ZMQ_FD), which needs no lock;
that descriptor signals changes, not messages, and a send from another thread may
take the signal of a request that has just come, so such a send looks at
ZMQ_EVENTS afterwards and wakes the loop if a request waits (see `_reply`). The
replies of one client leave in the order they were given: one goes at once only when
none is queued.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import zmq

from daemon.security import Curve, bind
from protocol.codec import (
    DecodeError,
    OverLimit,
    decode_request,
    encode_error,
    encode_result,
    split_envelope,
)
from protocol.errors import ProtocolError
from protocol.messages import Request
from protocol.validation import parse_args

log = logging.getLogger(__name__)

FRAME_SIZE_FACTOR = 4
"""A frame larger than this many times max_request_bytes ends the sender's connection
(ZeroMQ's MAXMSGSIZE) instead of being read: a request somewhat too large still gets
`request_too_large`, a huge one costs the sender, not our memory."""
REPLY_QUEUE = 128
"""Replies held for one connection that is not reading them (SNDHWM); later ones are
dropped. Well above what a pipelining client keeps in flight (the bench: 64), and the
kernel's socket buffers hold more before the queue even starts filling."""
REQUEST_QUEUE = 64
"""Requests ZeroMQ reads ahead for one connection (RCVHWM); beyond it the connection
waits (TCP backpressure), nothing is lost."""

POLL_MS = 1000
"""The loop goes round at least this often, requests or not."""
STALL_S = 5.0
"""A loop that has not gone round for this long is hung: it polls at most POLL_MS and
never waits on an actor, so a healthy one never comes near it."""

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
        """Drain, then disarm; the caller then looks at everything it was woken for.

        In this order a wake racing the drain either finds the flag still armed (and what
        it woke for is looked at right after) or writes a new byte that wakes the next
        poll. The other order could eat that byte and leave the flag armed: a request
        would then wait for the poll timeout."""
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
                 handlers: dict[str, Handler], curve: Curve | None = None,
                 poll_ms: int = POLL_MS, clock: Callable[[], float] = time.monotonic) -> None:
        """poll_ms: how long the loop sleeps with nothing signalled; clock: when the loop
        went round (tests stop the loop on it, right before it sleeps)."""
        self._poll_ms = poll_ms
        self._clock = clock
        self._socket = context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 1000)
        # with ROUTER_MANDATORY off, a reply to a connection whose queue is full is
        # dropped: a client that does not read cannot make us hold more (see docs/protocol.md)
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self._socket.setsockopt(zmq.SNDHWM, REPLY_QUEUE)
        self._socket.setsockopt(zmq.RCVHWM, REQUEST_QUEUE)
        self._socket.setsockopt(zmq.MAXMSGSIZE, FRAME_SIZE_FACTOR * max_request_bytes)
        if curve is not None:
            curve.secure(self._socket)
        self._curve = curve
        self._refused_keys: set[str] = set()
        try:
            bind(self._socket, endpoint)
        except zmq.ZMQError:
            self._socket.close()  # else the context's term() waits for it forever
            raise
        self._max_request_bytes = max_request_bytes
        self._handlers = handlers
        self._socket_lock = threading.Lock()
        self._closed = False
        self._outbox: queue.SimpleQueue[list[bytes]] = queue.SimpleQueue()
        self._sleeping = False
        """The loop is in its poll, or about to be: a reply then goes at once."""
        self._wakeup = Wakeup()
        self._stopped = threading.Event()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._turned = clock()
        self._thread = threading.Thread(target=self._run, name="frontend", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    def turning(self, within_s: float = STALL_S) -> bool:
        """Whether the loop runs and went round within `within_s`: the watchdog's test
        of the front end, which is no actor and answers no Ping."""
        return self._thread.is_alive() and self._clock() - self._turned <= within_s

    @property
    def socket(self) -> zmq.Socket[Any]:
        socket: zmq.Socket[Any] = self._socket
        return socket

    def close(self) -> None:
        self._stopped.set()
        self._wakeup.wake()
        if self._thread.ident is not None:  # started (start-up may fail before)
            self._thread.join(timeout=5)
        with self._socket_lock:  # a late answer finds both closed, not half closed
            self._send_queued_locked()  # given before the close: they still go (LINGER)
            self._closed = True
            self._socket.close()
            self._wakeup.close()

    # --- the loop ---------------------------------------------------------------

    def _run(self) -> None:
        poller = zmq.Poller()
        with self._socket_lock:
            poller.register(self._socket.getsockopt(zmq.FD), zmq.POLLIN)
        poller.register(self._wakeup.read_fd, zmq.POLLIN)
        while not self._stopped.is_set():
            # read first: a request may have come before the loop ever slept
            self._wakeup.clear()
            self._send_queued()
            self._read_requests()
            if self._stopped.is_set():  # the clear may have eaten close's wake-up
                break
            self._sleeping = True
            self._turned = self._clock()
            self._send_queued()  # queued by an actor that saw the loop awake
            poller.poll(self._poll_ms)
            self._sleeping = False

    def _send_queued(self) -> None:
        with self._socket_lock:
            if not self._closed:
                self._send_queued_locked()

    def _send_queued_locked(self) -> None:
        while True:
            try:
                frames = self._outbox.get_nowait()
            except queue.Empty:
                return
            self._send_locked(frames)

    def _read_requests(self) -> None:
        # a bounded burst, so the loop goes round (and shows it turns) under a flood
        for _ in range(256):
            try:
                with self._socket_lock:
                    if self._closed:  # by a close() that gave up waiting for the loop
                        return
                    if self._curve is not None:
                        frames, client = self._recv_curve()
                    else:
                        frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=True)
                        client = frames[0].hex()
            except zmq.Again:
                return
            self._serve(frames, client)
        with self._socket_lock:  # requests may still wait: the descriptor will not say so
            if not self._closed:
                self._wakeup.wake()

    def _recv_curve(self) -> tuple[list[bytes], str]:
        """Frames and the sender's CURVE public key (the ZAP handler's User-Id)."""
        parts = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
        return [part.bytes for part in parts], str(parts[-1].get("User-Id"))

    def _serve(self, frames: list[bytes], client: str) -> None:
        try:
            split = split_envelope(frames, self._max_request_bytes)
        except OverLimit as exc:
            self._reply([*exc.envelope, encode_error(None, exc.error)])
            return
        if split is None:
            return  # no payload frame: dropped, as the contract says
        envelope, payload = split
        try:
            request = decode_request(payload, self._max_request_bytes)
            self._check_allowed(client, request.id)
        except DecodeError as exc:
            self._reply([*envelope, encode_error(exc.request_id, exc.error)])
            return
        except Exception:  # a bug: this thread is the only one reading the socket
            log.exception("internal error reading a request")
            self._reply([*envelope, encode_error(None, ProtocolError(
                "internal", "internal error; see the daemon log"))])
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

    def _check_allowed(self, client: str, request_id: str) -> None:
        """With CURVE, the sender's key must still be listed: ZAP admitted it at the
        handshake, but a reload since may have removed it."""
        if self._curve is None or self._curve.allows(client):
            return
        if client not in self._refused_keys:  # once per key, not per message
            self._refused_keys.add(client)
            log.warning("refused a request from removed CURVE client key %s", client)
        raise DecodeError(request_id, ProtocolError(
            "unauthorized", "this client's key is no longer allowed"))

    def _reply(self, frames: list[bytes]) -> None:
        """Send a reply from any thread, or queue it for the loop (see the module's
        note); a reply that cannot go (a full queue, a closed socket) is dropped, as the
        contract says."""
        on_loop = threading.get_ident() == self._thread.ident
        with self._socket_lock:
            if self._closed:
                return
            if not (on_loop or self._sleeping) or not self._outbox.empty():
                self._outbox.put(frames)
                self._wakeup.wake()
                return
            self._send_locked(frames)
            # off the loop's thread, the send may have taken the signal of a request
            # that came meanwhile; the loop reads until nothing waits anyway
            try:
                if not on_loop and self._socket.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    self._wakeup.wake()
            except zmq.ZMQError as exc:
                log.debug("could not ask the socket whether requests wait: %s", exc)

    def _send_locked(self, frames: list[bytes]) -> None:
        try:
            self._socket.send_multipart(frames, zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.debug("reply dropped: %s", exc)

    def _answer_to(self, envelope: list[bytes], request_id: str) -> Answer:
        done = False

        def answer(payload: dict[str, Any] | ProtocolError) -> None:
            nonlocal done
            with self._lock:  # a handler and an actor it handed the answer to may race
                if done:
                    return
                done = True
                self._in_flight -= 1
            body = (encode_error(request_id, payload) if isinstance(payload, ProtocolError)
                    else encode_result(request_id, payload))
            self._reply([*envelope, body])

        return answer
