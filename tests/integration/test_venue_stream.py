"""Real ccxt.pro against `orderd paper-venue` (its own process): watch_orders and
watch_my_trades see every order change made over REST, with binance's ids."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from typing import Any

import pytest
from ccxt.base.errors import AuthenticationError, InsufficientFunds, OrderImmediatelyFillable

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from tests.helpers import KEY, SECRET, VenueProcess
from tests.stream_support import WAIT_S, Collector, in_thread, operator, pro_client

BTC, SOL = "BTC/USD", "SOL/USD"


def cid() -> str:
    return f"s-{uuid.uuid4().hex[:20]}"


@pytest.fixture(autouse=True)
def no_faults_left(venue: VenueProcess) -> Iterator[None]:
    yield
    venue.script()


def run(scenario: Callable[[Any, Any], Awaitable[None]], url: str, secret: str = SECRET) -> None:
    """Run `scenario(rest, pro)`: a sync ccxt client for REST, ccxt.pro for the stream."""
    async def main() -> None:
        rest = build_binance(DriverSettings(KEY, SECRET, url))
        await in_thread(rest.load_markets)
        pro = pro_client(url, KEY, secret)
        try:
            await pro.load_markets()
            await scenario(rest, pro)
        finally:
            await pro.close()
    asyncio.run(main())


def states(items: list[dict[str, Any]], order_id: str) -> list[str]:
    return [item["status"] for item in items if item["id"] == order_id]


def has_client_id(client_order_id: str, items: list[dict[str, Any]]) -> bool:
    return any(item["clientOrderId"] == client_order_id for item in items)


def last(items: list[dict[str, Any]], order_id: str) -> dict[str, Any]:
    return [item for item in items if item["id"] == order_id][-1]


def test_orders_and_fills_arrive_with_binance_ids(venue: VenueProcess) -> None:
    async def scenario(rest: Any, pro: Any) -> None:
        await pro.authenticate()  # subscribed: every later change is pushed
        orders, trades = (await Collector.start(pro.watch_orders),
                          await Collector.start(pro.watch_my_trades))
        resting_id, taker_id = cid(), cid()
        resting = await in_thread(rest.create_order, BTC, "limit", "buy", 0.01, 1000, {
            "newClientOrderId": resting_id})
        seen = await orders.until(lambda items: "open" in states(items, resting["id"]),
                                  "the resting order, open")
        assert last(seen, resting["id"])["clientOrderId"] == resting_id
        assert last(seen, resting["id"])["price"] == 1000

        taken = await in_thread(rest.create_order, BTC, "market", "buy", 0.01, None, {
            "newClientOrderId": taker_id})
        seen = await orders.until(lambda items: "closed" in states(items, taken["id"]),
                                  "the market order, filled")
        filled = last(seen, taken["id"])
        assert filled["clientOrderId"] == taker_id and filled["filled"] == 0.01
        fills = await trades.until(lambda items: any(t["order"] == taken["id"] for t in items),
                                   "the market order's fill")
        [fill] = [t for t in fills if t["order"] == taken["id"]]
        [booked] = [t for t in await in_thread(rest.fetch_my_trades, BTC)
                    if t["order"] == taken["id"]]
        assert fill["id"] == booked["id"] and fill["amount"] == 0.01
        assert fill["price"] == booked["price"] == taken["average"]
        assert fill["takerOrMaker"] == "taker" and fill["side"] == "buy"
        assert fill["fee"]["currency"] == "USD" and float(fill["fee"]["cost"]) == pytest.approx(
            booked["fee"]["cost"])

        await in_thread(rest.cancel_order, resting["id"], BTC)
        seen = await orders.until(lambda items: "canceled" in states(items, resting["id"]),
                                  "the resting order, canceled")
        assert last(seen, resting["id"])["clientOrderId"] == resting_id  # binance's `C`
        await orders.stop()
        await trades.stop()

    run(scenario, venue.url)


def test_a_price_move_pushes_the_maker_fill(venue: VenueProcess) -> None:
    async def scenario(rest: Any, pro: Any) -> None:
        await in_thread(operator, venue.url, "/_venue/price", {"symbol": "SOLUSD", "price": "180"})
        await pro.authenticate()
        orders, trades = (await Collector.start(pro.watch_orders),
                          await Collector.start(pro.watch_my_trades))
        resting = await in_thread(rest.create_order, SOL, "limit", "buy", 1, 100)
        await orders.until(lambda items: "open" in states(items, resting["id"]), "open")
        await in_thread(operator, venue.url, "/_venue/price", {"symbol": "SOLUSD", "price": "99.5"})
        seen = await orders.until(lambda items: "closed" in states(items, resting["id"]),
                                  "the resting order, filled by the price")
        assert last(seen, resting["id"])["filled"] == 1
        fills = await trades.until(lambda items: any(t["order"] == resting["id"] for t in items),
                                   "the maker fill")
        [fill] = [t for t in fills if t["order"] == resting["id"]]
        assert fill["price"] == 100 and fill["takerOrMaker"] == "maker"
        [booked] = await in_thread(rest.fetch_order_trades, resting["id"], SOL)
        assert fill["id"] == booked["id"]
        await orders.stop()
        await trades.stop()

    run(scenario, venue.url)


def test_expired_and_rejected_orders_are_pushed(venue: VenueProcess) -> None:
    async def scenario(rest: Any, pro: Any) -> None:
        await pro.authenticate()
        orders = await Collector.start(pro.watch_orders)
        expiring = await in_thread(rest.create_order, BTC, "limit", "buy", 0.01, 1000,
                                   {"timeInForce": "IOC"})
        assert expiring["status"] == "expired"
        await orders.until(lambda items: "expired" in states(items, expiring["id"]),
                           "the IOC order, expired")
        for params, amount, price, refusal in (
                ({"postOnly": True}, 0.01, 200000, OrderImmediatelyFillable),
                ({}, 1000, None, InsufficientFunds)):
            ours = cid()
            kind = "market" if price is None else "limit"
            with pytest.raises(refusal):
                await in_thread(rest.create_order, BTC, kind, "buy", amount, price,
                                {**params, "newClientOrderId": ours})
            seen = await orders.until(partial(has_client_id, ours), f"the refused order {ours}")
            [refused] = [o for o in seen if o["clientOrderId"] == ours]
            # nothing was booked: binance names no order (-1)
            assert refused["status"] == "rejected" and refused["id"] == "-1"
        await orders.stop()

    run(scenario, venue.url)


def test_a_wrong_secret_is_refused(venue: VenueProcess) -> None:
    async def scenario(_rest: Any, pro: Any) -> None:
        # ccxt 4.5.90 then drops the subscription twice, and a KeyError hides its error
        with pytest.raises((AuthenticationError, KeyError)) as caught:
            await asyncio.wait_for(pro.watch_orders(), WAIT_S)
        error = caught.value
        refusal = error if isinstance(error, AuthenticationError) else error.__context__
        assert isinstance(refusal, AuthenticationError), repr(error)
        assert "-1022" in str(refusal)

    run(scenario, venue.url, secret="not-the-secret")
