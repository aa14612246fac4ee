"""Every envelope and argument error of the wire contract, over a real socket."""

from __future__ import annotations

import json
from typing import Any

import pytest
import zmq

from protocol.codec import dumps
from tests.helpers import DaemonProcess, market_buy, resting_limit_buy


@pytest.fixture()
def raw(daemon: DaemonProcess) -> Any:
    socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(daemon.control)

    def exchange(*frames: bytes) -> dict[str, Any]:
        socket.send_multipart(list(frames))
        assert socket.poll(10_000), "no reply"
        reply = json.loads(socket.recv_multipart()[-1])
        assert isinstance(reply, dict)
        return reply

    yield exchange
    socket.close()


def request(cmd: str, args: Any = None, **top: Any) -> bytes:
    body = {"v": 1, "id": "r-1", "cmd": cmd, **top}
    if args is not None:
        body["args"] = args
    return dumps(body)


def error_of(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply["ok"] is False, reply
    assert reply["v"] == 1
    error = reply["error"]
    assert isinstance(error["message"], str) and isinstance(error["retryable"], bool)
    return error  # type: ignore[no-any-return]


@pytest.mark.parametrize("payload", [
    b"\xff\xfe not utf-8",
    b"not json",
    b"[1, 2, 3]",
    b'"a string"',
    b"",
    b'{"v": 1, "id": "r-1", "cmd": "ping", "x": NaN}',
])
def test_unreadable_payload_is_bad_request_with_null_id(raw: Any, payload: bytes) -> None:
    reply = raw(payload)
    assert reply["id"] is None
    assert error_of(reply)["code"] == "bad_request"


@pytest.mark.parametrize("body,field", [
    ({"id": "r-1", "cmd": "ping"}, "v"),
    ({"v": "1", "id": "r-1", "cmd": "ping"}, "v"),
    ({"v": True, "id": "r-1", "cmd": "ping"}, "v"),
    ({"v": 1, "id": "r-1"}, "cmd"),
    ({"v": 1, "id": "r-1", "cmd": 7}, "cmd"),
    ({"v": 1, "id": "r-1", "cmd": "ping", "args": []}, "args"),
])
def test_envelope_field_errors_echo_the_id(raw: Any, body: dict[str, Any], field: str) -> None:
    reply = raw(json.dumps(body).encode())
    assert reply["id"] == "r-1"
    error = error_of(reply)
    assert error["code"] == "bad_request" and error["details"]["field"] == field


@pytest.mark.parametrize("bad_id", [None, "", "x" * 65, "caf\u00e9", 12, "tab\there"])
def test_invalid_id_is_bad_request_with_null_id(raw: Any, bad_id: Any) -> None:
    body: dict[str, Any] = {"v": 1, "cmd": "ping"}
    if bad_id is not None:
        body["id"] = bad_id
    reply = raw(json.dumps(body).encode())
    assert reply["id"] is None
    assert error_of(reply)["code"] == "bad_request"


def test_other_version_is_unsupported(raw: Any) -> None:
    reply = raw(dumps({"v": 2, "id": "r-1", "cmd": "ping"}))
    assert reply["id"] == "r-1"
    assert error_of(reply)["code"] == "unsupported_version"


def test_unknown_command(raw: Any) -> None:
    assert error_of(raw(request("launch")))["code"] == "unknown_command"


def test_unknown_top_level_keys_are_ignored(raw: Any) -> None:
    reply = raw(request("ping", extra="ignored"))
    assert reply["ok"] is True and reply["result"]["state"] == "ready"


def test_request_too_large(raw: Any) -> None:
    big = request("ping", {"pad": "x" * 70_000})
    reply = raw(big)
    assert reply["id"] is None
    assert error_of(reply)["code"] == "request_too_large"


@pytest.mark.parametrize("order,field", [
    ({**market_buy(), "amount": "0"}, "amount"),
    ({**market_buy(), "amount": "-1"}, "amount"),
    ({**market_buy(), "amount": "NaN"}, "amount"),
    ({**market_buy(), "amount": "Infinity"}, "amount"),
    ({**market_buy(), "amount": True}, "amount"),
    ({**market_buy(), "amount": "abc"}, "amount"),
    ({**market_buy(), "side": "hold"}, "side"),
    ({**market_buy(), "type": "stop"}, "type"),
    ({**market_buy(), "symbol": "BTCUSD"}, "symbol"),
    ({**market_buy(), "price": "100"}, "price"),
    ({**resting_limit_buy(), "price": None}, "price"),
    ({**resting_limit_buy(), "price": "0"}, "price"),
    ({**resting_limit_buy(), "time_in_force": "DAY"}, "time_in_force"),
    ({**market_buy(), "time_in_force": "IOC"}, "time_in_force"),
    ({**market_buy(), "client_order_id": "has space"}, "client_order_id"),
    ({**market_buy(), "client_order_id": "x" * 37}, "client_order_id"),
    ({**market_buy(), "params": []}, "params"),
    ({**market_buy(), "colour": "red"}, "colour"),
])
def test_invalid_order_names_the_field(raw: Any, order: dict[str, Any], field: str) -> None:
    order = {k: v for k, v in order.items() if v is not None}
    error = error_of(raw(request("submit", {"order": order})))
    assert error["code"] == "invalid_order" and error["retryable"] is False
    assert error["details"]["field"] == field


@pytest.mark.parametrize("cmd,args,field", [
    ("submit", {}, "order"),
    ("submit", {"order": market_buy(), "wait": "forever"}, "wait"),
    ("status", {}, "client_order_id"),
    ("status", {"client_order_id": "a", "order_id": "b"}, "client_order_id"),
    ("list", {"limit": 0}, "limit"),
    ("list", {"limit": 1001}, "limit"),
    ("list", {"status": ["lost"]}, "status"),
    ("list", {"after": "not-a-cursor"}, "after"),
    ("list", {"after": "\u00b2"}, "after"),  # str.isdigit() would let this through
    ("list", {"after": "9" * 30}, "after"),  # beyond a 64-bit row number
])
def test_bad_arguments_name_the_field(raw: Any, cmd: str, args: dict[str, Any],
                                      field: str) -> None:
    error = error_of(raw(request(cmd, args)))
    assert error["code"] == "bad_request" and error["details"]["field"] == field


def test_unknown_exchange(raw: Any) -> None:
    error = error_of(raw(request("submit", {"order": {**market_buy(), "exchange": "nowhere"}})))
    assert error["code"] == "unknown_exchange"


def test_unknown_symbol(raw: Any) -> None:
    error = error_of(raw(request("submit", {"order": market_buy(symbol="DOGE/USD")})))
    assert error["code"] == "unknown_symbol"


@pytest.mark.parametrize(("order", "message"), [
    (market_buy(amount="0.300000000000001", client_order_id="off-step-1"),
     "amount 0.300000000000001 is not a multiple of the BTC/USD amount step 0.00001"),
    # a JSON number is read as the decimal it spells (0.1 + 0.2 spelt out has 17 digits:
    # beyond the bounds, refused before any step is looked at)
    ({**market_buy(client_order_id="off-step-2"), "amount": 0.300000000000001},
     "amount 0.300000000000001 is not a multiple of the BTC/USD amount step 0.00001"),
    (resting_limit_buy(price="1000.005", client_order_id="off-step-3"),
     "price 1000.005 is not a multiple of the BTC/USD price step 0.01"),
])
def test_amount_or_price_off_the_market_step_is_refused_before_the_ledger(
        raw: Any, order: dict[str, Any], message: str) -> None:
    error = error_of(raw(request("submit", {"order": order})))
    assert error["code"] == "invalid_order" and error["message"] == message
    assert error["details"]["field"] == message.split()[0]
    missing = error_of(raw(request("status", {"client_order_id": order["client_order_id"]})))
    assert missing["code"] == "not_found"


@pytest.mark.parametrize("cmd", ["status", "cancel"])
def test_not_found(raw: Any, cmd: str) -> None:
    assert error_of(raw(request(cmd, {"client_order_id": "never-placed"})))["code"] == "not_found"
    assert error_of(raw(request(cmd, {"order_id": "999999999"})))["code"] == "not_found"


def test_envelope_frames_are_returned_unchanged(daemon: DaemonProcess) -> None:
    socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(daemon.control)
    try:
        socket.send_multipart([b"route-a", b"", request("ping")])
        assert socket.poll(10_000)
        frames = socket.recv_multipart()
        assert frames[:2] == [b"route-a", b""]
        assert json.loads(frames[2])["ok"] is True
    finally:
        socket.close()


def test_garbage_leaves_the_daemon_serving(daemon: DaemonProcess, raw: Any) -> None:
    socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(daemon.control)
    garbage = [
        [bytes(range(256))],
        [b"a", b"b", b"c", b"\x00"],
        [b""],
        [b"[" * 60_000],
        [b'{"a":' * 20_000 + b"1" + b"}" * 20_000],
        # too large, yet under the frame size that ends the connection (4 x 64 KiB;
        # test_message_limits covers beyond it)
        [b"x" * 250_000],
    ]
    try:
        for frames in garbage * 3:
            socket.send_multipart(frames)
        for _ in range(len(garbage) * 3):
            assert socket.poll(10_000), "every well-framed message gets an answer"
            reply = json.loads(socket.recv_multipart()[-1])
            assert reply["ok"] is False and reply["error"]["code"] in (
                "bad_request", "request_too_large")
    finally:
        socket.close()
    assert raw(request("ping"))["result"]["state"] == "ready"


@pytest.mark.parametrize("number", [b"1e-999999999999999999999999", b"1e999999999999999999999999",
                                    b"0.5E+1000000000000000000000"])
def test_a_number_beyond_the_decimal_range_is_read_and_serving_goes_on(
        daemon: DaemonProcess, number: bytes) -> None:
    """Valid JSON whose exponent no decimal holds: under an ignored key it is ignored, as
    an amount it is invalid_order naming it, and the next request is answered (such a
    number once ended the front end's one thread: a running daemon that answered
    nothing, to anyone)."""
    socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(daemon.control)

    def exchange(payload: bytes) -> dict[str, Any]:
        socket.send_multipart([payload])
        assert socket.poll(10_000), "no reply: the daemon stopped serving"
        reply: dict[str, Any] = json.loads(socket.recv_multipart()[-1])
        return reply

    try:
        ignored = exchange(b'{"v": 1, "id": "r-1", "cmd": "ping", "pad": ' + number + b"}")
        assert ignored["ok"] is True and ignored["id"] == "r-1"
        amount = exchange(request("submit", {"order": {**market_buy(), "amount": "X"}})
                          .replace(b'"X"', number))
        error = error_of(amount)
        assert error["code"] == "invalid_order" and error["details"] == {"field": "amount"}
        assert exchange(request("ping"))["result"]["state"] == "ready"
    finally:
        socket.close()


@pytest.mark.parametrize("depth", [9, 900])
def test_deeply_nested_params_are_invalid_order_naming_the_key(
        daemon: DaemonProcess, raw: Any, depth: int) -> None:
    """params nested as deep as the JSON parser allows were walked until a RecursionError:
    `internal`, and each such request cost the front end tens of milliseconds and the log
    a traceback of thousands of lines. Refused like any other key no driver takes."""
    nested = b"[" * depth + b"]" * depth
    payload = request("submit", {"order": {**resting_limit_buy(), "params": {"x": "X"}}}
                      ).replace(b'"X"', nested)
    error = error_of(raw(payload))
    assert error["code"] == "invalid_order" and error["details"] == {"field": "params.x"}
    assert "internal error" not in daemon.log.read_text()
