"""The soak's clients: submits, cancels and statuses with client order ids.

Each client is one thread with its own DEALER socket, one request at a time, and
behaves as a client should: a retryable error is followed by the same request after
`retry_after_s`, and a submit that got no answer is sent again with the same client
order id (idempotency). Every request is timed; one without a reply by its deadline
is kept for the summary to judge (unanswered, or cut by a kill of the daemon).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from protocol.client import NoAnswer, OrderdClient

RETRY_CAP_S = 1.0
"""The longest pause before re-sending after a retryable error."""
MAX_RESTING = 8
"""Resting orders one client keeps; beyond that it cancels one instead of placing."""
RESTING = ("BTC/USD", "buy", "0.01", "1000")
"""Far below the market: it rests until cancelled, or until the chaos moves the price."""


@dataclass(frozen=True)
class Silent:
    """A request that got no reply by its deadline."""

    cmd: str
    sent: float
    deadline: float


@dataclass
class Tally:
    """What every client saw, shared and locked."""

    requests: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    """"ok" or the error code of each answered request."""
    refused: list[tuple[str, str]] = field(default_factory=list)
    """(client order id, code) of submits answered with a non-retryable error."""
    silent: list[Silent] = field(default_factory=list)
    submitted: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    """Client order ids whose submit was answered ok: recorded, durably."""
    late: int = 0
    """Replies that came after their request's deadline (dropped)."""
    slowest_s: float = 0.0
    crashed: list[str] = field(default_factory=list)
    """Client threads that ended with an exception (the soak's own failure)."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answered(self, reply: dict[str, Any], took_s: float) -> None:
        with self.lock:
            self.requests += 1
            self.answers["ok" if reply.get("ok") else reply["error"]["code"]] += 1
            self.slowest_s = max(self.slowest_s, took_s)

    def unanswered(self, silent: Silent) -> None:
        with self.lock:
            self.requests += 1
            self.silent.append(silent)


@dataclass
class Client:
    """One client thread of the load."""

    index: int
    endpoint: str
    tally: Tally
    stop: threading.Event
    seed: int
    pace_s: float
    """Mean pause between operations."""
    reply_within_s: float
    """A request's deadline: the daemon's accept_timeout_s plus a margin."""
    resting: list[str] = field(default_factory=list)
    mine: list[str] = field(default_factory=list)
    _n: int = 0

    def run(self) -> None:
        rng = random.Random(f"{self.seed}-{self.index}")
        try:
            with OrderdClient(self.endpoint) as client:
                while not self.stop.is_set():
                    self.step(client, rng)
                    self.stop.wait(rng.uniform(0, 2 * self.pace_s))
        except Exception as exc:  # a bug of the soak itself: the run does not count
            with self.tally.lock:
                self.tally.crashed.append(f"client {self.index}: {type(exc).__name__}: {exc}")
            raise

    def step(self, client: OrderdClient, rng: random.Random) -> None:
        pick = rng.random()
        if pick < 0.15 and self.mine:
            cid = rng.choice(self.mine)
            self.request(client, "status", {"client_order_id": cid})
        elif (pick < 0.3 and self.resting) or len(self.resting) >= MAX_RESTING:
            cid = self.resting.pop(rng.randrange(len(self.resting)))
            self.until_final(client, "cancel", {"client_order_id": cid}, rng)
        else:
            self.submit(client, rng, resting=pick < 0.45)

    def submit(self, client: OrderdClient, rng: random.Random, *, resting: bool) -> None:
        self._n += 1
        cid = f"sk{self.index}-{self._n}"
        if resting:
            symbol, side, amount, price = RESTING
            order = {"symbol": symbol, "side": side, "type": "limit", "amount": amount,
                     "price": price}
        else:  # buys and sells in turn, so the account lasts
            order = {"symbol": "SOL/USD", "side": "buy" if self._n % 2 else "sell",
                     "type": "market", "amount": "0.1"}
        args = {"order": {**order, "client_order_id": cid},
                "wait": rng.choice(("accepted", "durable"))}
        with self.tally.lock:
            self.tally.submitted.add(cid)
        self.mine.append(cid)
        reply = self.until_final(client, "submit", args, rng)
        if reply is None:
            return
        if reply["ok"]:
            with self.tally.lock:
                self.tally.acked.add(cid)
            if resting:
                self.resting.append(cid)
        else:
            with self.tally.lock:
                self.tally.refused.append((cid, reply["error"]["code"]))

    def until_final(self, client: OrderdClient, cmd: str, args: dict[str, Any],
                    rng: random.Random) -> dict[str, Any] | None:
        """Send until answered ok or with an error not worth retrying (None: the run
        ended first). No answer is answered by sending the same request again."""
        while not self.stop.is_set():
            reply = self.request(client, cmd, args)
            if reply is None:
                continue
            error = reply.get("error")
            if reply["ok"] or not error or not error.get("retryable"):
                return reply
            wait = min(float(error.get("retry_after_s") or 0.1), RETRY_CAP_S)
            self.stop.wait(rng.uniform(wait / 2, wait))
        return None

    def request(self, client: OrderdClient, cmd: str,
                args: dict[str, Any]) -> dict[str, Any] | None:
        """The reply to one request, or None when none came by its deadline."""
        sent = time.monotonic()
        request_id = client.send(cmd, args)
        deadline = sent + self.reply_within_s
        while True:
            try:
                reply = client.receive(timeout_s=max(0.0, deadline - time.monotonic()))
            except NoAnswer:
                self.tally.unanswered(Silent(cmd, sent, deadline))
                return None
            if reply.get("id") == request_id:
                self.tally.answered(reply, time.monotonic() - sent)
                return reply
            with self.tally.lock:
                self.tally.late += 1


def start_clients(count: int, endpoint: str, tally: Tally, stop: threading.Event, seed: int,
                  pace_s: float, reply_within_s: float) -> list[threading.Thread]:
    threads = []
    for index in range(count):
        client = Client(index, endpoint, tally, stop, seed, pace_s, reply_within_s)
        thread = threading.Thread(target=client.run, name=f"soak-client-{index}", daemon=True)
        thread.start()
        threads.append(thread)
    return threads
