"""The Python library on the paper venue: both executors end to end, and the examples."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from actors.metrics.alerts import Alert
from actors.metrics.monitoring import defaults
from daemon.config_loader import ConfigError
from orderd import (
    BasicOrderExecutor,
    OrderExecutionInterface,
    ReliableOrderExecutor,
    alert_on_failure,
    circuit_breaker_aware,
    track_metrics,
)
from protocol.errors import ProtocolError
from tests.helpers import ROOT, wait_until
from tests.library_support import MARKET, limit, paper_config, run, venue_orders


async def round_trip(executor: OrderExecutionInterface) -> None:
    """What both executors do alike: fill, rest, cancel, status, idempotency."""
    order_id = await executor.execute_order({**MARKET, "client_order_id": "lib-m1"})
    assert order_id == "lib-m1"
    filled = await executor.get_order_status(order_id)
    assert filled["status"] == "filled" and filled["filled"] == "0.01"
    assert filled["order_id"] is not None and filled["attempts"] == 1
    again = await executor.execute_order({**MARKET, "client_order_id": "lib-m1"},
                                         return_order=True)
    assert again["order_id"] == filled["order_id"] and again["status"] == "filled"
    with pytest.raises(ProtocolError) as duplicate:
        await executor.execute_order({**MARKET, "amount": "0.02", "client_order_id": "lib-m1"})
    assert duplicate.value.code == "duplicate_client_order_id"

    twice = await asyncio.gather(*(executor.execute_order(
        {**MARKET, "client_order_id": "lib-m2"}, return_order=True) for _ in range(2)))
    assert twice[0]["order_id"] == twice[1]["order_id"] != filled["order_id"]

    resting = await executor.execute_order(limit(), return_order=True)
    assert resting["status"] == "open" and resting["client_order_id"].startswith("od-")
    status = await executor.get_order_status(order_id=resting["order_id"])
    assert status["client_order_id"] == resting["client_order_id"]
    assert status["status"] == "open"
    assert await executor.cancel_order(resting["client_order_id"]) is True
    assert (await executor.get_order_status(resting["client_order_id"]))["status"] == "canceled"
    assert await executor.cancel_order(resting["client_order_id"]) is True  # already canceled

    with pytest.raises(ProtocolError) as unknown:
        await executor.execute_order({**MARKET, "symbol": "DOGE/USD"})
    assert unknown.value.code == "unknown_symbol"
    with pytest.raises(ProtocolError) as invalid:
        await executor.execute_order({**MARKET, "amount": "-1"})
    assert invalid.value.code == "invalid_order"
    for not_an_order in ("BTC/USD buy 0.01", None, [MARKET]):
        with pytest.raises(ProtocolError) as shapeless:
            await executor.execute_order(not_an_order)  # type: ignore[call-overload]
        assert (shapeless.value.code, shapeless.value.message) == (
            "invalid_order", "order must be an object")
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
        await executor.get_order_status("no-such-order")
    assert missing.value.code == "not_found"
    assert await executor.cancel_order("lib-m1") is False  # filled
    assert await executor.cancel_order("no-such-order") is False
    with pytest.raises(ProtocolError) as final:
        await executor.cancel_order("lib-m1", return_order=True)
    assert final.value.code == "not_cancelable"

    stats = await executor.get_execution_stats()
    assert stats["orders_by_status"] == {"filled": 2, "canceled": 1}
    assert stats["live_orders"] == 0 and stats["submit_latency"]["samples"] == 3
    assert stats["unresolved"] == {"count": 0, "oldest_age_s": 0.0}


async def floats(executor: OrderExecutionInterface) -> str:
    """Floats within float error of the step are rounded to it; others are refused,
    naming the step, before anything is recorded. The id of the order placed."""
    placed = await executor.execute_order(limit(amount=0.1 + 0.2, price=1000.0,
                                                client_order_id="lib-f1"), return_order=True)
    assert (placed["amount"], placed["price"], placed["status"]) == ("0.3", "1000", "open")
    for order, message in [
        (limit(amount=0.123456, client_order_id="lib-f2"),
         "amount 0.123456 is not a multiple of the BTC/USD amount step 0.00001"),
        (limit(price=1000.005, client_order_id="lib-f3"),
         "price 1000.005 is not a multiple of the BTC/USD price step 0.01"),
        (limit(amount="0.300000000000001", client_order_id="lib-f4"), "step 0.00001"),
    ]:
        with pytest.raises(ProtocolError) as refused:
            await executor.execute_order(order)
        assert refused.value.code == "invalid_order" and message in refused.value.message
        with pytest.raises(ProtocolError) as missing:
            await executor.get_order_status(order["client_order_id"])
        assert missing.value.code == "not_found"
    return str(placed["client_order_id"])


@pytest.mark.parametrize("kind", [ReliableOrderExecutor, BasicOrderExecutor])
def test_float_amounts_and_prices(kind: type[OrderExecutionInterface], tmp_path: Path) -> None:
    async def scenario() -> str:
        async with kind(paper_config(tmp_path)) as executor:  # type: ignore[call-arg]
            return await floats(executor)

    placed = run(scenario)
    assert [(o["clientOrderId"], o["amount"]) for o in venue_orders(tmp_path)] == [(placed, 0.3)]


@pytest.mark.parametrize("kind", [ReliableOrderExecutor, BasicOrderExecutor])
def test_cancel_all_and_balance(kind: type[OrderExecutionInterface], tmp_path: Path) -> None:
    """The incident commands through the library: only the orders in scope are asked to
    cancel, and the balances are the venue's, as decimal strings."""

    async def scenario() -> None:
        async with kind(paper_config(tmp_path)) as executor:  # type: ignore[call-arg]
            eth = [await executor.execute_order(limit(symbol="ETH/USD", amount="0.1",
                                                      price="100")) for _ in range(2)]
            btc = await executor.execute_order(limit())
            asked = await executor.cancel_all(symbol="ETH/USD")
            assert sorted(o["client_order_id"] for o in asked) == sorted(eth)
            assert {o["status"] for o in asked} <= {"pending_cancel", "canceled"}
            for _ in range(1500):  # their outcomes follow: poll until they are in
                states = [(await executor.get_order_status(cid))["status"] for cid in eth]
                if states == ["canceled", "canceled"]:
                    break
                await asyncio.sleep(0.01)
            assert states == ["canceled", "canceled"]
            assert (await executor.get_order_status(btc))["status"] == "open"
            balance = await executor.get_balance()
            usd = balance["balances"]["paper"]["USD"]
            assert Decimal(usd["total"]) == Decimal(usd["free"]) + Decimal(usd["used"]) > 0
            with pytest.raises(ProtocolError) as unknown:
                await executor.get_balance("nowhere")
            assert unknown.value.code == "unknown_exchange"

    run(scenario)
    states = {o["clientOrderId"]: o["status"] for o in venue_orders(tmp_path)}
    assert sorted(states.values()) == ["canceled", "canceled", "open"]


# --- ReliableOrderExecutor ------------------------------------------------------------


def test_reliable_executor_end_to_end_and_clean_close(tmp_path: Path) -> None:
    before = set(threading.enumerate())

    async def scenario() -> None:
        executor = ReliableOrderExecutor(paper_config(tmp_path))
        async with executor:
            await round_trip(executor)
            status = await executor.get_order_status("lib-m1")
            assert [step["step"] for step in status["confirmation"]][:2] == ["ack", "verified"]
            stats = await executor.get_execution_stats()
            assert stats["circuits"]["paper"]["state"] == "closed" and stats["resends"] == 0
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
            found = await reopened.get_order_status("lib-m2")
            assert found["status"] == "filled"

    run(scenario)
    left = [t.name for t in set(threading.enumerate()) - before
            if t.is_alive() and not t.name.startswith("asyncio_")]
    assert left == []


def test_reliable_executor_leaves_orders_of_a_renamed_exchange_until_it_is_back(
        tmp_path: Path) -> None:
    """An order resting on `paper` while the entry is renamed: the executor under the new
    name serves its own exchange and refuses to cancel it; under the old name again, it
    is cancelled as any other."""
    kept = Kept()

    async def scenario() -> None:
        async with ReliableOrderExecutor(paper_config(tmp_path)) as first:
            await first.execute_order(limit(client_order_id="lib-r1"))
        renamed = paper_config(tmp_path, name="paper_main")
        async with ReliableOrderExecutor(renamed, alerter=kept) as second:
            with pytest.raises(ProtocolError) as refused:
                await second.cancel_order("lib-r1")
            assert refused.value.code == "unknown_exchange"
            assert await second.cancel_all() == []
            assert (await second.execute_order(MARKET, return_order=True))["status"] == "filled"
            assert (await second.get_order_status("lib-r1"))["status"] == "open"
            alerts = await asyncio.to_thread(wait_until, lambda: [
                a for a in kept.alerts if a.name == "orders_of_unknown_exchange"], "the alert")
            assert alerts[0].labels == {"exchange": "paper"}
        async with ReliableOrderExecutor(paper_config(tmp_path)) as back:
            assert await back.cancel_order("lib-r1") is True

    run(scenario)


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
            order = await ex.execute_order(MARKET, return_order=True)
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


class Kept:
    """An alerter that keeps what it is given."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def alert(self, alert: Alert) -> None:
        self.alerts.append(alert)


@alert_on_failure
@track_metrics
@circuit_breaker_aware
def fetch_quote(fail: bool) -> str:
    """A program's own function, monitored with the bare decorators."""
    if fail:
        raise ValueError("quote service down")
    return "quote"


def test_bare_decorators_report_through_the_running_executor(tmp_path: Path) -> None:
    """While an executor runs, the bare decorators use its metrics, its circuit of the
    default exchange and its alert route (which hands alerts to the executor's alerter)."""
    kept = Kept()

    async def scenario() -> None:
        async with ReliableOrderExecutor(paper_config(tmp_path), alerter=kept):
            assert defaults().exchange == "paper"
            assert fetch_quote(False) == "quote"
            for _ in range(3):
                with pytest.raises(ValueError):
                    fetch_quote(True)
            await asyncio.to_thread(wait_until, lambda: kept.alerts, "the alert")
            calls = defaults().metrics.registry.get_sample_value(
                "orderd_function_calls_total", {"function": fetch_quote.__qualname__})
            assert calls == 4
        assert defaults().exchange is None  # closed: back to the module's fallback

    run(scenario)
    assert [(a.name, a.severity) for a in kept.alerts] == [("fetch_quote_failed", "critical")]
    assert "quote service down" in kept.alerts[0].message


# --- BasicOrderExecutor ---------------------------------------------------------------


def test_basic_executor_round_trip(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with BasicOrderExecutor(paper_config(tmp_path)) as executor:
            await round_trip(executor)
            report = await executor.reconcile_orders()
            assert report["exchanges"]["paper"]["counts"]["exchange_open"] == 0

    run(scenario)
    assert len(venue_orders(tmp_path)) == 3


# --- the examples ---------------------------------------------------------------------


@pytest.mark.parametrize(("script", "expected"), [
    ("reliable_executor_example.py", ["filled", "open", "cancel_order: True", "now canceled",
                                      "filled market buy: False", "same order",
                                      "amount step 0.00001", "stats", "reconciliation"]),
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
