"""BasicOrderExecutor keeps its orders across configure(): a resubmit returns the first
order, as the daemon and ReliableOrderExecutor do. What it promises without a ledger,
to an executor that never saw the id, is what the exchange does with a reused id."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.exchange.drivers.paper import PaperVenue
from orderd import BasicOrderExecutor
from protocol.errors import ProtocolError
from tests.library_support import MARKET, limit, paper_config, run, venue_orders


def booked(state_dir: Path, cid: str) -> list[dict[str, Any]]:
    return [o for o in venue_orders(state_dir) if o["clientOrderId"] == cid]



async def refused_as_unknown_exchange(executor: BasicOrderExecutor, cid: str,
                                      why: str) -> None:
    """Looking `cid` up and canceling it are both `unknown_exchange`, saying `why`."""
    for call in (executor.get_order_status, executor.cancel_order):
        with pytest.raises(ProtocolError, match=why) as error:
            await call(cid)
        assert error.value.code == "unknown_exchange"

def test_a_resubmit_after_configure_returns_the_first_order(tmp_path: Path) -> None:
    order = {**MARKET, "client_order_id": "same-id-1"}

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        async with BasicOrderExecutor(paper_config(tmp_path)) as executor:
            first = await executor.execute_order(order, return_order=True)
            await executor.configure()  # e.g. to take new retry settings
            again = await executor.execute_order(order, return_order=True)
            return first, again

    first, again = run(scenario)
    assert again["order_id"] == first["order_id"] and again["status"] == "filled"
    assert len(booked(tmp_path, "same-id-1")) == 1


def test_an_order_on_an_exchange_configured_away_gets_a_clear_error(tmp_path: Path) -> None:
    """The order stays known (its id taken); looking it up or canceling it says its
    exchange is no longer configured."""
    order = limit(client_order_id="rests-1")
    other = {"state_dir": str(tmp_path), "exchange": {"name": "other", "driver": "paper"}}

    async def scenario() -> dict[str, Any]:
        async with BasicOrderExecutor(paper_config(tmp_path)) as executor:
            await executor.execute_order(order)
            await executor.configure(other)
            await refused_as_unknown_exchange(executor, "rests-1", "no longer has")
            with pytest.raises(ProtocolError) as resubmit:  # its id is taken on "paper"
                await executor.execute_order({**order, "exchange": "other"})
            assert resubmit.value.code == "duplicate_client_order_id"
            left = await executor.cancel_all()  # it stands as it is; no crash
            assert [o["status"] for o in left] == ["open"]
            return await executor.get_execution_stats()

    stats = run(scenario)
    assert stats["orders_by_status"] == {"open": 1}


def test_a_new_executor_knows_a_reused_id_only_while_the_exchange_has_it_open(
        tmp_path: Path) -> None:
    """No ledger: a new executor sends the id to the exchange. While the first order is
    open the exchange refuses the duplicate and the executor looks the first one up;
    once it is finished the exchange takes the id again, and a second order is placed."""
    order = limit(client_order_id="reused-1")

    async def submit() -> dict[str, Any]:
        async with BasicOrderExecutor(paper_config(tmp_path)) as executor:
            return await executor.execute_order(order, return_order=True)

    async def cancel(cid: str) -> None:
        async with BasicOrderExecutor(paper_config(tmp_path)) as executor:
            await executor.execute_order(order)  # the open one, adopted
            assert await executor.cancel_order(cid) is True

    first, again = run(submit), run(submit)
    assert again["order_id"] == first["order_id"] and again["status"] == "open"
    run(lambda: cancel("reused-1"))
    third = run(submit)
    assert third["order_id"] != first["order_id"] and third["status"] == "open"
    assert len(booked(tmp_path, "reused-1")) == 2


def test_an_order_is_never_looked_up_or_canceled_on_another_account(tmp_path: Path) -> None:
    """An entry configured onto another account under the same name: its earlier orders
    are on the first account, and an order of the other account under the same client id
    (placed there by someone else) must not be taken for ours, nor canceled."""
    order = limit(client_order_id="shared-1")
    theirs = paper_config(tmp_path, account="other")

    async def place_theirs() -> None:
        async with BasicOrderExecutor(theirs) as executor:
            await executor.execute_order(order)

    async def scenario() -> None:
        async with BasicOrderExecutor(paper_config(tmp_path)) as executor:
            await executor.execute_order(order)
            await executor.configure(theirs)
            await refused_as_unknown_exchange(executor, "shared-1", "another account")
            report = await executor.reconcile_orders()
            assert report["exchanges"]["paper"]["counts"]["ledger_live"] == 0

    run(place_theirs)
    run(scenario)
    venue = PaperVenue(tmp_path / "paper-paper.sqlite")
    try:
        statuses = {account: [o["status"] for o in venue.orders(account)]
                    for account in ("default", "other")}
    finally:
        venue.close()
    assert statuses == {"default": ["open"], "other": ["open"]}
