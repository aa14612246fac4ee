"""Load generation: one DEALER client keeping N requests in flight.

The machine has two cores, so the load generator is a single process with a
single socket: every extra client process would take CPU from the server it
measures. Latency is the time from `send` to the reply with the same id.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protocol.client import OrderdClient

Request = tuple[str, dict[str, Any]]
"""A command and its args."""
REFUSED = "error:rate_limited"
"""The outcome of a request refused for backpressure (try again after retry_after_s)."""


@dataclass
class RunResult:
    """What one driven run saw."""

    elapsed_s: float = 0.0
    sent_at_s: list[float] = field(default_factory=list)
    """When each request went out, in seconds from the run's start."""
    latencies_s: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    by_outcome: dict[str, list[float]] = field(default_factory=dict)
    burst: tuple[int, float] | None = None
    """Orders accepted before the first refusal, and the seconds until it (if any)."""

    @property
    def sent(self) -> int:
        return len(self.sent_at_s)

    @property
    def replies(self) -> int:
        return len(self.latencies_s)

    @property
    def accepted(self) -> int:
        """Replies that took the order (a refusal such as rate_limited is not counted)."""
        return sum(n for outcome, n in self.outcomes.items() if outcome.startswith("ok"))

    @property
    def rate(self) -> float:
        """Accepted orders per second."""
        return self.accepted / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_ms(self, q: float, outcome: str | None = None) -> float | None:
        values = self.latencies_s if outcome is None else self.by_outcome.get(outcome, [])
        return percentile_ms(values, q)


def percentile_ms(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of seconds, in milliseconds."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1] * 1000


def orders_per_burst(sent_at_s: list[float], gap_s: float = 0.001) -> int:
    """How many requests went out together, seen from a request: the median, over
    requests, of the size of the burst each went out in (a burst ends at a pause of
    more than `gap_s`). A steady stream of 950 a second, sent at random, gives 4."""
    if not sent_at_s:
        return 0
    sizes: list[int] = []
    size = 1
    for before, after in itertools.pairwise(sent_at_s):
        if after - before > gap_s:
            sizes.append(size)
            size = 0
        size += 1
    sizes.append(size)
    by_request = sorted(size for size in sizes for _ in range(size))
    return by_request[len(by_request) // 2]


def outcome_of(reply: dict[str, Any]) -> str:
    """`ok:<order status>`, `ok`, or `error:<code>`."""
    if reply.get("ok"):
        order = (reply.get("result") or {}).get("order")
        return f"ok:{order['status']}" if isinstance(order, dict) else "ok"
    return f"error:{(reply.get('error') or {}).get('code')}"


def drive(client: OrderdClient, make: Callable[[int], Request], *, in_flight: int,
          count: int | None = None, duration_s: float | None = None,
          progress: Callable[[int], None] | None = None, progress_every: int = 0,
          reply_timeout_s: float = 30.0, retry_refused: bool = False) -> RunResult:
    """Send `make(i)` requests with `in_flight` outstanding, for `count` requests or
    `duration_s` seconds (whichever comes first), and collect every reply.
    retry_refused: a `rate_limited` refusal is followed, after its retry_after_s, by
    one more request, so `count` orders are accepted: the client honours the daemon's
    backpressure as a client should. progress(n) is called at every
    progress_every-th accepted order."""
    if count is None and duration_s is None:
        raise ValueError("give count or duration_s")
    result = RunResult()
    started: dict[str, float] = {}
    clock = time.perf_counter
    begin = clock()
    deadline = math.inf if duration_s is None else begin + duration_s
    limit = math.inf if count is None else count
    paused_at = resume_at = -math.inf  # the last pause for a refusal: began, ends
    owed = 0  # sends held back by a pause

    def send_one() -> None:
        cmd, args = make(result.sent)
        now = clock()
        started[client.send(cmd, args)] = now
        result.sent_at_s.append(now - begin)

    while result.sent < min(in_flight, limit):
        send_one()
    while started or owed:
        if started:
            reply = client.receive(reply_timeout_s)
            now = clock()
            sent_at = started.pop(str(reply.get("id")), None)
            if sent_at is None:
                continue  # a reply of an earlier run
            outcome = _record(result, reply, now - sent_at, now - begin)
            if outcome == REFUSED and retry_refused:
                limit += 1
                if sent_at >= paused_at:  # sent since the last pause began: pause again
                    paused_at = now
                    resume_at = now + float(reply["error"].get("retry_after_s") or 0.1)
            if (progress is not None and progress_every and outcome.startswith("ok")
                    and result.accepted % progress_every == 0):
                progress(result.accepted)
            if result.sent + owed < limit and now < deadline:
                owed += 1
        else:  # nothing in flight: wait out the pause
            time.sleep(max(0.0, resume_at - clock()))
        now = clock()
        if now >= deadline:
            owed = 0
        while owed and now >= resume_at:
            send_one()
            owed -= 1
    result.elapsed_s = clock() - begin
    return result


def _record(result: RunResult, reply: dict[str, Any], latency_s: float,
            at_s: float) -> str:
    """Count one reply; returns its outcome."""
    outcome = outcome_of(reply)
    result.latencies_s.append(latency_s)
    result.outcomes[outcome] += 1
    result.by_outcome.setdefault(outcome, []).append(latency_s)
    if outcome == REFUSED and result.burst is None:
        result.burst = (result.accepted, at_s)
    return outcome


def sol_market(i: int, *, wait: str = "durable") -> Request:
    """Alternating small SOL/USD market buys and sells: the venue's balances never run
    out (each pair costs about 0.04 USD of fees), and nothing rests on the book."""
    side = "buy" if i % 2 == 0 else "sell"
    order = {"symbol": "SOL/USD", "side": side, "type": "market", "amount": "0.1"}
    return "submit", {"order": order, "wait": wait}
