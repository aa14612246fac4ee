"""The durable write-ahead ledger of orders (SQLite, WAL; FULL or NORMAL per commit,
through a connection kept at each).

Writes are staged and committed in groups: `stage` remembers the newest state of
an order, `commit` writes everything staged in one transaction. Callers reply to
clients only after `commit` returned.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from actors.exchange.messages import TradeView
from actors.ledger.sqlite_rows import MAX_ROWS, STATEMENT_CACHE, RowWriter
from actors.orders import Order, decimal_text
from protocol.codec import format_decimal
from protocol.messages import (
    TERMINAL_STATUSES,
    ListArgs,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    Vocabulary,
    member,
)

COLUMNS = (
    "client_order_id", "order_id", "exchange", "symbol", "side", "type", "amount", "price",
    "time_in_force", "params", "status", "filled", "average_price", "fee_currency", "fee_cost",
    "created_at", "updated_at", "attempts", "last_error", "trail", "signed_at",
)
_TERMINAL_SQL = ", ".join(f"'{s}'" for s in sorted(TERMINAL_STATUSES))
FILLS_KEY = ("exchange", "client_order_id", "trade_id")
"""A fill is one trade of one order. A trade id alone names no trade: binance numbers the
trades of each symbol on their own, so two symbols' trades share ids. The key is also
the fills' only index: every read is of an exchange's orders' fills."""
FILLS_TABLE = f"""CREATE TABLE IF NOT EXISTS {{name}} (
    exchange TEXT NOT NULL, trade_id TEXT NOT NULL, client_order_id TEXT NOT NULL,
    order_id TEXT NOT NULL, amount TEXT NOT NULL, price TEXT NOT NULL, fee_cost TEXT NOT NULL,
    fee_currency TEXT, timestamp INTEGER NOT NULL,
    PRIMARY KEY ({", ".join(FILLS_KEY)})
);"""
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS orders (
    row INTEGER PRIMARY KEY,
    client_order_id TEXT NOT NULL UNIQUE,
    order_id TEXT, exchange TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
    type TEXT NOT NULL, amount TEXT NOT NULL, price TEXT, time_in_force TEXT,
    params TEXT NOT NULL, status TEXT NOT NULL, filled TEXT NOT NULL, average_price TEXT,
    fee_currency TEXT, fee_cost TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    attempts INTEGER NOT NULL, last_error TEXT, trail TEXT NOT NULL, signed_at REAL
);
DROP INDEX IF EXISTS orders_by_exchange_id;
CREATE INDEX IF NOT EXISTS orders_by_order_id ON orders (order_id);
CREATE INDEX IF NOT EXISTS orders_live ON orders (status)
    WHERE status NOT IN ({_TERMINAL_SQL});
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
{FILLS_TABLE.format(name="fills")}
DROP INDEX IF EXISTS fills_by_order;
"""
MIGRATIONS = (("signed_at", "ALTER TABLE orders ADD COLUMN signed_at REAL"),)
"""(column, statement adding it) for columns newer than the first ledgers: an existing
ledger gets them at open, its rows with NULL (unknown)."""
FILL_COLUMNS = ("exchange", "trade_id", "client_order_id", "order_id", "amount", "price",
                "fee_cost", "fee_currency", "timestamp")
# An order's trade is counted once; a later record of it may only correct its fee.
_FILLS = RowWriter(
    f"INSERT INTO fills ({', '.join(FILL_COLUMNS)})", len(FILL_COLUMNS),
    f"ON CONFLICT({', '.join(FILLS_KEY)}) DO UPDATE SET fee_cost = excluded.fee_cost,"
    " fee_currency = excluded.fee_currency")
_SELECT = f"SELECT row, {', '.join(COLUMNS)} FROM orders"
_ORDERS = RowWriter(
    f"INSERT INTO orders ({', '.join(COLUMNS)})", len(COLUMNS),
    "ON CONFLICT(client_order_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[1:]))
_META = RowWriter("INSERT INTO meta (key, value)", 2,
                  "ON CONFLICT(key) DO UPDATE SET value = excluded.value")


def _json(value: Any, sort_keys: bool = False) -> str:
    # orjson: the JSON columns were a fifth of a commit's CPU with the json module
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0).decode()
    except TypeError:  # what orjson refuses and json takes (integers beyond 64 bits)
        return json.dumps(value, sort_keys=sort_keys)


def _to_row(order: Order) -> tuple[Any, ...]:
    # the words as plain str: sqlite3 binds a str subclass only after looking for an
    # adapter, which costs more than `.value` (the column holds the same TEXT either way)
    tif = order.time_in_force
    return (
        order.client_order_id, order.order_id, order.exchange, order.symbol, order.side.value,
        order.type.value, decimal_text(order.amount), decimal_text(order.price),
        None if tif is None else tif.value, _json(order.params, sort_keys=True),
        order.status.value, decimal_text(order.filled),
        decimal_text(order.average_price), order.fee_currency, decimal_text(order.fee_cost),
        order.created_at, order.updated_at, order.attempts,
        None if order.last_error is None else _json(order.last_error),
        _json(order.trail), order.signed_at,
    )


def fill_row(exchange: str, client_order_id: str, trade: TradeView) -> tuple[Any, ...]:
    return (exchange, trade.trade_id, client_order_id, trade.order_id,
            format_decimal(trade.amount), format_decimal(trade.price),
            format_decimal(trade.fee_cost), trade.fee_currency, trade.timestamp)


def trade_from_row(row: tuple[Any, ...]) -> TradeView:
    """A fills row (FILL_COLUMNS order, from trade_id on) as a TradeView."""
    trade_id, cid, order_id, amount, price, fee_cost, fee_currency, timestamp = row
    return TradeView(trade_id, order_id, cid, Decimal(amount), Decimal(price),
                     Decimal(fee_cost), fee_currency, int(timestamp))


def _from_row(row: tuple[Any, ...]) -> Order:
    (_, cid, order_id, exchange, symbol, side, type_, amount, price, tif, params, status,
     filled, average, fee_currency, fee_cost, created, updated, attempts, last_error,
     trail, signed_at) = row
    return Order(
        client_order_id=cid, order_id=order_id, exchange=exchange, symbol=symbol,
        side=_word(Side, side), type=_word(OrderType, type_), amount=Decimal(amount),
        price=None if price is None else Decimal(price),
        time_in_force=None if tif is None else _word(TimeInForce, tif),
        params=orjson.loads(params), status=_word(OrderStatus, status), filled=Decimal(filled),
        average_price=None if average is None else Decimal(average),
        fee_currency=fee_currency, fee_cost=None if fee_cost is None else Decimal(fee_cost),
        created_at=created, updated_at=updated, attempts=attempts,
        last_error=None if last_error is None else orjson.loads(last_error),
        trail=orjson.loads(trail), signed_at=signed_at,
    )


def _word(kind: type[Vocabulary], text: str) -> Vocabulary:
    """A column's word as the member it names, once per row read; ValueError for a
    word the ledger should never hold."""
    found = member(kind, text)
    if found is None:
        raise ValueError(f"the ledger holds {text!r}, not a valid {kind.__name__}")
    return found


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                           cached_statements=STATEMENT_CACHE)


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taken at once (IMMEDIATE), committed, or rolled back on any
    error: SQLite may have rolled back already (a full disk does), and the statement's
    own error is the one to report."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            if db.in_transaction:
                db.execute("ROLLBACK")
        raise


def storage_failure(exc: BaseException) -> bool:
    """Whether a commit failed because of the disk or the file (full, I/O error, read-only,
    locked, corrupt), not because of what was written: worth retrying as it is."""
    return isinstance(exc, sqlite3.OperationalError) or type(exc) is sqlite3.DatabaseError


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at `path`; None when there is none."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def meta_prefixed(db: sqlite3.Connection, prefix: str) -> dict[str, str]:
    """Every meta value of `db` whose key starts with `prefix`, by the rest of the key."""
    rows = db.execute("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ?",
                      (len(prefix), prefix))
    return {str(key)[len(prefix):]: str(value) for key, value in rows}


class Ledger:
    """Orders on disk. Used from one thread only (the OrderActor's)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = _connect(path)  # reads, and the commits that wait for the disk
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._migrate()
        # The commits that need not wait go through a connection of their own, kept at
        # NORMAL: switching one connection between FULL and NORMAL took a statement at
        # nearly every commit, a GIL hand-off the replies waiting for it waited for too.
        self._unsynced = _connect(path)
        self._unsynced.execute("PRAGMA synchronous=NORMAL")
        self._identity = file_identity(path)
        self._staged: dict[str, Order] = {}
        self._meta: dict[str, str] = {}
        self._fills: list[tuple[Any, ...]] = []

    def _migrate(self) -> None:
        present = {row[1] for row in self._db.execute("PRAGMA table_info(orders)")}
        for column, statement in MIGRATIONS:
            if column not in present:
                self._db.execute(statement)
        key = [row[1] for row in sorted(
            (row for row in self._db.execute("PRAGMA table_info(fills)") if row[5]),
            key=lambda row: row[5])]
        if tuple(key) != FILLS_KEY:  # the first ledgers keyed fills by trade id alone
            self._rekey_fills()

    def _rekey_fills(self) -> None:
        columns = ", ".join(FILL_COLUMNS)
        db = self._db
        with transaction(db):
            db.execute(FILLS_TABLE.format(name="fills_rekeyed"))
            db.execute(f"INSERT INTO fills_rekeyed ({columns}) SELECT {columns} FROM fills")
            db.execute("DROP TABLE fills")
            db.execute("ALTER TABLE fills_rekeyed RENAME TO fills")

    def close(self) -> None:
        self._unsynced.close()
        self._db.close()

    def replaced(self) -> bool:
        """Whether the file at the ledger's path is no longer the one open here (removed,
        or replaced by another): what is written then goes where no restart finds it."""
        return file_identity(self.path) != self._identity

    def copy_to(self, path: Path) -> None:
        """A consistent copy of the open ledger, committed writes only, at `path`."""
        target = sqlite3.connect(path)
        try:
            self._db.backup(target)
        finally:
            target.close()

    def unstage(self, client_order_id: str) -> None:
        """Forget the staged state of an order (one never committed, being dropped)."""
        self._staged.pop(client_order_id, None)

    def stage(self, order: Order) -> None:
        """Remember the order's current state for the next commit."""
        self._staged[order.client_order_id] = order

    def stage_meta(self, key: str, value: str) -> None:
        self._meta[key] = value

    def stage_fill(self, exchange: str, client_order_id: str, trade: TradeView) -> None:
        """Remember a fill of an order for the next commit."""
        self._fills.append(fill_row(exchange, client_order_id, trade))

    def fills_of(self, exchange: str, client_order_id: str) -> dict[str, TradeView]:
        """The fills counted for an order, by trade id (committed ones)."""
        rows = self._db.execute(
            f"SELECT {', '.join(FILL_COLUMNS[1:])} FROM fills "
            "WHERE client_order_id = ? AND exchange = ?", (client_order_id, exchange)).fetchall()
        return {row[0]: trade_from_row(row) for row in rows}

    @property
    def dirty(self) -> bool:
        return bool(self._staged or self._meta or self._fills)

    def commit(self, sync: bool = True) -> int:
        """Write everything staged in one transaction; returns the number of orders.
        sync: wait until it is on disk (fsync); else it survives a crash of the
        process but a power loss may take it back."""
        if not self.dirty:
            return 0
        rows = [_to_row(order) for order in self._staged.values()]
        db = self._db if sync else self._unsynced
        writes = [(writer, staged) for writer, staged in (
            (_ORDERS, rows), (_META, list(self._meta.items())), (_FILLS, self._fills))
            if staged]
        if len(writes) == 1 and len(writes[0][1]) <= MAX_ROWS:
            # one statement is a transaction of its own: two GIL hand-offs fewer
            writes[0][0].write(db, writes[0][1])
        else:
            with transaction(db):
                for writer, staged in writes:
                    writer.write(db, staged)
        self._staged.clear()
        self._meta.clear()
        self._fills.clear()
        return len(rows)

    def get(self, client_order_id: str) -> Order | None:
        staged = self._staged.get(client_order_id)
        if staged is not None:
            return staged
        row = self._db.execute(
            f"{_SELECT} WHERE client_order_id = ?", (client_order_id,)).fetchone()
        return None if row is None else _from_row(row)

    def by_order_id(self, order_id: str, most: int = 2) -> list[Order]:
        """Up to `most` orders the exchange knows by `order_id`, as staged or else as
        written. Exchanges number orders each their own way (binance per market), so one
        id can name orders on two exchanges or two markets of one."""
        found = {o.client_order_id: o for o in self._staged.values() if o.order_id == order_id}
        rows = self._db.execute(f"{_SELECT} WHERE order_id = ? ORDER BY row DESC LIMIT ?",
                                (order_id, most + len(found)))
        for row in rows:
            order = _from_row(row)
            found.setdefault(order.client_order_id, order)
        return list(found.values())[:most]

    def live(self) -> list[Order]:
        """Every order not yet in a terminal status."""
        rows = self._db.execute(
            f"{_SELECT} WHERE status NOT IN ({_TERMINAL_SQL}) ORDER BY row").fetchall()
        return [_from_row(row) for row in rows]

    def meta(self, key: str) -> str | None:
        if key in self._meta:
            return self._meta[key]
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def next_row(self) -> int:
        """The ledger row of the next new order (orders are never deleted: rows grow)."""
        return int(self._db.execute("SELECT coalesce(max(row), 0) + 1 FROM orders")
                   .fetchone()[0])

    def meta_prefixed(self, prefix: str) -> dict[str, str]:
        """Every meta value whose key starts with `prefix`, by the rest of the key (the
        values staged for the next commit too)."""
        found = meta_prefixed(self._db, prefix)
        found.update((k[len(prefix):], v) for k, v in self._meta.items() if k.startswith(prefix))
        return found

    def page(self, args: ListArgs) -> tuple[list[Order], str | None]:
        """One page of orders in creation order, and the cursor of the next."""
        where: list[str] = ["row > ?"]
        params: list[Any] = [int(args.after or 0)]
        if args.statuses is not None:
            where.append(f"status IN ({', '.join('?' for _ in args.statuses)})")
            params.extend(args.statuses)
        for column in ("symbol", "exchange"):
            value = getattr(args, column)
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        rows = self._db.execute(
            f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY row LIMIT ?",
            (*params, args.limit + 1),
        ).fetchall()
        more = len(rows) > args.limit
        rows = rows[: args.limit]
        cursor = str(rows[-1][0]) if more else None
        return [_from_row(row) for row in rows], cursor

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM orders").fetchone()[0])
