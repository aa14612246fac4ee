"""How a stream's raw events reach delivery: none before the connection is announced,
those that arrive together in one delivery and in order, and a delivery that fails ends
the session at once rather than at the next heartbeat, with nothing delivered after it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.stream.actor import Arrivals


def test_events_wait_for_start_then_go_in_order_in_one_delivery() -> None:
    async def scenario() -> list[list[Any]]:
        delivered: list[list[Any]] = []
        arrivals = Arrivals()
        arrivals.put(1)
        arrivals.put(2)
        await asyncio.sleep(0)
        assert delivered == []  # not started: StreamConnected has not gone yet
        arrivals.start(delivered.append)
        arrivals.put(3)
        arrivals.put(4)  # the same turn of the loop: one delivery
        await asyncio.sleep(0)
        arrivals.put(5)
        await asyncio.sleep(0)
        return delivered

    assert asyncio.run(scenario()) == [[1, 2], [3, 4], [5]]


def test_a_failed_delivery_ends_the_wait_at_once_and_nothing_goes_after_it() -> None:
    delivered: list[list[Any]] = []

    def deliver(events: list[Any]) -> None:
        delivered.append(events)
        raise RuntimeError("broken")

    async def scenario() -> None:
        arrivals = Arrivals()
        arrivals.start(deliver)
        arrivals.put("first")
        await asyncio.sleep(0)
        arrivals.put("second")  # after the failure: the session is ending, not delivering
        await asyncio.sleep(0)
        await asyncio.wait_for(arrivals.failed_within(3600.0), 5.0)

    with pytest.raises(RuntimeError, match="broken"):
        asyncio.run(scenario())
    assert delivered == [["first"]]


def test_nothing_is_delivered_after_close() -> None:
    async def scenario() -> list[list[Any]]:
        delivered: list[list[Any]] = []
        arrivals = Arrivals()
        arrivals.start(delivered.append)
        arrivals.put(1)
        arrivals.close()
        await asyncio.sleep(0)
        await arrivals.failed_within(0.0)  # closed: no failure to raise
        return delivered

    assert asyncio.run(scenario()) == []
