"""Second reading of 3d1bf06..main: faults confirmed by failing tests."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from concurrent.futures import Future
from pathlib import Path

import ccxt

from actors.order.status_counts import StatusCounts
from daemon.logs import JsonFormatter, Redactor, SafeHandler
from orderd import BasicOrderExecutor
from tests.recon_support import WAIT_S, ledger_order, seed_ledger


def json_lines(*messages: str) -> list[str]:
    out = io.StringIO()
    handler = SafeHandler(out, Redactor(["sekret"]))
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("read2.redact")
    log.addHandler(handler)
    log.propagate = False
    try:
        for message in messages:
            log.warning("%s", message)
    finally:
        log.removeHandler(handler)
    return out.getvalue().splitlines()


def test_a_url_query_followed_by_a_quote_leaves_the_json_line_valid() -> None:
    """Redactor strips queries from the JSON text the formatter made: a `"` right after
    a query is JSON-escaped as `\\"`, and the regex eats the backslash."""
    for line in json_lines('answer: {"next": "https://x.example/a?page=2"}',
                           '<a href="https://x.example/a?b=c">link</a>'):
        json.loads(line)  # json.JSONDecodeError before a fix


def test_a_client_reused_across_configure_goes_through_one_budget(tmp_path: Path) -> None:
    """An embedder's factory that returns its one ccxt client: each configure() hooks it
    again, so the discarded budget of the last configuration still takes (and can
    refuse, with a stale op kind) every request."""
    client = ccxt.binance({"apiKey": "k", "secret": "s"})
    config = {"state_dir": str(tmp_path), "exchange": {
        "name": "bx", "driver": "binance", "api_key": "k", "secret": "s"}}

    async def scenario() -> tuple[float, float]:
        executor = BasicOrderExecutor(config, clients={"bx": lambda: client})
        await executor.configure()
        old = executor._exchanges["bx"].requests
        await executor.configure()
        new = executor._exchanges["bx"].requests
        client.calculate_rate_limiter_cost("private", "GET", "order", {})  # one request
        await executor.close()
        return old.counts.weight_spent, new.counts.weight_spent

    old, new = asyncio.run(scenario())
    assert new > 0
    assert old == 0, f"the discarded budget took {old} of weight too"


def test_a_failing_callback_does_not_stop_later_counts(tmp_path: Path) -> None:
    seed_ledger(tmp_path / "ledger.sqlite", [ledger_order("od-o1", order_id="1")])
    counts = StatusCounts(tmp_path / "ledger.sqlite")
    first: Future[None] = Future()

    def broken(found: object) -> None:
        first.set_result(None)
        raise RuntimeError("a reply that cannot be sent")

    counts.ask(broken)
    first.result(timeout=WAIT_S)
    later: Future[object] = Future()
    counts.ask(later.set_result)
    assert later.result(timeout=WAIT_S) == {"open": 1}  # TimeoutError before a fix
