"""Where the daemon's CPU goes: a summary of py-spy collapsed stacks.

`python -m bench.profile_summary FILE [--orders N] [--rate HZ]` prints samples per
thread and per category; with the number of orders the profiled run served, the
CPU microseconds each order cost in each category. py-spy leaves out idle
threads, and a thread waiting for the GIL is idle, so samples are on-CPU time.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

# (category, frame substrings): the first category any frame of a stack matches wins,
# so the specific ones come first
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    ("venue: sqlite write per order", ("PaperStore._write",)),
    ("venue: book, rules, to_ccxt", ("paper_", "paper.py")),
    ("ledger: commit (sqlite FULL)", ("Ledger.commit",)),
    ("ledger: lookups", ("Ledger.",)),
    ("events: encode + publish", ("encode_event", "ZmqPublisher")),
    ("order to_wire", ("to_wire",)),
    ("frontend: decode json", ("decode_request",)),
    ("frontend: validate", ("parse_args",)),
    ("frontend: encode reply", ("encode_result", "encode_error")),
    ("zmq recv/send", ("recv_multipart", "send_multipart", "Socket.send", "Socket.recv")),
    ("zmq poll", ("Poller.poll",)),
    ("wakeup pipe", ("Wakeup.",)),
    ("exchange report mapping", ("view_of",)),
    # messaging before logic: a tell made by a handler is the cost of the hand-off
    ("pykka tell / inbox", ("ActorRef.tell", "Queue.put", "Queue.get", "Condition.notify")),
    ("order actor logic", ("OrderActor.", "OrderCore.", "Admission.", "ClientCommands.",
                           "Outcomes.", "Timers.", "StreamFollower.", "HeldEvents.",
                           "Repairs.")),
    ("exchange link: breaker, limiter, metrics", ("Caller.",)),
    ("exchange worker logic", ("ExchangeActor.",)),
    ("pykka actor loop", ("pykka",)),
    ("ticker", ("Daemon._tick",)),
]
THREAD = re.compile(r"thread \(\d+\): ([^;]*?)(-\d+)?;")


WAITS = ("Condition.wait", "Event.wait", "time.sleep", "Queue.get (queue.py")


def categorize(stack: str) -> str:
    leaf = stack.rsplit(";", 1)[-1]
    if any(wait in leaf for wait in WAITS):
        return "waiting (idle)"
    for category, needles in CATEGORIES:
        if any(needle in stack for needle in needles):
            return category
    return "other"


def summarize(path: Path) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    threads: Counter[str] = Counter()
    cells: Counter[tuple[str, str]] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        match = THREAD.match(stack)
        thread = match.group(1) if match else "?"
        threads[thread] += int(count)
        cells[(thread, categorize(stack))] += int(count)
    return threads, cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--orders", type=int, help="orders served while sampling")
    parser.add_argument("--rate", type=float, default=200.0, help="samples per second")
    args = parser.parse_args(argv)
    threads, cells = summarize(args.file)
    total = sum(threads.values())
    per_order = (1e6 / args.rate / args.orders) if args.orders else None
    print(f"{total} samples = {total / args.rate:.2f} s of CPU")
    for thread, samples in threads.most_common():
        cost = f"  {samples * per_order:7.1f} us/order" if per_order else ""
        print(f"{thread:<24} {samples:6d} {100 * samples / total:5.1f}%{cost}")
        for (t, category), n in cells.most_common():
            if t == thread:
                cost = f"  {n * per_order:7.1f} us/order" if per_order else ""
                print(f"    {category:<34} {n:6d} {100 * n / total:5.1f}%{cost}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
