"""Log formats for stderr: readable text, journald-friendly text, or JSON lines.

Under systemd (`$JOURNAL_STREAM` names our stderr) the text format drops the
timestamp, which the journal records itself, and prefixes each line with its
syslog priority (`<3>` ... `<7>`), which journald reads as the entry's level.
Logging is configured here and only from the entry point.

Every record is written by one handler that keeps it safe at any level: the data
put into a message (its arguments) is made one printable line, so outside text
cannot forge a log line or an escape sequence, and every configured credential is
replaced by a fixed mask in the finished text, traceback included. ccxt and urllib3
are held at INFO whatever the level: at DEBUG they log each request's headers (the
API key) and signed URL.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from actors.exchange.errors import without_queries
from protocol.text import printable

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"
PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
              logging.CRITICAL: 2}
QUIET_LOGGERS = {"ccxt": logging.INFO, "urllib3": logging.INFO, "apscheduler": logging.WARNING}
"""Loggers never let below these levels: ccxt's and urllib3's DEBUG records carry
credentials; apscheduler's INFO is chatter about adding and running its one job."""
FIELDS = ("client_order_id", "exchange", "client", "actor")
"""Attributes a record may carry (`extra=`) that the json format writes as fields."""
MASK = "[redacted]"


class Multiline(str):
    """Text the daemon made itself and means to show on several lines (thread stacks);
    as a log argument it is kept as it is."""

    __slots__ = ()


def _inert(arg: Any) -> Any:
    """A log argument as printable text when it may hold outside text (strings,
    exceptions); numbers and the like as they are, for `%d` and `%.3f`."""
    if isinstance(arg, Multiline):
        return arg
    if isinstance(arg, (str, BaseException)):
        return printable(arg)
    return arg


class InertArgs(logging.Filter):
    """Makes the arguments of every record one printable line each."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        try:
            if isinstance(args, tuple):
                record.args = tuple(_inert(arg) for arg in args)
            elif isinstance(args, Mapping):
                record.args = {key: _inert(arg) for key, arg in args.items()}
        except Exception:  # noqa: BLE001 - a record is written as it is, never dropped
            pass
        return True


class Redactor:
    """Replaces each secret with MASK; a few substring scans per record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms = set()
        for secret in secrets:
            if secret:
                # as written plainly or in a repr (%r, a dict of headers), each as it
                # stands in text or inside a JSON string (the json format)
                for form in (secret, repr(secret)[1:-1]):
                    forms.update({form, json.dumps(form, ensure_ascii=False)[1:-1]})
        # the longest first: a key inside a secret must not leave the secret's rest
        self.forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        return without_queries(text)  # a signed request's URL in a traceback


class SafeHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose output holds no credential and no forged line."""

    def __init__(self, stream: TextIO, redact: Redactor) -> None:
        super().__init__(stream)
        self.redact = redact
        self.addFilter(InertArgs())

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JournalFormatter(logging.Formatter):
    """`<priority>name: message`; continuation lines of tracebacks carry the same prefix."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{PRIORITIES.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (RFC 3339, UTC, microseconds), level, logger,
    message, thread, the FIELDS a record carries, and exc when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="microseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = printable(str(value))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def under_journald(stream: TextIO = sys.stderr) -> bool:
    """True when `$JOURNAL_STREAM` names this stream's device and inode."""
    value = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(part) for part in value.split(":"))
        stat = os.fstat(stream.fileno())
    except (ValueError, OSError):
        return False
    return (stat.st_dev, stat.st_ino) == (device, inode)


def formatter(fmt: str, stream: TextIO = sys.stderr) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter()
    return JournalFormatter() if under_journald(stream) else logging.Formatter(TEXT_FORMAT)


def configure(level: str, fmt: str = "text", stream: TextIO = sys.stderr,
              secrets: Iterable[str] = ()) -> None:
    """Send every log record to `stream` in the chosen format, `secrets` masked."""
    handler = SafeHandler(stream, Redactor(secrets))
    handler.setFormatter(formatter(fmt, stream))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    set_level(level)


def set_level(level: str) -> None:
    root = logging.getLogger()
    root.setLevel(level.upper())
    for name, floor in QUIET_LOGGERS.items():  # never below their floor, nor the root's
        logging.getLogger(name).setLevel(max(floor, root.level))


def thread_stacks() -> Multiline:
    """Every thread's current stack, for SIGUSR1 (finding a hung actor)."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    blocks = []
    for ident, frame in sys._current_frames().items():
        stack = "".join(traceback.format_stack(frame)).rstrip()
        blocks.append(f"thread {names.get(ident, '?')} ({ident}):\n{stack}")
    return Multiline("\n".join(blocks))
