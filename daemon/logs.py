"""Log formats for stderr: readable text, journald-friendly text, or JSON lines.

Under systemd (`$JOURNAL_STREAM` names our stderr) the text format drops the
timestamp, which the journal records itself, and prefixes each line with its
syslog priority (`<3>` ... `<7>`), which journald reads as the entry's level.
Logging is configured here and only from the entry point.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import traceback
from typing import Any, TextIO

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(name)s: %(message)s"
PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
              logging.CRITICAL: 2}


class JournalFormatter(logging.Formatter):
    """`<priority>name: message`; continuation lines of tracebacks carry the same prefix."""

    def __init__(self) -> None:
        super().__init__(JOURNAL_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{PRIORITIES.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, and exc when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "thread": record.threadName,
        }
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


def configure(level: str, fmt: str = "text", stream: TextIO = sys.stderr) -> None:
    """Send every log record to `stream` in the chosen format."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(fmt, stream))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    set_level(level)


def set_level(level: str) -> None:
    logging.getLogger().setLevel(level.upper())


def thread_stacks() -> str:
    """Every thread's current stack, for SIGUSR1 (finding a hung actor)."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    blocks = []
    for ident, frame in sys._current_frames().items():
        stack = "".join(traceback.format_stack(frame)).rstrip()
        blocks.append(f"thread {names.get(ident, '?')} ({ident}):\n{stack}")
    return "\n".join(blocks)
