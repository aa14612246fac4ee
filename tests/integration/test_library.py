"""The Python library on the paper venue: both executors end to end, and the examples."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from ccxt.base.errors import RateLimitExceeded

from actors.exchanges.client import ExchangeClient
from actors.exchanges.paper import PaperExchange, PaperVenue
from daemon.config_loader import ConfigError
from daemon.executors import BasicOrderExecutor, OrderExecutionInterface, ReliableOrderExecutor
from protocol.errors import ProtocolError
from tests.helpers import ROOT

T = TypeVar("T")
MARKET = {"symbol": "BTC/USD", "side": "buy", "type": "market", "amount": "0.01"}
LOW_PRICE = "1000"  # far below the venue's BTC price: a limit buy there rests


def run(coroutine: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coroutine()

    return asyncio.run(main())


def limit(**extra: Any) -> dict[str, Any]:
    return {**MARKET, "type": "limit", "price": LOW_PRICE, **extra}


def paper_config(state_dir: Path, **exchange: Any) -> dict[str, Any]:
    return {"state_dir": str(state_dir), "exchange": {"name": "paper", **exchange},
            "retry": {"initial_delay": 0.001, "max_delay": 0.01}}


def venue_orders(state_dir: Path) -> list[dict[str, Any]]:
    """Every order the paper venue booked, read once the executor has closed it."""
    venue = PaperVenue(state_dir / "paper-paper.sqlite")
    try:
        return venue.orders("default")
    finally:
        venue.close()


async def round_trip(executor: OrderExecutionInterface) -> None:
    """What both executors do alike: fill, rest, cancel, status, idempotency."""
    filled = await executor.execute_order({**MARKET, "client_order_id": "lib-m1"})
    assert filled["status"] == "filled" and filled["filled"] == "0.01"
    assert filled["order_id"] is not None and filled["attempts"] == 1
    again = await executor.execute_order({**MARKET, "client_order_id": "lib-m1"})
    assert again["order_id"] == filled["order_id"] and again["status"] == "filled"
    with pytest.raises(ProtocolError) as duplicate:
        await executor.execute_order({**MARKET, "amount": "0.02", "client_order_id": "lib-m1"})
    assert duplicate.value.code == "duplicate_client_order_id"

    twice = await asyncio.gather(*(executor.execute_order({**MARKET, "client_order_id": "lib-m2"})
                                   for _ in range(2)))
    assert twice[0]["order_id"] == twice[1]["order_id"] != filled["order_id"]

    resting = await executor.execute_order(limit(client_order_id="lib-l1"))
    assert resting["status"] == "open"
    status = await executor.get_order_status(order_id=resting["order_id"])
    assert status["client_order_id"] == "lib-l1" and status["status"] == "open"
    canceled = await executor.cancel_order(client_order_id="lib-l1")
    assert canceled["status"] == "canceled"
    assert (await executor.get_order_status(client_order_id="lib-l1"))["status"] == "canceled"

    with pytest.raises(ProtocolError) as unknown:
        await executor.execute_order({**MARKET, "symbol": "DOGE/USD"})
    assert unknown.value.code == "unknown_symbol"
    with pytest.raises(ProtocolError) as invalid:
        await executor.execute_order({**MARKET, "amount": "-1"})
    assert invalid.value.code == "invalid_order"
    for params in ({"quantity": "5"}, {"clientAlgoId": "x"}, {"postOnly": "yes"}):
        with pytest.raises(ProtocolError) as refused:
            await executor.execute_order({**MARKET, "client_order_id": "lib-h1",
                                          "params": params})
        assert refused.value.code == "invalid_order"
        assert refused.value.details == {"field": f"params.{next(iter(params))}"}
    with pytest.raises(ProtocolError) as never_kept:
        await executor.get_order_status(client_order_id="lib-h1")
    assert never_kept.value.code == "not_found"
    with pytest.raises(ProtocolError) as missing:
        await executor.get_order_status(client_order_id="no-such-order")
    assert missing.value.code == "not_found"
    with pytest.raises(ProtocolError) as final:
        await executor.cancel_order(client_order_id="lib-m1")
    assert final.value.code == "not_cancelable"

    stats = await executor.get_execution_stats()
    assert stats["orders_by_status"] == {"filled": 2, "canceled": 1}
    assert stats["live_orders"] == 0 and stats["submit_latency"]["samples"] == 3


# --- ReliableOrderExecutor ------------------------------------------------------------


def test_reliable_executor_end_to_end_and_clean_close(tmp_path: Path) -> None:
    before = set(threading.enumerate())

    async def scenario() -> None:
        executor = ReliableOrderExecutor(paper_config(tmp_path))
        async with executor:
            await round_trip(executor)
            status = await executor.get_order_status(client_order_id="lib-m1")
            assert [step["step"] for step in status["confirmation"]][:2] == ["ack", "verified"]
            stats = await executor.get_execution_stats()
            assert stats["circuits"]["paper"]["state"] == "closed"
            report = await executor.reconcile_orders()
            assert report["exchanges"]["paper"]["counts"]["ledger_orders"] == 3
            assert report["exchanges"]["paper"]["discrepancies"] == []
            with pytest.raises(ProtocolError) as unknown:
                await executor.reconcile_orders("nowhere")
            assert unknown.value.code == "unknown_exchange"
        with pytest.raises(RuntimeError):
            await executor.execute_order(MARKET)
        # the ledger is durable: a new executor on the same state finds the orders
        async with ReliableOrderExecutor(paper_config(tmp_path)) as reopened:
            found = await reopened.get_order_status(client_order_id="lib-l1")
            assert found["status"] == "canceled"

    run(scenario)
    left = [t.name for t in set(threading.enumerate()) - before
            if t.is_alive() and not t.name.startswith("asyncio_")]
    assert left == []


def test_awaiting_an_order_leaves_the_event_loop_running(tmp_path: Path) -> None:
    """Every request to this venue takes 400 ms; a 1 ms heartbeat keeps beating meanwhile
    (a blocked loop would let it beat once at most)."""

    async def scenario() -> int:
        async with ReliableOrderExecutor(paper_config(tmp_path, faults={"latency_ms": 400})) as ex:
            beats = 0
            done = asyncio.Event()

            async def heartbeat() -> None:
                nonlocal beats
                while not done.is_set():
                    await asyncio.sleep(0.001)
                    beats += 1

            beating = asyncio.create_task(heartbeat())
            await asyncio.sleep(0)  # let it start before the order
            order = await ex.execute_order(MARKET)
            done.set()
            await beating
            assert order["status"] == "filled"
            return beats

    assert run(scenario) >= 10


def test_reliable_executor_config_is_strict(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"retry\.max_retry: unknown key"):
        ReliableOrderExecutor({"state_dir": str(tmp_path), "retry": {"max_retry": 3}})
    with pytest.raises(ConfigError, match=r"circuit_breaker\.error_threshold"):
        ReliableOrderExecutor({"circuit_breaker": {"error_threshold": "many"}})
    with pytest.raises(ConfigError, match="exchange or exchanges"):
        ReliableOrderExecutor({"exchange": {"name": "a"}, "exchanges": [{"name": "b"}]})


# --- BasicOrderExecutor ---------------------------------------------------------------


def test_basic_executor_round_trip(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with BasicOrderExecutor(paper_config(tmp_path)) as executor:
            await round_trip(executor)
            report = await executor.reconcile_orders()
            assert report["exchanges"]["paper"]["counts"]["exchange_open"] == 0

    run(scenario)
    assert len(venue_orders(tmp_path)) == 3


def test_basic_executor_retries_transient_faults_without_duplicating(tmp_path: Path) -> None:
    """Half the requests fail before reaching the venue. Reads are retried until they
    succeed; a create that failed this way may have landed as far as the executor can
    tell, so it is looked up and never sent again."""
    config = paper_config(tmp_path, faults={"error_rate": 0.5, "seed": 7})
    config["retry"]["max_retries"] = 12

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with BasicOrderExecutor(config, seed=1) as executor:
            orders = [await executor.execute_order(MARKET) for _ in range(8)]
            return orders, await executor.get_execution_stats()

    orders, stats = run(scenario)
    assert stats["retries"] > 0
    statuses = {o["status"] for o in orders}
    assert "filled" in statuses and statuses <= {"filled", "unknown"}
    assert all(o["attempts"] == 1 for o in orders)
    booked = {o["clientOrderId"] for o in venue_orders(tmp_path)}
    assert booked == {o["client_order_id"] for o in orders if o["status"] == "filled"}


def test_basic_executor_never_resends_an_ambiguous_create(tmp_path: Path) -> None:
    """The venue books every order but the reply is lost: one lookup finds it."""

    async def scenario() -> dict[str, Any]:
        config = paper_config(tmp_path, faults={"ambiguous_rate": 1.0})
        async with BasicOrderExecutor(config) as executor:
            return await executor.execute_order(MARKET)

    order = run(scenario)
    assert order["status"] == "filled" and order["attempts"] == 1
    assert order["last_error"]["code"] == "timeout"
    assert [o["clientOrderId"] for o in venue_orders(tmp_path)] == [order["client_order_id"]]


class RateLimitedTwice:
    """The paper venue behind a client whose first two creates hit a rate limit."""

    def __init__(self, client: PaperExchange) -> None:
        self.client = client
        self.id = client.id
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def create_order(self, *args: Any, **kwargs: Any) -> Any:
        if self.refused < 2:
            self.refused += 1
            raise RateLimitExceeded("429 too many requests")
        return self.client.create_order(*args, **kwargs)


def test_basic_executor_resends_a_create_refused_by_a_rate_limit(tmp_path: Path) -> None:
    venue = PaperVenue(None)

    def client() -> ExchangeClient:
        return RateLimitedTwice(PaperExchange(venue))

    async def scenario() -> dict[str, Any]:
        async with BasicOrderExecutor(paper_config(tmp_path), clients={"paper": client}) as ex:
            return await ex.execute_order(MARKET)

    try:
        order = run(scenario)
        assert order["status"] == "filled" and order["attempts"] == 3
        assert len(venue.orders("default")) == 1
    finally:
        venue.close()


# --- the examples ---------------------------------------------------------------------


@pytest.mark.parametrize(("script", "expected"), [
    ("reliable_executor_example.py", ["filled", "open", "canceled", "same order",
                                      "stats", "reconciliation"]),
    ("reconciliation_job_example.py", ["unknown_on_exchange", "adopted", "report"]),
])
def test_example_runs_offline(script: str, expected: list[str], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), "--state-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    for word in expected:
        assert word in result.stdout, result.stdout
