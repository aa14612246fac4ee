"""Client rate buckets, log formats, the notify datagrams and endpoint exposure."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
from datetime import datetime
from pathlib import Path

import pytest
import zmq.auth

from daemon.logs import JournalFormatter, JsonFormatter, set_level, under_journald
from daemon.rate_limit import ClientRateLimiter, Rate
from daemon.security import client_keys, is_local
from daemon.systemd import Notifier, watchdog_interval_s


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_token_bucket_per_client_and_exchange() -> None:
    clock = FakeClock()
    limiter = ClientRateLimiter({"paper": Rate(per_s=2.0, burst=2.0)}, clock)
    assert limiter.acquire("a", "paper") is None
    assert limiter.acquire("a", "paper") is None
    assert limiter.acquire("a", "paper") == pytest.approx(0.5)
    assert limiter.acquire("b", "paper") is None  # another client has its own bucket
    assert limiter.acquire("a", "other") is None  # an exchange without a rate
    clock.t += 0.5
    assert limiter.acquire("a", "paper") is None


def test_buckets_are_bounded() -> None:
    limiter = ClientRateLimiter({"paper": Rate(1.0, 1.0)}, FakeClock(), max_buckets=10)
    for n in range(100):
        limiter.acquire(f"client-{n}", "paper")
    assert len(limiter._buckets) == 10


def test_reload_changes_rates() -> None:
    clock = FakeClock()
    limiter = ClientRateLimiter({"paper": Rate(1.0, 1.0)}, clock)
    assert limiter.acquire("a", "paper") is None
    assert limiter.acquire("a", "paper") is not None
    limiter.set_rates({})
    assert limiter.acquire("a", "paper") is None


def record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("orderd.x", level, __file__, 1, message, None, None)


def test_journal_lines_carry_the_syslog_priority() -> None:
    text = JournalFormatter().format(record(logging.ERROR, "two\nlines"))
    assert text == "<3>orderd.x: two\n<3>lines"
    assert JournalFormatter().format(record(logging.INFO, "hi")) == "<6>orderd.x: hi"


def test_json_lines() -> None:
    entry = json.loads(JsonFormatter().format(record(logging.WARNING, "careful")))
    assert entry["level"] == "WARNING" and entry["message"] == "careful"
    assert entry["logger"] == "orderd.x" and entry["ts"].endswith("Z")
    assert datetime.fromisoformat(entry["ts"]).tzinfo is not None
    assert "client_order_id" not in entry


def test_json_lines_carry_the_fields_a_record_names() -> None:
    tagged = record(logging.INFO, "refused")
    tagged.client_order_id, tagged.exchange = "od-1\n", "paper"
    entry = json.loads(JsonFormatter().format(tagged))
    assert entry["client_order_id"] == "od-1\\n" and entry["exchange"] == "paper"


def test_library_chatter_stays_below_warning_at_info() -> None:
    set_level("INFO")
    assert logging.getLogger("apscheduler").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("ccxt").getEffectiveLevel() == logging.INFO


def test_journald_is_recognised_by_the_stream_identity(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    with (tmp_path / "err").open("w") as stream:
        stat = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
        assert under_journald(stream)
        monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino + 1}")
        assert not under_journald(stream)
    assert not under_journald(io.StringIO())


def test_notifier_sends_datagrams_and_is_silent_without_systemd(tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(tmp_path / "n.sock"))
    notifier = Notifier(str(tmp_path / "n.sock"))
    notifier.ready()
    notifier.status("ready; all well")
    assert server.recv(100) == b"READY=1"
    assert server.recv(100) == b"STATUS=ready; all well"
    notifier.close()
    server.close()
    Notifier("").ready()  # no socket: nothing happens


def test_watchdog_interval_is_half_the_timeout() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}) is None


@pytest.mark.parametrize("endpoint,local", [
    ("tcp://127.0.0.1:5555", True), ("tcp://localhost:1", True), ("tcp://[::1]:1", True),
    ("tcp://lo:1", True), ("ipc:///run/orderd/c.sock", True), ("tcp://0.0.0.0:1", False),
    ("tcp://*:1", False), ("tcp://[::]:1", False), ("tcp://10.0.0.1:1", False),
    ("tcp://eth0:1", False), ("tcp://example.org:1", False), ("ipc://@orderd", False),
    ("ipc://orderd.sock", True),
])
def test_exposure(endpoint: str, local: bool) -> None:
    assert is_local(endpoint) is local


def test_client_keys_skip_what_is_no_certificate_and_a_missing_folder_lets_no_one_in(
        tmp_path: Path) -> None:
    zmq.auth.create_certificates(tmp_path, "alice")
    (tmp_path / "junk.key").write_text("not a certificate\n")
    public, _ = zmq.auth.load_certificate(tmp_path / "alice.key")
    assert client_keys(tmp_path) == {public}
    assert client_keys(tmp_path / "gone") == set()
