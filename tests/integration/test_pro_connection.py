"""The daemon's binance stream client against `orderd paper-venue` (its own process): each
pushed event is handed on once, a failure reading frames ends the connection at once,
and a closed connection leaves nothing running on the stream's event loop."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from actors.stream.pro_driver import ProConnection, build_binance_pro
from tests.helpers import KEY, SECRET, VenueProcess
from tests.stream_support import WAIT_S, in_thread

SOL = "SOL/USD"


class Seen:
    """The raw events a connection hands on, and a wait for those of one order."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, client_order_id: str) -> list[str]:
        """The executions (`x`) handed on for one order, in order."""
        return [event["x"] for event in self.events if event["c"] == client_order_id]

    async def until(self, client_order_id: str, executions: list[str]) -> None:
        async def wait() -> None:
            while self.of(client_order_id) != executions:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(wait(), WAIT_S)


async def buy(url: str) -> str:
    """A market buy over REST; returns its client order id."""
    ours = f"pc-{uuid.uuid4().hex[:16]}"
    rest = build_binance(DriverSettings(KEY, SECRET, url))
    await in_thread(rest.load_markets)
    await in_thread(rest.create_order, SOL, "market", "buy", 0.1, None,
                    {"clientOrderId": ours})
    return ours


async def opened(url: str, on_event: Callable[[dict[str, Any]], None]) -> ProConnection:
    connection = build_binance_pro(DriverSettings(KEY, SECRET, url), on_event)
    await connection.open(None)
    return connection


async def failure_of(connection: ProConnection) -> str:
    """What the connection's check raises (as the stream actor sees it) once it has
    ended."""
    await asyncio.wait_for(connection.ended(), WAIT_S)
    try:
        connection.check()
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return str(exc)
    raise AssertionError("the connection ended, but its check raises nothing")


def others() -> set[asyncio.Task[Any]]:
    return asyncio.all_tasks() - {asyncio.current_task()}


def test_each_event_is_handed_on_once_and_a_close_leaves_no_task(venue: VenueProcess) -> None:
    async def main() -> tuple[list[str], set[asyncio.Task[Any]]]:
        seen = Seen()
        connection = await opened(venue.url, seen)
        ours = await buy(venue.url)
        await seen.until(ours, ["NEW", "TRADE"])
        # events come in order: a second delivery of ours would come before these
        await seen.until(await buy(venue.url), ["NEW", "TRADE"])
        await connection.close()
        return seen.of(ours), others()

    executions, left = asyncio.run(main())
    assert executions == ["NEW", "TRADE"]
    assert left == set()


def test_a_frame_that_cannot_be_handled_ends_the_connection(venue: VenueProcess) -> None:
    """Rather than reading stopping silently until the stream is found stale, with the
    socket left open and unread."""
    def refuse(_event: dict[str, Any]) -> None:
        raise RuntimeError("cannot take this event")

    async def main() -> str:
        connection = await opened(venue.url, refuse)
        [socket] = connection.pro.clients.values()
        try:
            await buy(venue.url)
            failure = await failure_of(connection)
            deadline = time.monotonic() + WAIT_S
            while not socket.closed():  # ccxt closes it in a task of its own
                assert time.monotonic() < deadline, "the socket still open"
                await asyncio.sleep(0.01)
            return failure
        finally:
            await connection.close()

    assert "cannot take this event" in asyncio.run(main())


def test_a_dropped_connection_fails_at_once(venue: VenueProcess) -> None:
    """Whatever waits on the connection learns of the drop from the drop itself, not
    from the stream being found stale later."""
    async def main() -> str:
        connection = await opened(venue.url, lambda _event: None)
        try:
            venue.script({"fault": "stream_drop"})
            await buy(venue.url)  # its first event meets the fault
            return await failure_of(connection)
        finally:
            await connection.close()

    assert "closed" in asyncio.run(main())
