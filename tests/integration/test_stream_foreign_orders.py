"""An account shared with other programs streams their orders too. binance enforces a
client order id's uniqueness among open orders only, so another program may place an
order under the client id of one of ours that is finished: its events name our client
id with another order id, and must leave our order as it is."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from tests.helpers import KEY, SECRET, VenueProcess, market_buy, running_daemon, wait_until
from tests.integration.test_daemon_stream import (
    SYMBOL,
    TRACKING,
    buy,
    cid,
    exchanges,
    fill_steps,
    filled,
    live,
    open_orders_reads,
    rest_at,
    stream_of,
)
from tests.stream_support import operator


def test_another_programs_order_under_our_finished_client_id_leaves_ours_alone(
        venue: VenueProcess, tmp_path: Path) -> None:
    rest_at(venue, "150")
    with running_daemon(tmp_path, exchanges=exchanges(venue), tracking=TRACKING) as daemon:
        client = daemon.client()
        wait_until(lambda: live(client), "the stream live")
        ours = client.submit(market_buy("0.1", symbol=SYMBOL, client_order_id=cid()),
                             wait="accepted")
        name = ours["client_order_id"]
        before: dict[str, Any] = wait_until(lambda: filled(client, name), "ours filled")

        other = build_binance(DriverSettings(KEY, SECRET, venue.url))  # another program
        other.load_markets()
        theirs = other.create_order(SYMBOL, "market", "buy", 0.2, None, {"clientOrderId": name})
        assert str(theirs["id"]) != before["order_id"]

        # an order of ours filled by the stream after theirs: their events were applied
        later = buy(client, "100")
        wait_until(lambda: client.status(client_order_id=later["client_order_id"])[
            "status"] == "open", "the later order open")
        rest_at(venue, "99")
        wait_until(lambda: filled(client, later["client_order_id"]), "the later order filled")

        after = client.status(client_order_id=name)
        assert after["order_id"] == before["order_id"]
        assert (after["filled"], after["average_price"], after["fee"]) == (
            before["filled"], before["average_price"], before["fee"])
        assert [s["trade_id"] for s in fill_steps(after)] == [
            s["trade_id"] for s in fill_steps(before)]
        assert not [s for s in after["confirmation"] if s["step"] == "overfill"]
        assert Decimal(after["filled"]) == Decimal("0.1")
        assert daemon.stop() == 0
    rest_at(venue, "150")


def test_a_read_listing_another_programs_order_under_our_client_id_leaves_ours_alone(
        venue: VenueProcess, tmp_path: Path) -> None:
    """Ours is canceled on the venue while the stream is stalled (its event never comes:
    the stalled connection goes stale and is made again); another program then places a
    resting order under our client id. The catch-up's read lists theirs, not ours: ours
    is looked up and found canceled, theirs is not taken for ours."""
    rest_at(venue, "150")
    with running_daemon(tmp_path, exchanges=exchanges(venue), tracking=TRACKING) as daemon:
        client = daemon.client()
        wait_until(lambda: live(client), "the stream live")
        reads = open_orders_reads(venue)
        ours = buy(client, "100")
        name = ours["client_order_id"]
        placed: dict[str, Any] = wait_until(
            lambda: (o := client.status(client_order_id=name))["status"] == "open" and o,
            "ours open")
        # the symbol's first read, then none for the safety interval
        wait_until(lambda: open_orders_reads(venue) > reads, "tracking's first read")
        before = stream_of(client)
        venue.script({"fault": "stream_stall", "delay_s": 3.0})
        operator(venue.url, "/_venue/cancel", {"orderId": placed["order_id"]})
        other = build_binance(DriverSettings(KEY, SECRET, venue.url))  # another program
        other.load_markets()
        theirs = other.create_order(SYMBOL, "limit", "buy", 0.2, 90.0, {"clientOrderId": name})

        # made again and caught up: the catch-up's read (and ours looked up) answered
        wait_until(lambda: stream_of(client)["reconnects"] > before["reconnects"]
                   and live(client), "the stream caught up again", attempts=3000)
        after = client.status(client_order_id=name)
        assert (after["status"], after["order_id"]) == ("canceled", placed["order_id"])
        [booked] = [o for o in venue.orders() if str(o["orderId"]) == str(theirs["id"])]
        assert booked["status"] == "NEW"
        assert daemon.stop() == 0
    other.cancel_order(str(theirs["id"]), SYMBOL)
    rest_at(venue, "150")
