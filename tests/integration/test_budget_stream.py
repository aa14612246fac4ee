"""The user-data stream spends the address's weight too (binance's WebSocket API shares
it): after a 429 for that weight its requests wait for Retry-After like REST's, or the
address is banned (418); a refusal the stream meets (its connection, its subscribe, a
heartbeat) pauses the exchange's request budget as a REST one does. A real daemon (binance
driver, stream on), or the daemon's stream client alone, on `orderd paper-venue`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from actors.exchange.budget import RequestBudget
from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from actors.stream.pro_driver import build_binance_pro
from protocol.client import OrderdClient
from tests.helpers import (
    KEY,
    SECRET,
    VenueProcess,
    market_buy,
    resting_limit_buy,
    running_daemon,
    wait_until,
)
from tests.integration.test_budget_daemon import (
    ban_the_address,
    entry,
    limited_venue,
    window_with,
)
from tests.stream_support import operator
from venue.weights import span

QUIET_STREAM = "safety_interval_s = 60\nstream_stale_s = 3\n"
"""A stream quiet for 1 s sends a heartbeat (a WebSocket API ping, weight 1)."""


def budget(client: OrderdClient) -> dict[str, Any]:
    view: dict[str, Any] = client.health()["budgets"]["bx"]
    return view


WEIGHT_LIMIT = 6000
WEIGHT_WINDOW_S = 4
SHORT_WEIGHT_WINDOW = ("--weight-limit", str(WEIGHT_LIMIT),
                       "--weight-window-s", str(WEIGHT_WINDOW_S))
"""A weight window that ends within seconds, so a weight 429's Retry-After does too."""
SPENT_WINDOW_LEFT_S = 3
"""The least of the window left when the weight is spent: the 429 (to the next heartbeat)
says to wait 3 s or more, longer than PAUSED_STREAM's stale_s, while a heartbeat not
held back would go out within a second."""
PAUSED_STREAM = "safety_interval_s = 60\nstream_stale_s = 2\n"
"""A stream quiet for 0.67 s sends a heartbeat; quiet for 2 s it is stale."""


def spend_the_weight(venue: VenueProcess) -> None:
    """Another program on the address spends its weight: the venue's limit becomes what
    it counted in this window, so the next request, whoever sends it, is over it (429,
    Retry-After until the window ends; anything within that earns a ban)."""
    other = build_binance(DriverSettings(KEY, SECRET, venue.url))
    other.fetch_balance()  # weight 20
    used = venue.usage()["addresses"]["127.0.0.1"][f"weight_{span(WEIGHT_WINDOW_S).lower()}"]
    operator(venue.url, "/_venue/limits", {"weight_per_minute": used})


def test_after_a_429_the_stream_sends_nothing_until_retry_after(tmp_path: Path) -> None:
    """A 429 for the address's weight pauses every request: the stream keeps its
    connection, sends no heartbeat until Retry-After (one would earn a ban), brings the
    events of the pause, and beats again after it."""
    with limited_venue(tmp_path, *SHORT_WEIGHT_WINDOW) as venue, \
            running_daemon(tmp_path, exchanges=entry(venue), tracking=PAUSED_STREAM) as daemon:
        client = daemon.client()
        wait_until(lambda: client.health()["streams"]["bx"]["live"], "the stream live")
        assert client.submit(resting_limit_buy(client_order_id="rest"))["status"] == "open"
        before = client.health()["streams"]["bx"]
        window_with(WEIGHT_WINDOW_S, SPENT_WINDOW_LEFT_S)
        spend_the_weight(venue)
        paused = wait_until(lambda: budget(client) if budget(client)["http_429"] else None,
                            "the daemon to meet the 429")
        # the next windows as before: after the pause nothing is refused any more
        operator(venue.url, "/_venue/limits", {"weight_per_minute": WEIGHT_LIMIT})
        assert not paused["banned"] and 0 < paused["paused_for_s"] <= WEIGHT_WINDOW_S, paused
        # filled in the pause: no read may go out, the stream alone tells of it
        operator(venue.url, "/_venue/trade",
                 {"symbol": "BTC/USD", "price": "1000", "amount": "0.01"})
        wait_until(lambda: client.status(client_order_id="rest")["status"] == "filled",
                   "the fill by the stream")
        assert budget(client)["paused_for_s"] > 0, "read after the pause, not streamed"
        beats = heartbeats(venue)
        wait_until(lambda: (view := budget(client))["paused_for_s"] == 0 or view["banned"],
                   "the pause over", attempts=1000)
        usage = venue.usage()
        # a heartbeat or a reconnection within Retry-After earns the address a ban
        assert (usage["http_429"], usage["http_418"]) == (1, 0), usage
        wait_until(lambda: heartbeats(venue) > beats, "a heartbeat after the pause")
        assert client.submit(market_buy(client_order_id="after"))["status"] == "filled"
        wait_until(lambda: client.health()["streams"]["bx"]["live"], "the stream live again")
        usage = venue.usage()
        assert (usage["http_429"], usage["http_418"]) == (1, 0), usage
        after = client.health()["streams"]["bx"]
        # quiet through a pause longer than stale_s, it kept its connection: a new one
        # would have cost a catch-up as the pause ended
        assert after["reconnects"] == before["reconnects"] and after["gaps"] == 0, after


def heartbeats(venue: VenueProcess) -> int:
    """The stream's heartbeats the venue has received."""
    return venue.requests().count(("WS", "ping"))


def test_a_ban_the_stream_meets_stops_every_request(tmp_path: Path) -> None:
    """Another program on the address earned it a ban; the daemon's REST is idle, its
    stream's heartbeat is the first to meet the 418: the exchange is paused for the ban,
    and nothing more goes out."""
    with limited_venue(tmp_path, "--weight-limit", "200") as venue, \
            running_daemon(tmp_path, exchanges=entry(venue), tracking=QUIET_STREAM) as daemon:
        client = daemon.client()
        wait_until(lambda: client.health()["streams"]["bx"]["live"], "the stream live")
        ban_the_address(venue)
        others = venue.usage()["http_418"]
        wait_until(lambda: venue.usage()["http_418"] > others, "the stream to meet the ban")
        wait_until(lambda: budget(client)["banned"], "the daemon to know of the ban")
        met = venue.usage()["http_418"]
        # still connected but quiet for stale_s (3 s) since its last frame (the 418):
        # heartbeats, one a second, would have gone out meanwhile and met the ban
        quiet = wait_until(lambda: stream_if_not_live(client), "the stream quiet for 3 s")
        assert quiet["connected"] and quiet["last_frame_age_s"] >= 3, quiet
        assert venue.usage()["http_418"] == met


def stream_if_not_live(client: OrderdClient) -> dict[str, Any] | None:
    stream: dict[str, Any] = client.health()["streams"]["bx"]
    return None if stream["live"] else stream


def open_refused(venue: VenueProcess, markets: Mapping[str, Any],
                 budget: RequestBudget) -> None:
    """Open the daemon's stream client on `venue` with `budget`, which must fail."""
    async def main() -> bool:
        connection = build_binance_pro(DriverSettings(KEY, SECRET, venue.url),
                                       lambda _event: None, budget)
        try:
            await connection.open(markets)
        except Exception:  # noqa: BLE001 - any failure: the venue says which
            return False
        finally:
            await connection.close()
        return True

    assert not asyncio.run(main()), "the stream opened"


def markets_of(venue: VenueProcess) -> dict[str, Any]:
    """The venue's markets, loaded as a worker would, so the stream asks for none."""
    rest = build_binance(DriverSettings(KEY, SECRET, venue.url))
    markets: dict[str, Any] = rest.load_markets()
    return markets


def test_a_refused_connection_pauses_the_budget(tmp_path: Path) -> None:
    """A banned address's WebSocket upgrade is answered 418 with Retry-After."""
    with limited_venue(tmp_path, "--weight-limit", "200") as venue:
        markets = markets_of(venue)
        ban_the_address(venue)
        refused = venue.usage()
        budget = RequestBudget("bx")
        open_refused(venue, markets, budget)
        assert venue.usage()["http_418"] == refused["http_418"] + 1
        banned_for = refused["addresses"]["127.0.0.1"]["banned_for_s"]
        view = budget.view()
        assert (view["banned"], view["http_418"]) == (True, 1), view
        assert banned_for - 5 < view["paused_for_s"] <= banned_for, (view, banned_for)
        assert budget.counts.requests == {"GET /ws-api/v3": 1}


def test_a_refused_subscribe_pauses_the_budget(tmp_path: Path) -> None:
    """The upgrade (weight 2) fits in the minute's weight, the subscribe (2 more) does
    not: a 429 whose Retry-After is in the error's data, as binance sends it."""
    with limited_venue(tmp_path) as venue:
        markets = markets_of(venue)
        window_with(60, 5)
        operator(venue.url, "/_venue/limits", {"weight_per_minute": 3, "reset": True})
        budget = RequestBudget("bx")
        open_refused(venue, markets, budget)
        minute_left = 60 - time.time() % 60
        usage = venue.usage()
        assert (usage["http_429"], usage["http_418"]) == (1, 0), usage
        view = budget.view()
        assert (view["banned"], view["http_429"]) == (False, 1), view
        assert minute_left - 1 < view["paused_for_s"] <= minute_left + 1, (view, minute_left)
        assert budget.counts.requests == {"GET /ws-api/v3": 1,
                                          "WS userDataStream.subscribe.signature": 1}
