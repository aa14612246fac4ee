"""`orderd paper-venue`'s user-data stream frame by frame (aiohttp's WebSocket client):
binance's answers, errors and executionReport fields, and the scripted stream faults."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp
import pytest

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from tests.helpers import KEY, SECRET, VenueProcess
from tests.stream_support import RawStream, in_thread, operator, raw_stream, subscribe_request

BTC = "BTC/USD"


def cid() -> str:
    return f"f-{uuid.uuid4().hex[:20]}"


@pytest.fixture(autouse=True)
def no_faults_left(venue: VenueProcess) -> Iterator[None]:
    yield
    venue.script()


@pytest.fixture(scope="module")
def rest(venue: VenueProcess) -> Any:
    client = build_binance(DriverSettings(KEY, SECRET, venue.url))
    client.load_markets()
    return client


def run(scenario: Callable[[RawStream], Awaitable[None]], url: str,
        subscribe: bool = True) -> None:
    async def main() -> None:
        async with raw_stream(url) as stream:
            if subscribe:
                answer = await stream.subscribe(KEY, SECRET)
                assert answer["status"] == 200, answer
            await scenario(stream)
    asyncio.run(main())


async def place(rest: Any, price: float | None = 1000, ours: str | None = None) -> dict[str, Any]:
    """A resting limit buy (a market buy without a price), with our client id."""
    kind = "limit" if price is not None else "market"
    order: dict[str, Any] = await in_thread(rest.create_order, BTC, kind, "buy", 0.01, price,
                                            {"newClientOrderId": ours or cid()})
    return order


def test_subscribe_then_reports_in_binance_fields(venue: VenueProcess, rest: Any) -> None:
    async def scenario(stream: RawStream) -> None:
        answer = await stream.subscribe(KEY, SECRET)
        assert answer == {"id": "sub-1", "status": 200,
                          "result": {"subscriptionId": 0, "eventsNumbered": True}}
        ours = cid()
        resting = await place(rest, ours=ours)
        [new] = await stream.reports_of(ours, 1)
        assert {key: new[key] for key in ("e", "s", "c", "C", "S", "o", "f", "q", "p", "x",
                                          "X", "r", "i", "l", "z", "t", "w", "g")} == {
            "e": "executionReport", "s": "BTCUSD", "c": ours, "C": "", "S": "BUY",
            "o": "LIMIT", "f": "GTC", "q": "0.01", "p": "1000", "x": "NEW", "X": "NEW",
            "r": "NONE", "i": int(resting["id"]), "l": "0", "z": "0", "t": -1, "w": True,
            "g": -1}
        await in_thread(operator, venue.url, "/_venue/cancel", {"orderId": resting["id"]})
        [canceled] = await stream.reports_of(ours, 1)
        # binance names the cancel in `c` and the order's own client id in `C`
        assert (canceled["x"], canceled["X"], canceled["C"]) == ("CANCELED", "CANCELED", ours)
        assert canceled["c"] != ours and canceled["i"] == int(resting["id"])

        taker = cid()
        taken = await place(rest, None, taker)
        new, trade = await stream.reports_of(taker, 2)
        assert (new["x"], new["X"], new["w"]) == ("NEW", "NEW", False)
        [booked] = [t for t in await in_thread(rest.fetch_my_trades, BTC)
                    if t["order"] == taken["id"]]
        assert (trade["x"], trade["X"], trade["t"]) == ("TRADE", "FILLED", int(booked["id"]))
        assert trade["l"] == trade["z"] == "0.01" and float(trade["L"]) == booked["price"]
        assert float(trade["n"]) == pytest.approx(booked["fee"]["cost"]) and trade["N"] == "USD"
        assert float(trade["Y"]) == float(trade["Z"]) == pytest.approx(booked["cost"])
        assert trade["m"] is False and trade["I"] == new["I"] + 1

    run(scenario, venue.url, subscribe=False)


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"signature": "0" * 64}, 400, -1022),
    ({"apiKey": "someone-else"}, 401, -2015),
    ({"timestamp": 1_500_000_000_000}, 400, -1021),
])
def test_a_bad_subscribe_is_refused_as_binance_does(venue: VenueProcess, rest: Any,
                                                    change: dict[str, Any], status: int,
                                                    code: int) -> None:
    async def scenario(stream: RawStream) -> None:
        request = subscribe_request(KEY, SECRET, 7)
        request["params"].update(change)
        if "signature" not in change:  # signed as sent: only the key or the time is wrong
            request = subscribe_request(request["params"]["apiKey"], SECRET, 7,
                                        timestamp_ms=request["params"]["timestamp"])
        answer = await stream.request(request)
        assert answer["id"] == 7 and answer["status"] == status
        assert answer["error"]["code"] == code and "result" not in answer
        await place(rest)  # not pushed: the next frame is the answer below
        assert await stream.request({"id": 8, "method": "ping"}) == {
            "id": 8, "status": 200, "result": {}}

    run(scenario, venue.url, subscribe=False)


def test_one_subscription_per_connection_until_unsubscribed(venue: VenueProcess,
                                                           rest: Any) -> None:
    async def scenario(stream: RawStream) -> None:
        again = await stream.subscribe(KEY, SECRET)
        assert again["status"] == 400 and again["error"]["code"] == -2035
        ended = await stream.request({"id": 3, "method": "userDataStream.unsubscribe"})
        assert ended == {"id": 3, "status": 200, "result": {}}
        terminated = await stream.next_json()
        assert terminated["subscriptionId"] == 0
        assert terminated["event"]["e"] == "eventStreamTerminated"
        await place(rest)  # no longer pushed: the next frame is the answer below
        assert (await stream.request({"id": 4, "method": "ping"}))["id"] == 4

    run(scenario, venue.url)


def test_connecting_and_subscribing_cost_binance_weight(venue: VenueProcess) -> None:
    def weight() -> int:
        # the running total: a minute's window could turn between the two readings
        address = venue.usage()["addresses"].get("127.0.0.1", {})
        used: int = address.get("weight_total", 0)
        return used

    before = weight()

    async def scenario(_stream: RawStream) -> None:
        assert weight() == before + 4  # connecting 2, subscribing 2
        assert venue.requests()[-2:] == [("GET", "/ws-api/v3"),
                                         ("WS", "userDataStream.subscribe.signature")]

    run(scenario, venue.url)


# -- faults ------------------------------------------------------------------------------


def test_drop_ends_the_connection_without_a_close_frame(venue: VenueProcess,
                                                        rest: Any) -> None:
    async def scenario(stream: RawStream) -> None:
        venue.script({"fault": "stream_drop"})
        lost = cid()
        await place(rest, ours=lost)
        frame = await stream.next_frame()
        assert frame.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
        # the order stands; a new connection streams again
        assert [o["status"] for o in venue.orders() if o["clientOrderId"] == lost] == ["NEW"]
        async with raw_stream(venue.url) as again:
            assert (await again.subscribe(KEY, SECRET))["status"] == 200
            ours = cid()
            await place(rest, ours=ours)
            assert len(await again.reports_of(ours, 1)) == 1

    run(scenario, venue.url)


def test_stall_holds_everything_back_then_sends_it(venue: VenueProcess, rest: Any) -> None:
    async def scenario(stream: RawStream) -> None:
        venue.script({"fault": "stream_stall", "delay_s": 1.5})
        ours = cid()
        started = time.monotonic()
        await place(rest, ours=ours)
        await stream.ws.send_json({"id": "p", "method": "ping"})  # its answer waits too
        with pytest.raises(TimeoutError):
            await stream.next_frame(timeout=0.5)
        report = (await stream.next_report())["event"]
        assert report["c"] == ours and time.monotonic() - started >= 1.5
        assert (await stream.next_json())["id"] == "p"

    run(scenario, venue.url)


def test_a_lost_event_leaves_a_gap_in_execution_ids(venue: VenueProcess, rest: Any) -> None:
    async def scenario(stream: RawStream) -> None:
        first = cid()
        await place(rest, ours=first)
        [seen] = await stream.reports_of(first, 1)
        venue.script({"fault": "stream_drop_event"})
        lost, after = cid(), cid()
        await place(rest, ours=lost)
        await place(rest, ours=after)
        report = (await stream.next_report())["event"]
        assert report["c"] == after and report["I"] == seen["I"] + 2

    run(scenario, venue.url)


def test_a_duplicated_event_comes_twice(venue: VenueProcess, rest: Any) -> None:
    async def scenario(stream: RawStream) -> None:
        venue.script({"fault": "stream_duplicate_event"})
        ours = cid()
        await place(rest, ours=ours)
        once, twice = await stream.reports_of(ours, 2)
        assert once == twice and once["x"] == "NEW"

    run(scenario, venue.url)


def test_stream_faults_are_left_alone_by_requests(venue: VenueProcess, rest: Any) -> None:
    venue.script({"fault": "stream_drop_event"})
    rest.fetch_open_orders(BTC)
    assert operator(venue.url, "/_venue/faults")["script"][0]["fault"] == "stream_drop_event"
    with pytest.raises(urllib.error.HTTPError) as caught:
        operator(venue.url, "/_venue/faults",
                 {"script": [{"fault": "stream_stall", "path": "/api/v3/order"}]})
    assert caught.value.code == 400
    assert "stream fault takes no path" in json.loads(caught.value.read())["error"]
