"""Client text is inert: refused at validation, escaped wherever the daemon writes it;
credentials are masked in every log record and kept from programs the daemon starts."""

from __future__ import annotations

import io
import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.metrics.alert_sinks import child_environment, payload
from actors.metrics.alerts import Alert
from actors.runtime import DaemonState
from actors.supervisor import Registry
from daemon.logs import MASK, Multiline, configure, set_level, thread_stacks
from daemon.systemd import Heartbeat, Notifier, SystemdLoop
from protocol.errors import ProtocolError
from protocol.text import MARK, printable
from protocol.validation import parse_args

INJECTION = "x\nWATCHDOG=trigger\nWATCHDOG_USEC=1"
SURROGATE = "halt \ud800 now"
HOSTILE = [INJECTION, SURROGATE, "tab\there", "bell\x07", "esc\x1b[31mred", "nul\x00",
           "del\x7f", "c1\x85", "line\u2028sep", "bidi\u202eevil", "nbsp\u00a0"]
# any code point, lone surrogates included (hypothesis leaves them out unless asked)
any_text = st.text(st.characters(codec=None, exclude_categories=())
                   | st.characters(categories=["Cs"]), max_size=40)


# --- the rule and the escape ------------------------------------------------------------

@pytest.mark.parametrize("text,shown", [
    ("plain, with spaces: ünïcödé €", "plain, with spaces: ünïcödé €"),
    (INJECTION, "x\\nWATCHDOG=trigger\\nWATCHDOG_USEC=1"),
    (SURROGATE, "halt \\ud800 now"),
    ("esc\x1b[31m", "esc\\x1b[31m"),
    ("\U000e0001tag", "\\U000e0001tag"),
])
def test_printable_escapes_what_is_not_printable(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_printable_shortens_and_takes_anything() -> None:
    assert printable("abcdef", limit=4) == "abc" + MARK
    assert printable(ValueError("bad\nthing")) == "bad\\nthing"
    assert printable(42) == "42"

    class Broken:
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert printable(Broken()) == "<unprintable Broken>"


@given(any_text)
def test_printable_output_is_one_encodable_line(text: str) -> None:
    shown = printable(text)
    assert shown.isprintable()
    shown.encode("utf-8")  # never UnicodeEncodeError
    if text.isprintable():
        assert shown == text


# --- validation ---------------------------------------------------------------------------

TEXT_ARGS = [("halt", "reason"), ("resume", "reason"), ("status", "order_id"),
             ("cancel", "order_id"), ("status", "client_order_id"),
             ("cancel", "client_order_id"), ("list", "symbol"), ("list", "exchange"),
             ("reconcile", "exchange")]


@pytest.mark.parametrize("cmd,field", TEXT_ARGS)
@pytest.mark.parametrize("text", HOSTILE)
def test_client_text_that_is_not_printable_is_bad_request(cmd: str, field: str,
                                                          text: str) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_args(cmd, {field: text})
    assert refused.value.code == "bad_request"
    assert refused.value.details == {"field": field}


@pytest.mark.parametrize("text", HOSTILE)
def test_an_order_exchange_that_is_not_printable_is_invalid_order(text: str) -> None:
    order = {"symbol": "BTC/USD", "side": "buy", "type": "market", "amount": "1",
             "exchange": text}
    with pytest.raises(ProtocolError) as refused:
        parse_args("submit", {"order": order})
    assert refused.value.code == "invalid_order"
    assert refused.value.details == {"field": "exchange"}


@given(any_text.filter(bool))
def test_a_reason_is_taken_exactly_when_printable(text: str) -> None:
    try:
        accepted = parse_args("halt", {"reason": text}).reason == text
    except ProtocolError as exc:
        assert exc.code == "bad_request" and exc.details == {"field": "reason"}
        accepted = False
    assert accepted == text.isprintable()


# --- where text is written ----------------------------------------------------------------

@pytest.fixture()
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(tmp_path / "n.sock"))
    server.settimeout(10)
    yield server
    server.close()


def test_no_text_adds_a_notify_assignment_or_fails_to_encode(notify_socket: socket.socket
                                                             ) -> None:
    notifier = Notifier(notify_socket.getsockname())
    notifier.status(f"halted ({INJECTION})")
    notifier.status(f"halted ({SURROGATE})")
    notifier.status("y" * 5000)
    first = notify_socket.recv(4096).decode().split("\n")
    assert first == ["STATUS=halted (x\\nWATCHDOG=trigger\\nWATCHDOG_USEC=1)"]
    assert notify_socket.recv(4096) == b"STATUS=halted (halt \\ud800 now)"
    assert len(notify_socket.recv(8192)) < 500  # bounded: one datagram, one short line
    notifier.close()


def test_the_notify_loop_outlives_a_failing_beat(notify_socket: socket.socket) -> None:
    """A status that cannot be made (here: it raises) costs one beat, not the thread."""
    calls = 0
    beat = threading.Event()

    def summary() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise UnicodeEncodeError("utf-8", SURROGATE, 5, 6, "surrogates not allowed")
        beat.set()
        return SURROGATE

    loop = SystemdLoop(Notifier(notify_socket.getsockname()), Heartbeat(Registry()),
                       summary, interval_s=0.05)
    loop.start()
    try:
        got = [notify_socket.recv(4096) for _ in range(2)]
    finally:
        loop.stop()
    assert got == [b"STATUS=halt \\ud800 now", b"WATCHDOG=1"]


def test_a_halt_reason_is_kept_as_one_printable_line() -> None:
    state = DaemonState()
    seen: list[str | None] = []
    state.set("ready")  # running: a halt now changes what ping says
    state.on_change = lambda _state, reason: seen.append(reason)
    state.set("halted", INJECTION + "z" * 1000)
    assert state.reason is not None and state.reason.isprintable()
    assert state.reason.startswith("x\\nWATCHDOG=trigger") and len(state.reason) <= 256
    assert seen == [state.reason]


def test_alerts_reach_every_sink_as_printable_text() -> None:
    alert = Alert("daemon_halted", "critical", f"submits halted: {SURROGATE}",
                  {"exchange": "bx\nfake=1"})
    assert alert.message == "submits halted: halt \\ud800 now"
    assert alert.labels == {"exchange": "bx\\nfake=1"}
    body = json.loads(payload(alert, "2024-01-01T00:00:00Z", 0))
    assert "\n" not in body["message"] and body["labels"]["exchange"] == "bx\\nfake=1"


# --- logs -----------------------------------------------------------------------------------

@pytest.fixture()
def logged() -> Iterator[io.StringIO]:
    """The root logger configured as the daemon does it, into a string; restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("ccxt").level,
             logging.getLogger("urllib3").level)
    stream = io.StringIO()
    configure("DEBUG", "text", stream, secrets=["KEY-abc123", "s3c\"R3t'q"])
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging.getLogger("ccxt").setLevel(saved[2])
    logging.getLogger("urllib3").setLevel(saved[3])


def test_log_arguments_cannot_forge_lines(logged: io.StringIO) -> None:
    log = logging.getLogger("orderd.test")
    log.warning("halted: %s", INJECTION)
    log.warning("halted: %(reason)s", {"reason": SURROGATE})
    log.error("failed: %s (%d tries, %.1f s)", ValueError("a\rb"), 3, 1.5)
    lines = logged.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("halted: x\\nWATCHDOG=trigger\\nWATCHDOG_USEC=1")
    assert lines[1].endswith("halted: halt \\ud800 now")
    assert lines[2].endswith("failed: a\\rb (3 tries, 1.5 s)")


def test_thread_stacks_stay_on_several_lines(logged: io.StringIO) -> None:
    stacks = thread_stacks()
    assert isinstance(stacks, Multiline)
    logging.getLogger("orderd").warning("stacks follow\n%s", stacks)
    assert "thread MainThread" in logged.getvalue() and logged.getvalue().count("\n") > 3


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_credentials_are_masked_in_every_record(fmt: str, logged: io.StringIO) -> None:
    configure("DEBUG", fmt, logged, secrets=["KEY-abc123", "s3c\"R3t'q", ""])
    log = logging.getLogger("orderd.test")
    headers: dict[str, Any] = {"X-MBX-APIKEY": "KEY-abc123"}
    log.debug("request headers %s", headers)
    log.info("secret is %s and %r", "s3c\"R3t'q", "s3c\"R3t'q")
    try:
        raise RuntimeError("signed with KEY-abc123")
    except RuntimeError:
        log.exception("failed")
    text = logged.getvalue()
    assert "KEY-abc123" not in text and "R3t" not in text
    assert text.count(MASK) >= 5


def test_ccxt_and_urllib3_never_log_below_info(logged: io.StringIO) -> None:
    logging.getLogger("ccxt.base.exchange").debug("GET /api, Request: %s", {"k": "v"})
    logging.getLogger("urllib3.connectionpool").debug("GET /api?signature=s")
    logging.getLogger("orderd.test").debug("ours at DEBUG")
    assert logged.getvalue().splitlines()[-1].endswith("ours at DEBUG")
    assert "Request" not in logged.getvalue() and "signature" not in logged.getvalue()
    set_level("ERROR")  # nor below the root's level, on reload
    logging.getLogger("ccxt.base.exchange").warning("a ccxt warning")
    assert "a ccxt warning" not in logged.getvalue()


# --- programs the daemon starts -------------------------------------------------------------

def test_programs_started_get_no_credentials() -> None:
    env = {"PATH": "/usr/bin", "HOME": "/var/lib/orderd", "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8", "TZ": "UTC", "ORDERD_BX_API_KEY": "k",
           "ORDERD_BX_SECRET": "s", "AWS_SECRET_ACCESS_KEY": "a", "NOTIFY_SOCKET": "/run/n",
           "CREDENTIALS_DIRECTORY": "/run/credentials/orderd.service"}
    assert child_environment(env) == {"PATH": "/usr/bin", "HOME": "/var/lib/orderd",
                                      "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC"}
