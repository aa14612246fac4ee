"""The raw ceiling: the least a durable ZeroMQ order server has to do.

A ROUTER socket; each request is committed to SQLite (WAL, synchronous=FULL)
before its reply. Commits are grouped: everything waiting on the socket is read,
inserted in one transaction, and only then answered. No validation, no actors,
no exchange: what orderd costs beyond this is the price of its design.

Run as `python -m bench.raw_ceiling --endpoint tcp://127.0.0.1:PORT --db FILE`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import zmq

BATCH_MAX = 4096


def open_db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS requests (row INTEGER PRIMARY KEY, body BLOB)")
    return db


def serve(endpoint: str, db_path: Path) -> None:
    context = zmq.Context()
    socket = context.socket(zmq.ROUTER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.bind(endpoint)
    db = open_db(db_path)
    stopping = False

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    while not stopping:
        if not socket.poll(200):
            continue
        batch: list[list[bytes]] = []
        while len(batch) < BATCH_MAX:
            try:
                batch.append(socket.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO requests (body) VALUES (?)", [(f[-1],) for f in batch])
        db.execute("COMMIT")
        for frames in batch:
            request_id = json.loads(frames[-1]).get("id")
            reply = json.dumps({"v": 1, "id": request_id, "ok": True, "result": {}})
            socket.send_multipart([*frames[:-1], reply.encode()])
    socket.close()
    db.close()
    context.term()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--db", type=Path, required=True)
    args = parser.parse_args(argv)
    serve(args.endpoint, args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
