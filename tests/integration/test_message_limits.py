"""The whole message counts: envelope frames against max_request_bytes, a bounded number
of frames, huge frames cost the sender its connection, and a client that never reads
its replies cannot make the daemon hold more than a bounded amount for it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from daemon.frontend import FRAME_SIZE_FACTOR
from protocol.codec import MAX_FRAMES
from protocol.errors import RETRYABLE
from tests.helpers import DaemonProcess, running_daemon, wait_until
from tests.integration.test_hostile_input import WellBehaved, rss_kb

MAX_REQUEST_BYTES = 65536  # the default the daemons here run with
RSS_GROWTH_LIMIT_KB = 64_000
"""The computed bound for one connection is about 12 MB (128 replies of up to 64 KiB
of envelope, 64 requests read ahead); the rest is room for the allocator."""


def ping(request_id: str) -> bytes:
    return json.dumps({"v": 1, "id": request_id, "cmd": "ping"}).encode()


def dealer(endpoint: str, context: zmq.Context[Any] | None = None) -> zmq.Socket[bytes]:
    sock: zmq.Socket[bytes] = (context or zmq.Context.instance()).socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, 10)
    sock.setsockopt(zmq.SNDTIMEO, 30_000)
    sock.connect(endpoint)
    return sock


def answer(sock: zmq.Socket[bytes]) -> tuple[list[bytes], dict[str, Any]]:
    """(frames in front of the reply, the reply) of the next reply."""
    assert sock.poll(10_000), "no reply"
    *envelope, body = sock.recv_multipart()
    reply = json.loads(body)
    assert isinstance(reply, dict) and reply["v"] == 1
    if not reply["ok"]:
        assert reply["error"]["code"] in RETRYABLE
    return envelope, reply


def calm_ping(daemon: DaemonProcess) -> None:
    with daemon.client_of(timeout_s=10.0) as calm:
        assert calm.ping()["state"] == "ready"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with running_daemon(tmp_path_factory.mktemp("limits")) as running:
        yield running


@pytest.fixture()
def sock(daemon: DaemonProcess) -> Iterator[zmq.Socket[bytes]]:
    sock = dealer(daemon.control)
    yield sock
    sock.close()


def test_an_oversized_envelope_gets_request_too_large(daemon: DaemonProcess,
                                                      sock: zmq.Socket[bytes]) -> None:
    """Two envelope frames of 40 kB and a small payload: over the limit as a whole. The
    envelope is not sent back; the reply comes on the connection alone."""
    sock.send_multipart([b"e" * 40_000, b"f" * 40_000, ping("big-envelope")])
    envelope, reply = answer(sock)
    assert envelope == []
    assert reply["ok"] is False and reply["error"]["code"] == "request_too_large"
    assert reply["id"] is None
    calm_ping(daemon)


def test_a_small_envelope_comes_back_in_front_of_request_too_large(
        daemon: DaemonProcess, sock: zmq.Socket[bytes]) -> None:
    """Only the payload is too large: the envelope returns, so REQ-style framing works."""
    sock.send_multipart([b"route", b"", ping("p") + b" " * MAX_REQUEST_BYTES])
    envelope, reply = answer(sock)
    assert envelope == [b"route", b""]
    assert reply["error"]["code"] == "request_too_large"
    req: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(daemon.control)
    try:
        req.send(ping("req") + b" " * MAX_REQUEST_BYTES)
        assert req.poll(10_000), "a REQ client gets its request_too_large"
        assert json.loads(req.recv())["error"]["code"] == "request_too_large"
    finally:
        req.close()


def test_an_envelope_within_the_limit_is_served_and_returned(
        sock: zmq.Socket[bytes]) -> None:
    frames = [b"e" * 9_000 for _ in range(MAX_FRAMES - 1)]  # 63 kB of 64 KiB
    sock.send_multipart([*frames, ping("full")])
    envelope, reply = answer(sock)
    assert envelope == frames and reply["ok"] is True and reply["id"] == "full"


def test_too_many_frames_is_bad_request(daemon: DaemonProcess,
                                        sock: zmq.Socket[bytes]) -> None:
    sock.send_multipart([*[b""] * MAX_FRAMES, ping("many")])
    envelope, reply = answer(sock)
    assert envelope == []
    assert reply["error"]["code"] == "bad_request" and reply["id"] is None
    assert f"at most {MAX_FRAMES} frames" in reply["error"]["message"]
    calm_ping(daemon)


def test_a_huge_frame_costs_the_sender_its_connection(daemon: DaemonProcess) -> None:
    sock = dealer(daemon.control)
    monitor = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
    try:
        sock.send_multipart([b"x" * (FRAME_SIZE_FACTOR * MAX_REQUEST_BYTES + 1),
                             ping("huge")])

        def disconnected() -> bool:
            while monitor.poll(0):
                if recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED:
                    return True
            return False

        wait_until(disconnected, "the daemon closing the connection")
        assert not sock.poll(200), "a huge frame gets no reply"
        # ZeroMQ reconnects by itself; the next request is served
        sock.send_multipart([ping("after")])
        assert answer(sock)[1]["id"] == "after"
    finally:
        sock.disable_monitor()
        monitor.close()
        sock.close()
    calm_ping(daemon)


class RssPeak:
    """The largest VmRSS of a process, sampled every 20 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_kb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_kb(self.pid))


def flood(endpoint: str, messages: Iterator[list[bytes]]) -> None:
    """Send every message on one connection and never read a reply."""
    context: zmq.Context[Any] = zmq.Context()
    sock = dealer(endpoint, context)
    sock.setsockopt(zmq.SNDHWM, 4)  # a send returns only once the message is nearly out
    sock.setsockopt(zmq.RCVHWM, 1)  # and replies are not taken off the daemon's hands
    try:
        for frames in messages:
            sock.send_multipart(frames, copy=False)
    finally:
        sock.close()
        context.term()


def test_a_client_that_never_reads_cannot_bloat_the_daemon(tmp_path: Any) -> None:
    """3000 requests whose replies each carry a 60 kB envelope back (180 MB if all were
    held), 200 requests of 1.4 MB over the limit, and 40 frames of 4 MiB; nothing is
    ever read. The daemon's memory stays within the bound and a calm client alongside is
    served throughout."""
    wide = [b"w" * 60_000, ping("wide")]
    over = [*[b"o" * 200_000] * (MAX_FRAMES - 1), ping("over")]
    huge = [b"h" * (4 << 20), ping("huge")]
    with running_daemon(tmp_path) as daemon:
        assert daemon.process is not None
        for _ in range(20):  # allocations of a first requests are not growth
            calm_ping(daemon)
        before = rss_kb(daemon.process.pid)
        with RssPeak(daemon.process.pid) as rss, WellBehaved(daemon) as calm:
            flood(daemon.control, iter([wide] * 3000))
            flood(daemon.control, iter([over] * 200))
            flood(daemon.control, iter([huge] * 40))
            for _ in range(50):
                calm_ping(daemon)
        assert not calm.failures, calm.failures
        assert calm.answered > 0
        grown = rss.peak - before
        assert grown < RSS_GROWTH_LIMIT_KB, f"RSS grew by {grown} kB"
