"""SQLite persistence of the paper venue's book.

Rows are JSON text keyed by id. The venue keeps only open orders (and a few
recently finished ones) in memory; every order and trade is here, and lookups
of the rest read it through expression indexes on the JSON fields, so memory
does not grow with the book and older databases need no migration.

Each operation's changes are committed before the operation returns, by group
commit: an operation queues them under the venue's lock and waits for them once
the lock is free, and whichever waiter holds the connection writes everything
queued in one transaction. The venue's lock is then never held across a commit
(SQLite gives up the GIL in every call, and a lock held meanwhile made every
other request wait behind all the threads that took the GIL), and concurrent
operations share one commit. Lookups of the store (orders by client id,
listings, evicted orders) still read it under the venue's lock.

WAL with synchronous=NORMAL survives a process crash (the WAL is in the OS page
cache once COMMIT returns); only a power loss can drop the last transactions,
which is fine for a simulator and keeps a write in the tens of microseconds.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson


def _field(name: str) -> str:
    return f"json_extract(data, '$.{name}')"


_ACCOUNT, _TIMESTAMP, _SYMBOL = _field("account"), _field("timestamp"), _field("symbol")
_OPEN = f"{_field('status')} = 'open'"

# WITHOUT ROWID: a text key then needs no separate index, one page less per write.
# Index entries end with the rowid (the id), so (account, timestamp) orders as
# the venue's listings do: by timestamp, then id.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, data TEXT NOT NULL)"
    " WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, data TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS trades (id INTEGER PRIMARY KEY, data TEXT NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS orders_open ON orders (id) WHERE {_OPEN}",
    f"CREATE INDEX IF NOT EXISTS orders_by_client_id ON orders"
    f" ({_ACCOUNT}, {_field('clientOrderId')})",
    f"CREATE INDEX IF NOT EXISTS orders_by_time ON orders ({_ACCOUNT}, {_TIMESTAMP})",
    f"CREATE INDEX IF NOT EXISTS trades_by_order ON trades ({_field('orderId')})",
    f"CREATE INDEX IF NOT EXISTS trades_by_time ON trades ({_ACCOUNT}, {_TIMESTAMP})",
)
_MARKET_KEY = "market"
IN_MEMORY = ":memory:"
"""A store path for a venue that persists nothing."""


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _records(rows: Any) -> list[dict[str, Any]]:
    return [orjson.loads(data) for (data,) in rows]


@dataclass
class StoredBook:
    """What the venue keeps in memory, read back from the database at start-up."""

    market: dict[str, Any] | None = None
    accounts: dict[str, Any] = field(default_factory=dict)
    open_orders: list[dict[str, Any]] = field(default_factory=list)
    next_order_id: int = 1
    next_trade_id: int = 1


@dataclass
class PendingWrites:
    """Rows one operation changed; queued, and committed with the others queued."""

    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    trades: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    accounts: dict[str, Any] = field(default_factory=dict)
    market: dict[str, Any] | None = None

    def __bool__(self) -> bool:
        return bool(self.orders or self.trades or self.accounts or self.market is not None)


def _merged(batch: list[PendingWrites]) -> PendingWrites:
    """The writes of several operations as one, later rows replacing earlier ones."""
    if len(batch) == 1:
        return batch[0]
    merged = PendingWrites()
    for pending in batch:
        merged.orders.update(pending.orders)
        merged.trades.extend(pending.trades)
        merged.accounts.update(pending.accounts)
        merged.market = pending.market if pending.market is not None else merged.market
    return merged


class PaperStore:
    """One SQLite database holding one venue.

    `queue` is called under the venue's lock, so queued writes follow the operations'
    order; `sync` and the lookups may run in any thread. Lookups write what is queued
    first, so they see every row an operation changed."""

    def __init__(self, path: Path | str) -> None:
        # Autocommit mode: transactions are opened explicitly in _write().
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._conn_lock = threading.Lock()
        self._queue_lock = threading.Lock()  # held only to add to or take the queue
        self._queued: list[PendingWrites] = []
        self.queued = 0
        """Sequence number of the last writes queued (changed under the venue's lock)."""
        self._written = 0
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        # A checkpoint is where NORMAL fsyncs; checkpointing every ~16 MB instead
        # of every 4 MB makes that rarer, and the WAL is cut back after each one.
        self._conn.execute("PRAGMA wal_autocheckpoint=4000")
        self._conn.execute(f"PRAGMA journal_size_limit={32 * 1024 * 1024}")
        for statement in _SCHEMA:
            self._conn.execute(statement)

    def load(self) -> StoredBook:
        book = StoredBook()
        conn = self._conn  # at start-up: nothing else uses the store yet
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (_MARKET_KEY,)).fetchone()
        if row is not None:
            book.market = orjson.loads(row[0])
        for name, data in conn.execute("SELECT name, data FROM accounts"):
            book.accounts[name] = orjson.loads(data)
        book.open_orders = _records(
            conn.execute(f"SELECT data FROM orders WHERE {_OPEN} ORDER BY id"))
        # Ids are never reused, so they follow the highest.
        book.next_order_id = self._max_id("orders") + 1
        book.next_trade_id = self._max_id("trades") + 1
        return book

    def _max_id(self, table: str) -> int:
        return int(self._conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0])

    # -- lookups ---------------------------------------------------------------------

    def _select(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        """The rows of a query, after everything queued is written."""
        with self._conn_lock:
            self._write_queued()
            return self._conn.execute(sql, args).fetchall()

    def order(self, order_id: int) -> dict[str, Any] | None:
        rows = self._select("SELECT data FROM orders WHERE id = ?", (order_id,))
        return dict(orjson.loads(rows[0][0])) if rows else None

    def latest_order_id(self, account: str, client_order_id: str) -> int | None:
        """The newest order of the account that used this client order id."""
        rows = self._select(
            f"SELECT max(id) FROM orders WHERE {_ACCOUNT} = ? AND {_field('clientOrderId')} = ?",
            (account, client_order_id))
        return None if rows[0][0] is None else int(rows[0][0])

    def order_trades(self, order_id: int) -> list[dict[str, Any]]:
        return _records(self._select(
            f"SELECT data FROM trades WHERE {_field('orderId')} = ? ORDER BY id",
            (str(order_id),)))

    def all_orders(self) -> list[dict[str, Any]]:
        return _records(self._select("SELECT data FROM orders ORDER BY id"))

    def window(self, table: str, account: str, symbol: str | None, since: int | None,
               limit: int | None) -> list[dict[str, Any]]:
        """One account's orders or trades as ccxt pages them, oldest first: from `since`
        (inclusive) the first `limit`, else the last `limit` (see paper_rules.window)."""
        if limit is not None and limit <= 0:
            return []
        where: list[str] = [f"{_ACCOUNT} = ?"]
        args: list[Any] = [account]
        if symbol is not None:
            where.append(f"{_SYMBOL} = ?")
            args.append(symbol)
        if since is not None:
            where.append(f"{_TIMESTAMP} >= ?")
            args.append(since)  # an integer: SQLite ranks every number below text
        newest_first = limit is not None and since is None
        order = "DESC" if newest_first else "ASC"
        sql = (f"SELECT data FROM {table} WHERE {' AND '.join(where)}"
               f" ORDER BY {_TIMESTAMP} {order}, id {order}")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        records = _records(self._select(sql, args))
        return records[::-1] if newest_first else records

    def trades_from(self, account: str, symbol: str | None, from_id: int,
                    limit: int | None) -> list[dict[str, Any]]:
        """One account's trades from the trade id `from_id` on, ids ascending, the first
        `limit` (binance's myTrades with `fromId`)."""
        if limit is not None and limit <= 0:
            return []
        where, args = [f"{_ACCOUNT} = ?", "id >= ?"], [account, from_id]
        if symbol is not None:
            where.append(f"{_SYMBOL} = ?")
            args.append(symbol)
        # by the trade id itself: SQLite would otherwise pick trades_by_time for the
        # account and sort the account's whole history for every page, so reading every
        # page of a long history grew with its square
        sql = f"SELECT data FROM trades NOT INDEXED WHERE {' AND '.join(where)} ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return _records(self._select(sql, args))

    # -- writes --------------------------------------------------------------------------

    def queue(self, pending: PendingWrites) -> None:
        """Queue one operation's changes, to be committed together; `sync(self.queued)`
        waits until they are."""
        with self._queue_lock:
            self._queued.append(pending)
            self.queued += 1

    def sync(self, number: int) -> None:
        """Return once the writes queued up to `number` are committed. The first waiter
        writes everything queued so far while the others wait for the connection."""
        if self._written >= number:
            return
        with self._conn_lock:
            if self._written < number:
                self._write_queued()

    def _write_queued(self) -> None:
        """Commit the queue in one transaction; the caller holds the connection's lock.
        If that fails, the writes stay queued for the next try and the caller gets the
        error (until a write succeeds, every operation that waits for one fails)."""
        with self._queue_lock:
            batch, self._queued = self._queued, []
            last = self.queued
        if not batch:
            return
        try:
            self._write(_merged(batch))
        except BaseException:
            with self._queue_lock:
                self._queued[:0] = batch
            raise
        self._written = last

    def _write(self, pending: PendingWrites) -> None:
        conn = self._conn
        conn.execute("BEGIN")
        try:
            if pending.orders:
                conn.executemany(
                    "INSERT OR REPLACE INTO orders (id, data) VALUES (?, ?)",
                    [(oid, _dumps(rec)) for oid, rec in pending.orders.items()],
                )
            if pending.trades:
                conn.executemany(
                    "INSERT INTO trades (id, data) VALUES (?, ?)",
                    [(tid, _dumps(rec)) for tid, rec in pending.trades],
                )
            if pending.accounts:
                conn.executemany(
                    "INSERT OR REPLACE INTO accounts (name, data) VALUES (?, ?)",
                    [(name, _dumps(rec)) for name, rec in pending.accounts.items()],
                )
            if pending.market is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    (_MARKET_KEY, _dumps(pending.market)),
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        """Write what is queued and close."""
        with self._conn_lock:
            try:
                self._write_queued()
            finally:
                self._conn.close()
