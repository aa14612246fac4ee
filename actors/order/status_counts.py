"""`stats`' count of the ledger's orders by status, off OrderActor's thread.

The count reads every order the ledger holds (a scan: no index covers terminal
orders), a good part of a second with months of orders, and OrderActor takes and
records every order: on its thread each `stats` would stall order flow that long. A
reader connection of its own counts instead (WAL lets it read beside the writer, and
SQLite lets other threads run while it reads).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from actors.ledger.reader import LedgerReader

log = logging.getLogger(__name__)

Counted = Callable[[dict[str, int] | None], None]
"""Gets the counts, or None when the ledger could not be read."""


class StatusCounts:
    """Counts on a thread of their own. Requests that arrive while a count runs share
    the next one, never the running one: a count must see every order committed before
    it was asked for. `ask` is called from OrderActor's thread."""

    def __init__(self, ledger_path: Path) -> None:
        self._path = ledger_path
        self._lock = threading.Lock()
        self._waiting: list[Counted] = []
        self._running = False

    def ask(self, done: Counted) -> None:
        with self._lock:
            self._waiting.append(done)
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._count_while_asked, name="ledger-counts",
                         daemon=True).start()

    def _count_while_asked(self) -> None:
        while True:
            with self._lock:
                asked, self._waiting = self._waiting, []
                if not asked:
                    self._running = False
                    return
            counts = self._count()
            for done in asked:
                try:
                    done(counts)
                except Exception:  # one reply that fails must not end the counts
                    log.exception("a stats reply failed")

    def _count(self) -> dict[str, int] | None:
        try:
            reader = LedgerReader(self._path)
            try:
                return reader.counts_by_status()
            finally:
                reader.close()
        except sqlite3.Error as exc:
            log.error("orders by status not counted: %s", exc)
            return None
