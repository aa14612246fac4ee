"""kill -9 at random moments: nothing acknowledged is lost, nothing is placed twice.

The venue (binance dialect, ambiguous creates on) and the daemon run as separate
processes. A client streams orders; the daemon is killed with SIGKILL after a
seeded random number of acknowledgements, then restarted, ten times over.
"""

from __future__ import annotations

import random
import signal
from collections import Counter
from pathlib import Path

from protocol.client import NoAnswer
from tests.helpers import KEY, SECRET, DaemonProcess, VenueProcess, market_buy

ROUNDS = 10
ORDERS_PER_ROUND = 40
CONFIG = """
[resolution]
interval_s = 0.1
window_s = 0.2
absent_needed = 2
[retry]
initial_delay = 0.05
max_delay = 0.2
[circuit_breaker]
cool_down_seconds = 1.0
"""
# A short recvWindow: a create left unresolved by a kill is proven absent only after its
# signed window (plus skew and timeout) has passed, which each restart waits for.
# Why a short cool-down: recovery before `ready` re-sends the orders proven absent, and
# a fifth of those creates get an ambiguous answer. Enough of them open the circuit
# (more than 10 a minute), and lookups then wait for the cool-down: the default 30 s
# is the ready timeout. The breaker stays on; an opening now costs a second.


def test_kill_9_loses_nothing_acknowledged_and_places_nothing_twice(tmp_path: Path) -> None:
    rng = random.Random(20261126)
    venue = VenueProcess(tmp_path / "venue", "--ambiguous-rate", "0.2", "--seed", "11")
    exchanges = (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
                 f'api_key = "{KEY}"\nsecret = "{SECRET}"\ntimeout_ms = 2000\n'
                 "rate_limit_per_s = 2000.0\nrecv_window_ms = 1000\n")
    (tmp_path / "orderd").mkdir()
    daemon = DaemonProcess(tmp_path / "orderd", extra=CONFIG, exchanges=exchanges)
    acknowledged: set[str] = set()
    try:
        for round_no in range(ROUNDS):
            daemon.start()
            client = daemon.client()
            ids = {}
            for i in range(ORDERS_PER_ROUND):
                cid = f"k{round_no}-{i}"
                wait = "durable" if i % 2 else "accepted"
                ids[client.send("submit", {"order": market_buy("0.1", "SOL/USD",
                                                               client_order_id=cid),
                                           "wait": wait})] = cid
            kill_after = rng.randint(1, ORDERS_PER_ROUND)
            for _ in range(kill_after):
                try:
                    reply = client.receive(timeout_s=10)
                except NoAnswer:
                    break
                if reply["ok"]:
                    acknowledged.add(ids[reply["id"]])
            daemon.stop(signal.SIGKILL)

        daemon.start()  # ready only once every order left unresolved is resolved
        client = daemon.client()
        for cid in sorted(acknowledged):
            order = client.status(client_order_id=cid)
            assert order["status"] not in ("pending_submit", "unknown"), order
        unresolved = client.list(status=["pending_submit", "unknown"], limit=1000)
        assert unresolved["orders"] == []
        counts = Counter(o["clientOrderId"] for o in venue.orders())
        assert [cid for cid, n in counts.items() if n > 1] == []
        assert acknowledged <= set(counts), "every acknowledged order reached the venue"
    finally:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.stop(signal.SIGKILL)
        venue.stop()
