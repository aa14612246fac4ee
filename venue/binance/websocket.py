"""The WebSocket protocol (RFC 6455) for the paper venue's HTTP server.

Just what a server of JSON text messages needs: the opening handshake on an
HTTP request that `http.server` has parsed, masked client frames in (text,
fragmented or not; ping, pong, close), unmasked frames out. No extensions: a
client offering permessage-deflate gets no answer to it and sends plain frames.
A frame that breaks the protocol ends the connection with the close code that
says why.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import io
import os
import socket
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CONTROL = (CLOSE, PING, PONG)
MAX_MESSAGE = 1 << 20
"""The largest message the server takes (binance's requests are a few hundred bytes)."""
NORMAL, GOING_AWAY, PROTOCOL_ERROR, UNSUPPORTED, NO_STATUS = 1000, 1001, 1002, 1003, 1005
INVALID_DATA, TOO_BIG = 1007, 1009


class ProtocolError(Exception):
    """The peer broke the protocol; `code` is the close code to answer with."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(why)
        self.code = code


@dataclass(frozen=True)
class Message:
    """One message or control frame from the peer."""

    opcode: int
    """TEXT, BINARY, CLOSE, PING or PONG."""
    payload: bytes

    @property
    def text(self) -> str:
        """A TEXT message's text; ProtocolError(1007) if it is not UTF-8."""
        try:
            return self.payload.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(INVALID_DATA, "a text message that is not UTF-8") from None

    @property
    def close_code(self) -> int:
        """A CLOSE frame's status code (1005 when it has none)."""
        return int(struct.unpack("!H", self.payload[:2])[0]) if len(self.payload) >= 2 \
            else NO_STATUS


def close_payload(code: int, reason: str = "") -> bytes:
    """A CLOSE frame's payload: the status code, then a short reason."""
    return struct.pack("!H", code) + reason.encode()[:120]


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept answering a Sec-WebSocket-Key."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def handshake_error(method: str, headers: Mapping[str, str]) -> tuple[int, str] | None:
    """Why a request is not a WebSocket opening handshake (HTTP status, text), or None.
    `headers` by lower-case name."""
    if method != "GET":
        return 405, "a WebSocket handshake is a GET"
    upgrade = headers.get("upgrade", "").lower()
    connection = {part.strip().lower() for part in headers.get("connection", "").split(",")}
    if upgrade != "websocket" or "upgrade" not in connection:
        return 426, "this path speaks WebSocket only: send Upgrade: websocket"
    if headers.get("sec-websocket-version") != "13":
        return 426, "only WebSocket version 13 is spoken"
    try:
        key = base64.b64decode(headers.get("sec-websocket-key", ""), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 16:
        return 400, "Sec-WebSocket-Key must be 16 bytes in base64"
    return None


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True,
                 mask: bool = False) -> bytes:
    """One frame; a client masks (`mask`), a server does not."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    bit = 0x80 if mask else 0
    size = len(payload)
    if size < 126:
        head.append(bit | size)
    elif size < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", size)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", size)
    if not mask:
        return bytes(head) + payload
    key = os.urandom(4)
    return bytes(head) + key + _unmask(payload, key)


def _unmask(payload: bytes, key: bytes) -> bytes:
    # XOR the whole payload at once through an integer: fast enough for small messages
    repeated = (key * (len(payload) // 4 + 1))[:len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big")


def _read_exactly(stream: io.BufferedIOBase, count: int) -> bytes | None:
    data = stream.read(count) if count else b""
    if data is None or len(data) < count:
        return None
    return data


def read_frame(stream: io.BufferedIOBase, *, masked: bool = True
               ) -> tuple[bool, int, bytes] | None:
    """(fin, opcode, payload) of the next frame, None at the end of the stream.
    A server requires `masked` frames; a client reads unmasked ones."""
    head = _read_exactly(stream, 2)
    if head is None:
        return None
    fin, opcode, size = bool(head[0] & 0x80), head[0] & 0x0F, head[1] & 0x7F
    if head[0] & 0x70:
        raise ProtocolError(PROTOCOL_ERROR, "reserved bits set (no extension was agreed)")
    if bool(head[1] & 0x80) != masked:
        raise ProtocolError(PROTOCOL_ERROR, "client frames must be masked" if masked
                            else "server frames must not be masked")
    if opcode in CONTROL and (size > 125 or not fin):
        raise ProtocolError(PROTOCOL_ERROR, "a control frame must be whole and short")
    if size >= 126:
        extra = _read_exactly(stream, 2 if size == 126 else 8)
        if extra is None:
            return None
        size = int.from_bytes(extra, "big")
    if size > MAX_MESSAGE:
        raise ProtocolError(TOO_BIG, f"a frame over {MAX_MESSAGE} bytes")
    key = _read_exactly(stream, 4) if masked else b""
    payload = _read_exactly(stream, size)
    if key is None or payload is None:
        return None
    return fin, opcode, _unmask(payload, key) if masked else payload


class WebSocket:
    """The server side of one connection: messages in, frames out (sending is
    thread-safe, receiving belongs to one thread)."""

    def __init__(self, sock: socket.socket, rfile: io.BufferedIOBase) -> None:
        self._sock = sock
        self._rfile = rfile
        self._send_lock = threading.Lock()
        # a fragmented message being received (control frames may come in between)
        self._opcode: int | None = None
        self._parts: list[bytes] = []

    def receive(self) -> Message | None:
        """The next message or control frame (fragments joined), None when the peer
        is gone; ProtocolError if it broke the protocol."""
        while True:
            frame = read_frame(self._rfile)
            if frame is None:
                return None
            fin, code, payload = frame
            if code in CONTROL:
                return Message(code, payload)  # may come between the fragments of a message
            if (code == CONTINUATION) != (self._opcode is not None):
                raise ProtocolError(PROTOCOL_ERROR, "a fragment out of place")
            if self._opcode is None:
                if code not in (TEXT, BINARY):
                    raise ProtocolError(PROTOCOL_ERROR, f"unknown opcode {code}")
                self._opcode = code
            self._parts.append(payload)
            if sum(len(part) for part in self._parts) > MAX_MESSAGE:
                raise ProtocolError(TOO_BIG, f"a message over {MAX_MESSAGE} bytes")
            if fin:
                message = Message(self._opcode, b"".join(self._parts))
                self._opcode, self._parts = None, []
                return message

    def send(self, opcode: int, payload: bytes) -> None:
        """Send one whole frame; OSError if the connection is gone."""
        frame = encode_frame(opcode, payload)
        with self._send_lock:
            self._sock.sendall(frame)

    def abort(self) -> None:
        """End the connection at once, without a close frame (as a network failure
        would); a blocked `receive` returns None."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
