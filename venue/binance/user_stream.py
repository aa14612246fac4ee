"""One connection to the paper venue's WebSocket API: binance's user-data stream.

The connection's thread reads requests; a sender thread writes everything going
out (answers, events, pings, pongs) from one queue, in order, so the venue never
waits on a slow client and a scripted stall holds back all of it, as a stalled
network would. A `userDataStream.subscribe.signature` signed for the venue's API
key subscribes the connection to the account's order events: each one the venue
commits is pushed as an `executionReport`, the next scripted stream fault
applied to it (drop the connection, stall it, lose or repeat the event).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

import venue.binance.websocket as ws
from venue.binance.faults import Fault
from venue.binance.rest import BinanceError
from venue.binance.stream import (
    SUBSCRIBE,
    UNSUBSCRIBE,
    error_text,
    event_text,
    execution_report,
    reply_text,
    signed_payload,
)
from venue.model import EVENTS_NUMBERED, VenueEvent
from venue.weights import WS_CONNECT

if TYPE_CHECKING:
    from venue.binance.server import PaperVenueServer

log = logging.getLogger(__name__)

WS_PATH = WS_CONNECT[1]
"""binance's path of the WebSocket API, served on the REST API's address."""
DEFAULT_PING_S = 20.0
"""binance sends a ping frame every 20 s."""
CLOSE_WAIT_S = 1.0
"""How long a closing connection waits for the client's close frame."""
MAX_QUEUED = 10_000
"""Frames waiting for a client that does not read, beyond which it is cut off."""
ALREADY = BinanceError(400, -2035, "User Data Stream subscription already active.")
INACTIVE = BinanceError(400, -2036, "User Data Stream subscription not active.")


@dataclass(frozen=True)
class Outbound:
    """One frame to send, with the stream fault to apply to it (events only)."""

    opcode: int
    payload: bytes
    fault: Fault | None = None


class UserStream:
    """The WebSocket API on one connection, for the venue server's one account."""

    def __init__(self, server: PaperVenueServer, connection: ws.WebSocket,
                 address: str) -> None:
        self.server = server
        self.ws = connection
        self.address = address
        self.account = server.dialect.account
        self.subscription: int | None = None
        self._next_subscription = 0
        self._lock = threading.Lock()  # subscription changes vs. events arriving
        self._out: queue.SimpleQueue[Outbound | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self.ended = threading.Event()
        """Set once the connection is over."""
        self._sender = threading.Thread(target=self._send_loop, name="paper-ws-send",
                                        daemon=True)
        self.methods: dict[str, Callable[[Any, dict[str, Any]], None]] = {
            SUBSCRIBE: self._subscribe, UNSUBSCRIBE: self._unsubscribe,
            "ping": lambda rid, _p: self._reply(rid, {}),
            "time": lambda rid, _p: self._reply(rid, {"serverTime": self._now_ms()}),
        }

    # -- the connection's thread ------------------------------------------------------

    def run(self) -> None:
        """Serve the connection until it ends."""
        self._sender.start()
        try:
            self._read_loop()
        except ws.ProtocolError as exc:
            self._push(ws.CLOSE, ws.close_payload(exc.code, str(exc)))
        except OSError:
            pass  # the connection is gone
        finally:
            self._end()

    def _read_loop(self) -> None:
        while not self._closing.is_set():
            message = self.ws.receive()
            if message is None:
                return
            if message.opcode == ws.TEXT:
                self._request(message.text)
            elif message.opcode == ws.PING:
                self._push(ws.PONG, message.payload)
            elif message.opcode == ws.CLOSE:
                self._push(ws.CLOSE, ws.close_payload(ws.NORMAL if message.close_code ==
                                                    ws.NO_STATUS else message.close_code))
                return
            elif message.opcode == ws.BINARY:
                raise ws.ProtocolError(ws.UNSUPPORTED, "requests are JSON text frames")

    def _end(self) -> None:
        self.server.venue.remove_listener(self._on_event)
        with self._lock:
            self.subscription = None
        self._out.put(None)
        self._sender.join(CLOSE_WAIT_S)  # what is queued (a close answer) may still go out
        self._closing.set()  # ends a stall still holding the sender
        self.ws.abort()  # ends a send to a client that no longer reads
        self._sender.join()
        self.server.streams.discard(self)
        self.ended.set()

    def shutdown(self) -> None:
        """The server is stopping: tell the client as binance does, then close."""
        self._push(ws.TEXT, event_text(None, {"e": "serverShutdown", "E": self._now_ms()}))
        self._push(ws.CLOSE, ws.close_payload(ws.GOING_AWAY, "server shutdown"))
        self._closing.set()

    # -- requests -------------------------------------------------------------------

    def _request(self, text: str) -> None:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            request = None
        if not isinstance(request, dict):
            self._error(None, BinanceError(400, -1135, "Invalid JSON Request"))
            return
        request_id = request.get("id")
        if isinstance(request_id, bool) or not isinstance(request_id, str | int | None):
            request_id = None
        method, params = request.get("method"), request.get("params", {})
        if not isinstance(method, str) or not method:
            self._error(request_id, BinanceError(400, -1102, "Mandatory parameter 'method' was "
                                                 "not sent, was empty/null, or malformed."))
            return
        if not isinstance(params, dict):
            self._error(request_id, BinanceError(400, -1102, "Parameter 'params' was "
                                                 "malformed: it must be an object."))
            return
        # cut short: it is logged and may be echoed (no method name is half as long)
        self._call(request_id, method.removeprefix("v3/")[:100], params)

    def _call(self, request_id: Any, method: str, params: dict[str, Any]) -> None:
        server = self.server
        server.record("WS", method)
        verdict = server.limiter.admit(self.address, self.account, ("WS", method))
        refusal = verdict.refusal
        if refusal is not None:
            until_ms = self._now_ms() + refusal.retry_after_s * 1000
            self._error(request_id, BinanceError(refusal.status, refusal.code, refusal.msg),
                        {"serverTime": self._now_ms(), "retryAfter": until_ms})
            return
        handler = self.methods.get(method)
        if handler is None:
            self._error(request_id, BinanceError(400, -1000, f"Unknown method '{method}'."))
            return
        try:
            handler(request_id, params)
        except BinanceError as exc:
            self._error(request_id, exc)

    def _subscribe(self, request_id: Any, params: dict[str, Any]) -> None:
        texts, payload, signature = signed_payload(params)
        self.server.check_auth("WS", SUBSCRIBE, texts, texts.get("apiKey"), payload, signature)
        if self.subscription is not None:
            raise ALREADY
        # Listening before the answer goes out, an event committed after the client has
        # it is never missed; _on_event passes events on once the answer is queued.
        self.server.venue.add_listener(self._on_event)
        with self._lock:
            self.subscription = self._next_subscription
            self._next_subscription += 1
            # not binance's: it says its events are numbered one by one in `I` (binance's
            # `I` is an execution id shared by all accounts), so a client can find a gap
            self._reply(request_id, {"subscriptionId": self.subscription,
                                     EVENTS_NUMBERED: True})

    def _unsubscribe(self, request_id: Any, params: dict[str, Any]) -> None:
        wanted = params.get("subscriptionId")
        with self._lock:
            ended = self.subscription
            if wanted is not None and (ended is None or wanted != ended):
                raise INACTIVE
            self.subscription = None
        self.server.venue.remove_listener(self._on_event)
        self._reply(request_id, {})
        if ended is not None:
            self._push(ws.TEXT, event_text(ended, {"e": "eventStreamTerminated",
                                                   "E": self._now_ms()}))

    # -- going out ------------------------------------------------------------------

    def _on_event(self, event: VenueEvent) -> None:
        """A venue listener: queue the account's events (never blocks)."""
        if event.account != self.account:
            return
        with self._lock:
            if self.subscription is None:
                return
            if self._out.qsize() > MAX_QUEUED:
                log.warning("paper venue: a user-data stream client does not read; cut off")
                self.ws.abort()
                return
            text = event_text(self.subscription, execution_report(event))
            self._out.put(Outbound(ws.TEXT, text, self.server.plan.next_stream()))

    def _reply(self, request_id: Any, result: Any) -> None:
        self._push(ws.TEXT, reply_text(request_id, result))

    def _error(self, request_id: Any, error: BinanceError,
               data: dict[str, Any] | None = None) -> None:
        self._push(ws.TEXT, error_text(request_id, error, data))

    def _push(self, opcode: int, payload: bytes) -> None:
        self._out.put(Outbound(opcode, payload))

    def _send_loop(self) -> None:
        ping_s = self.server.stream_ping_s
        next_ping = time.monotonic() + ping_s
        try:
            while True:
                try:
                    item = self._out.get(timeout=max(0.0, next_ping - time.monotonic()))
                except queue.Empty:
                    self.ws.send(ws.PING, str(self._now_ms()).encode())
                    next_ping = time.monotonic() + ping_s
                    continue
                if item is None or not self._send(item):
                    return
        except OSError:
            self.ws.abort()  # the client is gone: the reading thread ends too
        except Exception:  # a bug here must still end the connection, not leave it mute
            log.exception("paper venue: a user-data stream failed")
            self.ws.abort()

    def _send(self, item: Outbound) -> bool:
        """Send one frame, spoilt by its fault; False when the connection is to end."""
        name = item.fault.fault if item.fault is not None else None
        if name == "stream_drop":
            log.info("paper venue: dropping a user-data stream (scripted)")
            self.ws.abort()
            return False
        if name == "stream_drop_event":
            return True
        if name == "stream_stall" and item.fault is not None:
            self._closing.wait(item.fault.delay_s)
        self.ws.send(item.opcode, item.payload)
        if name == "stream_duplicate_event":
            self.ws.send(item.opcode, item.payload)
        if item.opcode == ws.CLOSE:
            self._closing.set()
            # the client answers with its close frame; then (or if it does not) we are done
            threading.Timer(CLOSE_WAIT_S, self.ws.abort).start()
            return False
        return True

    def _now_ms(self) -> int:
        return int(self.server.clock() * 1000)

