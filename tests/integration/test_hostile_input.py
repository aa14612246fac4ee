"""Hostile input against a real daemon: it never crashes, answers every well-framed
request with a structured error, keeps serving a well-behaved client, and its
memory stays bounded."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.client import OrderdClient
from protocol.codec import MAX_FRAMES
from protocol.errors import RETRYABLE, ProtocolError
from tests.helpers import DaemonProcess, running_daemon

RSS_GROWTH_LIMIT_KB = 150_000
MAX_REQUEST_BYTES = 65536  # the default the target daemon runs with
COMMANDS = ["ping", "submit", "status", "cancel", "list", "health", "stats", "reconcile"]

HOSTILE_DECIMALS = ["0.001", "0", "-1", "1e400", "NaN", "1e999999999", "1e1000000", "1e-19",
                    "1234567890123456", "1E+15", "-0", "0e-999999999"]
"""Amounts and prices at and beyond the documented bounds."""
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=5),
    max_leaves=30)
# text for the free-text fields: control and format characters, line and paragraph
# separators and lone surrogates mixed with ordinary letters and digits
odd_text = st.text(st.characters(categories=["Cc", "Cf", "Cs", "Zl", "Zp", "Zs", "Ll", "Nd"]),
                   min_size=1, max_size=40)
orders = st.fixed_dictionaries({}, optional={
    "symbol": st.sampled_from(["BTC/USD", "ETH/USD", "XXX/YYY", "BTCUSD"]) | json_values,
    "side": st.sampled_from(["buy", "sell", "hold"]) | json_values,
    "type": st.sampled_from(["limit", "market"]) | json_values,
    "amount": st.sampled_from(HOSTILE_DECIMALS) | json_values,
    "price": st.sampled_from(["1000", *HOSTILE_DECIMALS]) | json_values,
    "client_order_id": st.text(max_size=40) | odd_text | json_values,
    "exchange": st.sampled_from(["paper"]) | odd_text | json_values,
    "params": json_values,
})
requests = st.fixed_dictionaries({
    "v": st.sampled_from([1, 2, "1", None, True]) | json_values,
    "id": st.text(min_size=1, max_size=70) | json_values,
    "cmd": st.sampled_from(COMMANDS) | st.text(max_size=20) | json_values,
}, optional={"args": st.fixed_dictionaries({}, optional={
    "order": orders | json_values, "wait": st.sampled_from(["accepted", "durable"]),
    "client_order_id": json_values | odd_text, "order_id": json_values | odd_text,
    "status": json_values, "limit": json_values, "after": json_values | odd_text,
    "symbol": json_values | odd_text, "exchange": json_values | odd_text,
}) | json_values})
frames = st.lists(st.binary(max_size=64), max_size=4)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def broken_limit(parts: list[bytes]) -> str | None:
    """The error a message the client sends as `parts` gets for its size or frames."""
    if len(parts) > MAX_FRAMES:
        return "bad_request"
    if sum(map(len, parts)) > MAX_REQUEST_BYTES:
        return "request_too_large"
    return None


def envelope_within_limits(parts: list[bytes]) -> bool:
    return len(parts) <= MAX_FRAMES and sum(map(len, parts[:-1])) <= MAX_REQUEST_BYTES


class Raw:
    """A DEALER socket sending arbitrary frames and reading the one reply."""

    def __init__(self, endpoint: str) -> None:
        self.socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)

    def exchange(self, parts: list[bytes]) -> dict[str, Any]:
        self.socket.send_multipart(parts)
        assert self.socket.poll(10_000), f"no reply to {parts!r:.200}"
        reply = self.socket.recv_multipart()
        limit = broken_limit(parts)
        if limit is None or envelope_within_limits(parts):
            assert reply[:-1] == parts[:-1], "envelope not returned unchanged"
        else:
            assert reply[:-1] == [], "an envelope over the limits is not sent back"
        body = json.loads(reply[-1])
        assert isinstance(body, dict) and body["v"] == 1 and isinstance(body["ok"], bool)
        if limit is not None:
            assert body["id"] is None and body["error"]["code"] == limit, body
        if not body["ok"]:
            error = body["error"]
            assert error["code"] in RETRYABLE and isinstance(error["message"], str)
            assert error["retryable"] is RETRYABLE[error["code"]]
        return body

    def close(self) -> None:
        self.socket.close()


class WellBehaved:
    """A client pinging and submitting throughout; every request must be answered."""

    def __init__(self, daemon: DaemonProcess) -> None:
        self.endpoint = daemon.control
        self.answered = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WellBehaved:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with OrderdClient(self.endpoint, timeout_s=10.0) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                try:
                    if n % 10 == 0:
                        order = {"symbol": "BTC/USD", "side": "buy", "type": "limit",
                                 "amount": "0.01", "price": "1000", "client_order_id":
                                 f"calm-{n}"}
                        assert client.submit(order, wait="durable")["status"]
                    else:
                        assert client.ping()["state"] == "ready"
                    self.answered += 1
                except Exception as exc:  # noqa: BLE001 - reported by the test
                    self.failures.append(repr(exc))
                    return


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with running_daemon(tmp_path_factory.mktemp("hostile")) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def raw(target: DaemonProcess) -> Iterator[Raw]:
    sock = Raw(target.control)
    yield sock
    sock.close()


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=requests, envelope=frames)
def test_structured_requests_get_structured_answers(raw: Raw, body: dict[str, Any],
                                                    envelope: list[bytes]) -> None:
    raw.exchange([*envelope, json.dumps(body).encode()])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cmd=st.sampled_from(["halt", "resume"]), reason=odd_text)
def test_text_that_is_not_printable_is_refused_naming_its_field(
        raw: Raw, cmd: str, reason: str) -> None:
    request = {"v": 1, "id": "r-1", "cmd": cmd, "args": {"reason": reason}}
    # what the daemon reads: two surrogates that make a pair arrive as one character
    received = json.loads(json.dumps(reason))
    try:
        body = raw.exchange([json.dumps(request).encode()])
        if received.isprintable():
            assert body["ok"] is True
        else:
            assert body["error"]["code"] == "bad_request"
            assert body["error"]["details"] == {"field": "reason"}
    finally:  # a halt that got through must not stay for the tests after this one
        raw.exchange([json.dumps({"v": 1, "id": "r-2", "cmd": "resume"}).encode()])
    assert raw.exchange([b'{"v":1,"id":"p","cmd":"ping"}'])["result"]["state"] == "ready"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.lists(st.binary(max_size=300), min_size=1, max_size=6))
def test_arbitrary_frames_get_structured_answers(raw: Raw, parts: list[bytes]) -> None:
    raw.exchange(parts)


envelope_frames = st.lists(st.integers(0, 70_000).map(lambda n: b"e" * n)
                           | st.binary(max_size=16), max_size=MAX_FRAMES + 2)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(envelope=envelope_frames, cmd=st.sampled_from(["ping", "health", "list"]))
def test_envelope_fuzzer(raw: Raw, envelope: list[bytes], cmd: str) -> None:
    """Envelopes around the size and frame limits: within them a request is served and
    its envelope returned; beyond them it gets its structured refusal (see exchange)."""
    parts = [*envelope, json.dumps({"v": 1, "id": "env", "cmd": cmd}).encode()]
    body = raw.exchange(parts)
    if broken_limit(parts) is None:
        assert body["ok"] is True and body["id"] == "env", body


def mutations(rng: random.Random, count: int) -> Iterator[list[bytes]]:
    """Valid requests bent out of shape, huge and deep ones, and junk."""
    valid = json.dumps({"v": 1, "id": "f-1", "cmd": "submit", "args": {"order": {
        "symbol": "BTC/USD", "side": "buy", "type": "limit", "amount": "0.01",
        "price": "1000"}, "wait": "durable"}}).encode()
    for n in range(count):
        kind = n % 6
        if kind == 0:  # flipped bytes
            data = bytearray(valid)
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            yield [bytes(data)]
        elif kind == 1:  # truncated
            yield [valid[:rng.randrange(len(valid))]]
        elif kind == 2:  # deeply nested
            depth = rng.choice([100, 1000, 30_000])
            yield [b'{"v":1,"id":"d","cmd":"submit","args":' + b"[" * depth + b"]" * depth
                   + b"}"]
        elif kind == 3:  # oversized
            yield [b'{"v":1,"id":"big","cmd":"ping","pad":"' + b"x" * 200_000 + b'"}']
        elif kind == 4:  # many frames, random envelope
            yield [rng.randbytes(rng.randrange(20)) for _ in range(rng.randint(2, 12))]
        else:  # random bytes
            yield [rng.randbytes(rng.randrange(1, 500))]


def test_raw_frame_fuzzer_with_a_calm_client_alongside(target: DaemonProcess,
                                                       raw: Raw) -> None:
    assert target.process is not None
    pid = target.process.pid
    before = rss_kb(pid)
    with WellBehaved(target) as calm:
        for parts in mutations(random.Random(7), 3000):
            raw.exchange(parts)
    assert not calm.failures, calm.failures
    assert calm.answered > 0
    grown = rss_kb(pid) - before
    assert grown < RSS_GROWTH_LIMIT_KB, f"RSS grew by {grown} kB"
    with OrderdClient(target.control) as client:
        health = client.health()
    assert health["state"] == "ready"
    assert all(actor["restarts"] == 0 for actor in health["actors"].values()), health


@pytest.mark.parametrize("field", ["amount", "price"])
def test_numbers_beyond_bounds_are_refused_before_anything_is_recorded(
        target: DaemonProcess, field: str) -> None:
    """A value the ledger could not format once took the order path down; the calm
    order sent right behind each of many such submits is recorded and answered."""
    with OrderdClient(target.control) as hostile, OrderdClient(target.control) as calm:
        for n, value in enumerate(["1e999999999", "1e1000000", "1e-400", "12345678901234567"]):
            cid = f"huge-{field}-{n}"
            order = {"symbol": "BTC/USD", "side": "buy", "type": "limit", "amount": "0.01",
                     "price": "1000", "client_order_id": cid, field: value}
            with pytest.raises(ProtocolError) as refused:
                hostile.submit(order, wait="durable")
            assert refused.value.code == "invalid_order"
            assert refused.value.details == {"field": field}
            with pytest.raises(ProtocolError) as missing:
                hostile.status(client_order_id=cid)
            assert missing.value.code == "not_found"
            placed = calm.submit({"symbol": "BTC/USD", "side": "buy", "type": "limit",
                                  "amount": "0.01", "price": "1000",
                                  "client_order_id": f"calm-{field}-{n}"}, wait="durable")
            assert placed["status"] == "pending_submit"
        health = calm.health()
    assert health["state"] == "ready"
    assert all(actor["restarts"] == 0 for actor in health["actors"].values()), health
