"""Frames to requests and replies to frames, as the wire contract says.

A request is one ZeroMQ message whose last frame is a UTF-8 JSON object; every
frame before it is the envelope, returned unchanged in front of the reply (unless
the envelope itself is over the limits: see split_envelope).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

try:  # optional: about four times faster; the protocol needs only the standard library
    import orjson
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    orjson = None  # type: ignore[assignment]

from protocol import PROTOCOL_VERSION
from protocol.errors import ProtocolError
from protocol.messages import Request

MAX_ID_LENGTH = 64
DEFAULT_MAX_REQUEST_BYTES = 65536
"""`[control] max_request_bytes` when the configuration does not set it."""
MAX_FRAMES = 8
"""Frames in one request as the client sends it, the payload included. REQ sends two
(an empty delimiter and the payload), DEALER usually one; a message with more is
refused before its payload is decoded. This does not bound what one message costs in
memory: ZeroMQ holds a message whole until its last frame arrives, and MAXMSGSIZE
bounds each frame, not their number (docs/protocol.md, "Message limits")."""


class DecodeError(Exception):
    """A request that cannot be served; `request_id` is echoed when it was valid."""

    def __init__(self, request_id: str | None, error: ProtocolError) -> None:
        super().__init__(error.message)
        self.request_id = request_id
        self.error = error


class OverLimit(DecodeError):
    """A message over the size or frame limit; the reply goes back on `envelope`."""

    def __init__(self, envelope: list[bytes], error: ProtocolError) -> None:
        super().__init__(None, error)
        self.envelope = envelope


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decimal(text: str) -> Decimal:
    """A JSON number with a fraction or exponent, exactly. One whose exponent is beyond
    what a decimal can hold (the constructor raises InvalidOperation, an ArithmeticError
    no caller of `loads` expects) is valid JSON all the same: it is read as a float
    reads it, zero below the range and an infinity above it, so an ignored key stays
    ignored and an amount is refused by its own rules, naming it."""
    try:
        return Decimal(text)
    except InvalidOperation:
        sign = "-" if text.startswith("-") else ""
        mantissa, _, exponent = text.lower().partition("e")
        if exponent.startswith("-") or not mantissa.strip("-+0."):
            return Decimal(f"{sign}0")
        return Decimal(f"{sign}Infinity")


def loads(payload: bytes | str) -> Any:
    """JSON with exact decimals; NaN and Infinity refused."""
    return json.loads(payload, parse_float=_decimal, parse_constant=_reject_constant)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format_decimal(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _stdlib_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=_json_default).encode()


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; decimals become strings."""
    if orjson is None:
        return _stdlib_dumps(obj)
    try:
        return orjson.dumps(obj, default=_json_default, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        # what orjson refuses and json takes (integers beyond 64 bits): the same JSON
        return _stdlib_dumps(obj)


def format_decimal(value: Decimal) -> str:
    """A decimal as a plain string without exponent or trailing zeros."""
    text = format(value.normalize(), "f")
    return text


def valid_id(value: Any) -> bool:
    """An id is 1 to 64 printable ASCII characters."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_LENGTH
        and all(" " <= c <= "~" for c in value)
    )


def split_envelope(frames: list[bytes], max_bytes: int) -> tuple[list[bytes], bytes] | None:
    """(envelope, payload) of a message as a ROUTER receives it (the sender's routing
    identity first); None when it has no payload frame.

    The whole message the client sent, envelope frames included, counts against
    `max_bytes`, and it may have at most MAX_FRAMES frames; otherwise OverLimit."""
    if len(frames) < 2:
        return None
    envelope, payload = frames[:-1], frames[-1]
    sent = len(frames) - 1  # the routing identity is the ROUTER's, not a frame sent
    if sent > MAX_FRAMES:
        raise OverLimit(_reply_envelope(envelope, max_bytes), ProtocolError(
            "bad_request", f"a request has at most {MAX_FRAMES} frames; this one has {sent}"))
    if sum(map(len, envelope[1:])) + len(payload) > max_bytes:
        raise OverLimit(_reply_envelope(envelope, max_bytes), ProtocolError(
            "request_too_large", f"request is larger than {max_bytes} bytes (all frames "
            "counted)"))
    return envelope, payload


def _reply_envelope(envelope: list[bytes], max_bytes: int) -> list[bytes]:
    """The envelope as received when it is within the limits itself (a REQ client's
    delimiter in front of a payload too large), else the routing identity alone: an
    oversized envelope is never held a second time for the reply."""
    if len(envelope) <= MAX_FRAMES and sum(map(len, envelope[1:])) <= max_bytes:
        return envelope
    return envelope[:1]


def decode_request(payload: bytes, max_bytes: int) -> Request:
    """A Request from the payload frame, or DecodeError."""
    if len(payload) > max_bytes:
        raise DecodeError(None, ProtocolError(
            "request_too_large", f"request is larger than {max_bytes} bytes"))
    try:
        obj = loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DecodeError(None, ProtocolError("bad_request", "payload is not UTF-8 JSON")) from None
    if not isinstance(obj, dict):
        raise DecodeError(None, ProtocolError("bad_request", "payload is not a JSON object"))
    return _envelope(obj)


def _envelope(obj: dict[str, Any]) -> Request:
    request_id = obj.get("id")
    if not valid_id(request_id):
        raise DecodeError(None, ProtocolError(
            "bad_request", "id must be 1 to 64 printable ASCII characters", field="id"))
    assert isinstance(request_id, str)
    version = obj.get("v")
    if isinstance(version, bool) or not isinstance(version, int):
        raise DecodeError(request_id, ProtocolError(
            "bad_request", "v must be the integer 1", field="v"))
    if version != PROTOCOL_VERSION:
        raise DecodeError(request_id, ProtocolError(
            "unsupported_version", f"protocol version {version} is not supported; use 1"))
    cmd = obj.get("cmd")
    if not isinstance(cmd, str):
        raise DecodeError(request_id, ProtocolError(
            "bad_request", "cmd must be a string", field="cmd"))
    args = obj.get("args")
    if args is None:  # absent, or null as serializers write an unset optional field
        args = {}
    if not isinstance(args, dict):
        raise DecodeError(request_id, ProtocolError(
            "bad_request", "args must be an object", field="args"))
    return Request(id=request_id, cmd=cmd, args=args)


def encode_result(request_id: str | None, result: dict[str, Any]) -> bytes:
    """A successful reply payload."""
    return dumps({"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "result": result})


def encode_error(request_id: str | None, error: ProtocolError) -> bytes:
    """A failed reply payload."""
    return dumps({"v": PROTOCOL_VERSION, "id": request_id, "ok": False, "error": error.to_wire()})


def encode_request(request_id: str, cmd: str, args: dict[str, Any] | None = None) -> bytes:
    """A request payload (clients)."""
    return dumps({"v": PROTOCOL_VERSION, "id": request_id, "cmd": cmd, "args": args or {}})


def encode_event(seq: int, order: dict[str, Any]) -> list[bytes]:
    """The two frames of an order event: topic and body."""
    return [f"order.{order['status']}".encode(), dumps(
        {"v": PROTOCOL_VERSION, "seq": seq, "order": order})]
