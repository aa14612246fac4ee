"""Many rows written by one SQLite statement.

Python's sqlite3 gives up the GIL around every row that `executemany` steps
through. In a process whose other threads are busy, each of those hand-offs can
wait behind another thread's Python work before the writer gets the GIL back, so
a grouped commit of 64 rows paid for 64 waits. One multi-row `VALUES` statement
steps once per chunk.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

MAX_ROWS = 128
"""Rows per statement: well under SQLite's bound variables limit for our tables,
and few enough statement texts for the connection's statement cache."""
STATEMENT_CACHE = 2 * MAX_ROWS + 64
"""`cached_statements` for a connection using RowWriters: one text per row count."""


class RowWriter:
    """`INSERT INTO table (columns) VALUES (...), (...) [tail]` for any number of rows."""

    def __init__(self, head: str, width: int, tail: str = "") -> None:
        """head: `INSERT INTO t (a, b)`; width: values per row; tail: e.g. `ON CONFLICT`."""
        self._head = head
        self._row = "(" + ", ".join("?" * width) + ")"
        self._tail = tail
        self._texts: dict[int, str] = {}

    def write(self, db: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
        for start in range(0, len(rows), MAX_ROWS):
            chunk = rows[start:start + MAX_ROWS]
            db.execute(self._text(len(chunk)), [value for row in chunk for value in row])

    def _text(self, count: int) -> str:
        text = self._texts.get(count)
        if text is None:
            values = ", ".join([self._row] * count)
            text = self._texts[count] = f"{self._head} VALUES {values} {self._tail}"
        return text
