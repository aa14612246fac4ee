"""Decoding requests and encoding replies."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.codec import (
    MAX_FRAMES,
    DecodeError,
    OverLimit,
    decode_request,
    dumps,
    encode_error,
    encode_result,
    format_decimal,
    loads,
    split_envelope,
)
from protocol.errors import ProtocolError
from protocol.validation import parse_order_spec


def decode(body: object, max_bytes: int = 65536) -> object:
    return decode_request(json.dumps(body).encode(), max_bytes)


def test_valid_request_keeps_exact_decimals() -> None:
    raw = b'{"v":1,"id":"a","cmd":"submit","args":{"order":{"amount":0.1}}}'
    request = decode_request(raw, 1000)
    assert request.args["order"]["amount"] == Decimal("0.1")


def test_args_default_to_empty() -> None:
    assert decode({"v": 1, "id": "a", "cmd": "ping"}).args == {}  # type: ignore[attr-defined]
    assert decode({"v": 1, "id": "a", "cmd": "ping", "args": None}).args == {}  # type: ignore[attr-defined]


@pytest.mark.parametrize("number,value", [
    ("1e-999999999999999999999999", "0"),
    ("-1e-999999999999999999999999", "-0"),
    ("0e999999999999999999999999", "0"),
    ("1e999999999999999999999999", "Infinity"),
    ("-2.5E+999999999999999999999999", "-Infinity"),
])
def test_a_number_beyond_the_decimal_range_reads_as_a_float_would(number: str,
                                                                  value: str) -> None:
    """Valid JSON that no decimal holds: zero below the range, an infinity above it
    (which an order's amount refuses), never an exception out of decoding."""
    raw = ('{"v":1,"id":"a","cmd":"ping","x":' + number + "}").encode()
    assert decode_request(raw, 1000).cmd == "ping"
    assert str(loads(number)) == value


def test_too_large_is_checked_before_parsing() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_request(b"x" * 101, 100)
    assert caught.value.error.code == "request_too_large" and caught.value.request_id is None


def test_deep_nesting_is_bad_request() -> None:
    with pytest.raises(DecodeError) as caught:
        decode_request(b"[" * 50_000, 100_000)
    assert caught.value.error.code == "bad_request"


def test_error_reply_shape() -> None:
    reply = json.loads(encode_error("a", ProtocolError(
        "circuit_open", "open", retry_after_s=2.5)))
    assert reply == {"v": 1, "id": "a", "ok": False, "error": {
        "code": "circuit_open", "message": "open", "retryable": True, "retry_after_s": 2.5}}


def test_result_reply_shape() -> None:
    assert json.loads(encode_result("a", {"x": Decimal("1.50")})) == {
        "v": 1, "id": "a", "ok": True, "result": {"x": "1.5"}}


@pytest.mark.parametrize("value,text", [
    (Decimal("1E+2"), "100"), (Decimal("0.00000100"), "0.000001"), (Decimal("5"), "5")])
def test_decimals_are_plain_strings(value: Decimal, text: str) -> None:
    assert format_decimal(value) == text


def test_spec_normalisation_fills_defaults() -> None:
    spec = parse_order_spec({"symbol": "BTC/USD", "side": "buy", "type": "limit",
                             "amount": "1.0", "price": 10})
    normal = spec.normalized("paper", "cid-1")
    assert (normal.exchange, normal.time_in_force, normal.client_order_id) == (
        "paper", "GTC", "cid-1")
    assert normal.amount == Decimal(1)


def test_dumps_is_compact_with_decimals_as_strings_and_any_integer() -> None:
    payload = {"d": Decimal("1.50"), "n": 2**70, "t": ("a", 1), "s": "é"}
    assert json.loads(dumps(payload)) == {"d": "1.5", "n": 2**70, "t": ["a", 1], "s": "é"}
    assert b" " not in dumps(payload)


ID = b"\x00k\x8bEg"  # a routing identity, as a ROUTER receives it first


def over_limit(frames: list[bytes], max_bytes: int) -> OverLimit:
    with pytest.raises(OverLimit) as caught:
        split_envelope(frames, max_bytes)
    assert caught.value.request_id is None
    return caught.value


def test_the_envelope_counts_against_the_limit() -> None:
    caught = over_limit([ID, b"e" * 60, b"p" * 41], 100)
    assert caught.error.code == "request_too_large"
    assert caught.envelope == [ID, b"e" * 60], "a small envelope is still returned"


def test_an_envelope_over_the_limit_is_not_returned() -> None:
    caught = over_limit([ID, b"e" * 60, b"e" * 41, b"{}"], 100)
    assert caught.error.code == "request_too_large"
    assert caught.envelope == [ID], "the reply goes back on the routing identity alone"


def test_more_frames_than_allowed_is_bad_request_on_the_identity_alone() -> None:
    caught = over_limit([ID, *[b""] * MAX_FRAMES, b"{}"], 65536)
    assert caught.error.code == "bad_request" and str(MAX_FRAMES) in caught.error.message
    assert caught.envelope == [ID]


def test_a_message_exactly_at_the_limits_passes() -> None:
    """Every frame the client sent counts; the ROUTER's routing identity does not."""
    frames = [b"i" * 255, *[b"e"] * (MAX_FRAMES - 1), b"p" * (100 - (MAX_FRAMES - 1))]
    assert split_envelope(frames, 100) == (frames[:-1], frames[-1])
    assert split_envelope([ID], 100) is None, "no payload frame: dropped"


frame_lists = st.lists(st.integers(0, 200).map(lambda n: b"f" * n), max_size=12)


@settings(max_examples=500)
@given(sent=frame_lists, max_bytes=st.integers(64, 600))
def test_envelope_fuzz_the_reply_is_bounded(sent: list[bytes], max_bytes: int) -> None:
    """Whatever arrives, what is kept or sent back stays within the limits."""
    frames = [ID, *sent]
    try:
        split = split_envelope(frames, max_bytes)
    except OverLimit as exc:
        assert len(sent) > MAX_FRAMES or sum(map(len, sent)) > max_bytes
        assert exc.envelope in (frames[:-1], [ID])
        assert len(exc.envelope) <= MAX_FRAMES
        assert sum(map(len, exc.envelope[1:])) <= max_bytes
        return
    if not sent:
        assert split is None
        return
    assert split == (frames[:-1], frames[-1])
    assert len(sent) <= MAX_FRAMES and sum(map(len, sent)) <= max_bytes
