"""orderd spends a venue's request budget like money: a real daemon (binance driver) on
`orderd paper-venue` with small limits never earns a 418, sends creates before lookups,
waits out a 429, refuses what the order count cannot take, and shares the address's
weight with a second daemon by following the venue's headers."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from ccxt.base.errors import DDoSProtection

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from protocol.client import OrderdClient
from protocol.errors import ProtocolError
from tests.helpers import (
    KEY,
    SECRET,
    VenueProcess,
    market_buy,
    resting_limit_buy,
    running_daemon,
    wait_until,
)
from tests.stream_support import operator
from venue.weights import span

WEIGHT_300 = ("--weight-limit", "300")
TEN_ORDERS = ("--orders-per-10s", "10")
ORDERS_WINDOW_S = 3
SHORT_ORDERS_WINDOW = ("--orders-window-s", str(ORDERS_WINDOW_S))
"""An orders window that ends within seconds, so a -1015's Retry-After is too. A test
starts its steps up to that 429 (about 30 ms; ten times that with both cores busy) with
at least 2 s of the window left (`window_with`)."""


@contextmanager
def limited_venue(tmp_path: Path, *flags: str) -> Iterator[VenueProcess]:
    venue = VenueProcess(tmp_path / "venue", *flags)
    try:
        yield venue
    finally:
        venue.stop()


NO_STREAM = "stream = false\n"
"""What is counted here is REST's weight: no user-data stream beside it."""


def entry(venue: VenueProcess) -> str:
    return (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
            f'api_key = "{KEY}"\nsecret = "{SECRET}"\n')


def window_with(seconds: int, left: float) -> None:
    """Wait until the venue's current window (calendar-aligned, as binance's) has at least
    `left` seconds to go, so what a test counts stays in one window."""
    wait_until(lambda: seconds - time.time() % seconds >= left,
               f"a {seconds} s window with {left} s left", attempts=int(seconds * 110))


def fresh_window(venue: VenueProcess, length: str, least_s: int) -> int:
    """Tell the venue a window (`length`: weight_window_s or orders_window_s) of at least
    `least_s` that began less than a tenth of it ago (the first such length from `least_s`
    on), before a daemon reads it from exchangeInfo: what a test counts from here,
    start-ups too, stays in that window, without waiting for a calendar one to turn.
    Its length."""
    now = time.time()
    seconds = next(s for s in itertools.count(least_s) if now % s <= s / 10)
    operator(venue.url, "/_venue/limits", {length: seconds})
    return seconds


def fresh_weight_window(venue: VenueProcess, least_s: int) -> str:
    """A fresh weight window (`fresh_window`): tracking's pace sees the start of a window,
    as in the first seconds of binance's minute. The usage key of its weight."""
    return f"weight_{span(fresh_window(venue, 'weight_window_s', least_s)).lower()}"


def budget(client: OrderdClient) -> dict[str, Any]:
    view: dict[str, Any] = client.health()["budgets"]["bx"]
    return view


def no_refusals(venue: VenueProcess) -> None:
    usage = venue.usage()
    assert (usage["http_429"], usage["http_418"]) == (0, 0), usage


def placed_once(venue: VenueProcess, *ids: str) -> None:
    on_venue = [order["clientOrderId"] for order in venue.orders()]
    for cid in ids:
        assert on_venue.count(cid) == 1, cid


def rest(client: OrderdClient, prefix: str, count: int) -> list[str]:
    ids = [f"{prefix}-{i}" for i in range(count)]
    for cid in ids:
        assert client.submit(resting_limit_buy(client_order_id=cid))["status"] == "open"
    return ids


def read_balances(client: OrderdClient) -> None:
    """Spend most of the lookups' share on balance reads (weight 20 each), leaving room
    for two reads of tracking in flight: tracking (slowed by then) spends the rest."""
    while (view := budget(client))["weight_used"] + 20 + 12 <= view["lookup_limit"]:
        client.call("balance")


def lookups_spent(client: OrderdClient) -> dict[str, Any] | None:
    """The budget once tracking has used the weight lookups may use: a symbol's open
    orders (weight 6, what tracking reads) no longer fit."""
    view = budget(client)
    return view if view["weight_used"] + 6 > view["lookup_limit"] else None


def test_tracking_spends_the_lookups_share_creates_still_go_at_once(tmp_path: Path) -> None:
    with limited_venue(tmp_path, *WEIGHT_300, *TEN_ORDERS) as venue:
        fresh_weight_window(venue, 120)  # the start-up, then 3 s (both cores busy: 30 s)
        with running_daemon(tmp_path, exchanges=entry(venue), tracking=NO_STREAM) as daemon:
            tracking_spends_the_lookups_share(venue, daemon.client())


def tracking_spends_the_lookups_share(venue: VenueProcess, client: OrderdClient) -> None:
    """Tracking spends what lookups may use, creates still go at once, nothing is refused."""
    resting = rest(client, "rest", 6)  # tracked: their symbol read every 0.2 s
    read_balances(client)
    spent = wait_until(lambda: lookups_spent(client), "the lookups' share spent")
    assert (spent["weight_limit"], spent["lookup_limit"]) == (300, 225)
    started = time.monotonic()
    for i in range(3):
        order = client.submit(market_buy(client_order_id=f"first-{i}"))
        assert order["status"] == "filled"  # not held behind the lookups
    assert time.monotonic() - started < 3.0
    # the creates were charged beyond where lookups had to stop: the reserve
    assert budget(client)["weight_used"] >= spent["weight_used"] + 3
    time.sleep(1.0)  # tracking goes on asking: the budget keeps saying no
    no_refusals(venue)
    placed_once(venue, *resting, *(f"first-{i}" for i in range(3)))
    assert budget(client)["weight_used"] <= 285  # 300 less the headroom


def test_an_order_count_429_holds_new_orders_for_retry_after_and_nothing_is_lost(
        tmp_path: Path) -> None:
    with limited_venue(tmp_path, *TEN_ORDERS, *SHORT_ORDERS_WINDOW) as venue, \
            running_daemon(tmp_path, exchanges=entry(venue), tracking=NO_STREAM) as daemon:
        client = daemon.client()
        rest(client, "rest", 2)  # tracked: requests would go out all the time
        other = build_binance(DriverSettings(KEY, SECRET, venue.url))
        other.load_markets()
        window_with(ORDERS_WINDOW_S, 2)
        counted = venue.usage()["accounts"]["default"]["orders_3s"]
        for _ in range(10 - counted):  # another process fills the account's order count
            other.create_order("BTC/USD", "limit", "buy", 0.01, 1000)  # with unfilled orders
        # our daemon did not know: its create is refused with 429 and Retry-After
        held = client.submit(market_buy(client_order_id="held"), wait="durable")
        assert held["status"] == "pending_submit"
        refused = wait_until(lambda: (client.status(client_order_id="held")["last_error"]
                                      or {}).get("code") == "rate_limited", "the 429")
        assert refused
        paused = budget(client)
        assert 0 < paused["orders_held_for_s"] <= ORDERS_WINDOW_S and paused["http_429"] == 1
        assert paused["paused_for_s"] == 0  # the count is of new orders: the rest goes on
        with pytest.raises(ProtocolError) as later:
            client.submit(market_buy(client_order_id="later"))
        assert later.value.code == "rate_limited"
        assert later.value.retry_after_s is not None \
            and 0 < later.value.retry_after_s <= ORDERS_WINDOW_S
        with pytest.raises(ProtocolError) as missing:
            client.status(client_order_id="later")
        assert missing.value.code == "not_found"  # refused before it was recorded
        filled = wait_until(lambda: client.status(client_order_id="held")["status"]
                            == "filled", "the held order sent after the pause",
                            attempts=2000)
        assert filled
        usage = venue.usage()
        # a new order sent in the hold (a retry, another submit) would be refused again
        assert (usage["http_429"], usage["http_418"]) == (1, 0)
        placed_once(venue, "held")
        assert "later" not in [o["clientOrderId"] for o in venue.orders()]


def test_a_burst_beyond_the_order_count_is_refused_not_sent(tmp_path: Path) -> None:
    """Orders that rest stay unfilled: ten fill the venue's count, the rest of the burst
    is refused by the daemon before it is sent."""
    with limited_venue(tmp_path, *TEN_ORDERS) as venue:
        # the start-up and the burst (1 s; both cores busy: 10 s) in one window
        seconds = fresh_window(venue, "orders_window_s", 30)
        with running_daemon(tmp_path, exchanges=entry(venue), tracking=NO_STREAM) as daemon:
            burst_past_the_order_count(venue, daemon.client(), seconds)


def burst_past_the_order_count(venue: VenueProcess, client: OrderdClient,
                               seconds: int) -> None:
    """14 resting orders in one orders window of `seconds` whose limit is 10: 10 placed,
    4 refused by the daemon, none by the venue."""
    answers: list[dict[str, Any] | ProtocolError] = []
    for i in range(14):
        try:
            answers.append(client.submit(resting_limit_buy(client_order_id=f"burst-{i}")))
        except ProtocolError as exc:
            answers.append(exc)
    placed = [a for a in answers if isinstance(a, dict)]
    refused = [a for a in answers if isinstance(a, ProtocolError)]
    assert [a["status"] for a in placed] == ["open"] * 10
    assert {a.code for a in refused} == {"rate_limited"} and len(refused) == 4
    assert all(a.retry_after_s is not None and 0 < a.retry_after_s <= seconds
               for a in refused)
    assert budget(client)[f"orders_{span(seconds).lower()}"] == 10
    no_refusals(venue)
    placed_once(venue, *(a["client_order_id"] for a in placed))


def test_orders_that_fill_at_once_go_on_past_the_order_count(tmp_path: Path) -> None:
    """binance's order count is of unfilled orders: each market order's fill gives its
    place back, so a client may keep placing orders that fill at once faster than the
    count's limit (10 per window here). The daemon follows the venue's count down and
    refuses none of them while the venue takes them all."""
    with limited_venue(tmp_path, *TEN_ORDERS) as venue:
        # the start-up and the 25 orders (2 s; both cores busy: 20 s) in one window
        seconds = fresh_window(venue, "orders_window_s", 60)
        with running_daemon(tmp_path, exchanges=entry(venue), tracking=NO_STREAM) as daemon:
            place_past_the_order_count(venue, daemon.client(), seconds)


def place_past_the_order_count(venue: VenueProcess, client: OrderdClient,
                               seconds: int) -> None:
    """25 market orders in one orders window of `seconds` whose limit is 10: none refused,
    by the daemon or the venue."""
    started = time.time()
    for i in range(25):
        try:
            order = client.submit(market_buy(client_order_id=f"taker-{i}"))
        except ProtocolError as refused:
            pytest.fail(f"order {i + 1} refused: {refused}; the venue counts "
                        f"{venue.usage()['accounts']}, the daemon {budget(client)}")
        assert order["status"] == "filled"
    assert time.time() // seconds == started // seconds, \
        "the 25 orders took more than a window"
    no_refusals(venue)
    assert budget(client)[f"orders_{span(seconds).lower()}"] <= 1


def test_two_daemons_on_one_address_stay_under_its_limit_by_the_headers(
        tmp_path: Path) -> None:
    """Each alone would spend 225 weight a window on lookups (start-up, balances,
    tracking): together 450 of 300 unless each counts what the venue reports for the
    address."""
    with limited_venue(tmp_path, *WEIGHT_300) as venue:
        # both start-ups count too; they took 11 s, 23 s with both cores busy
        weight_used = fresh_weight_window(venue, 120)
        first_dir, second_dir = tmp_path / "a", tmp_path / "b"
        first_dir.mkdir()
        second_dir.mkdir()
        with running_daemon(first_dir, exchanges=entry(venue), tracking=NO_STREAM) as first, \
                running_daemon(second_dir, exchanges=entry(venue), tracking=NO_STREAM) as second:
            clients = [first.client(), second.client()]
            for name, client in zip("ab", clients, strict=True):
                rest(client, name, 3)
            for client in clients:
                read_balances(client)
            for client in clients:
                wait_until(lambda client=client: lookups_spent(client),  # type: ignore[misc]
                           "both daemons at the lookups' share")
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:  # both keep tracking: the venue says no?
                no_refusals(venue)
                time.sleep(0.2)
            used = venue.usage()["addresses"]["127.0.0.1"][weight_used]
            assert 200 <= used <= 300  # the limit was reached for, not passed
            for name, client in zip("ab", clients, strict=True):
                assert client.submit(market_buy(client_order_id=f"{name}-m"))["status"] \
                    == "filled"
            no_refusals(venue)


def ban_the_address(venue: VenueProcess) -> None:
    """Another program on the address earns it a ban: a 429, then the 418 for not
    waiting it out."""
    other = build_binance(DriverSettings(KEY, SECRET, venue.url))
    banned = False
    while not banned:
        try:
            other.fetch_balance()
        except DDoSProtection as answer:
            banned = " 418 " in str(answer)


def test_a_418_stops_the_exchange_until_the_ban_ends_and_pages(tmp_path: Path) -> None:
    """Another program on the address went on after a 429 and got the address banned:
    the daemon's next request meets the ban; it sends nothing more until it ends."""
    with limited_venue(tmp_path, "--weight-limit", "200") as venue, \
            running_daemon(tmp_path, exchanges=entry(venue), tracking=NO_STREAM,
                           extra='[alerts]\nfile = "alerts.jsonl"\n') as daemon:
        client = daemon.client()
        ban_the_address(venue)
        held = client.submit(market_buy(client_order_id="banned"), wait="durable")
        assert held["status"] == "pending_submit"
        wait_until(lambda: budget(client)["banned"], "the daemon to meet the ban")
        view = budget(client)
        assert 100 < view["paused_for_s"] <= 120 and view["http_418"] == 1
        alerts = wait_until(lambda: [json.loads(line) for line in
                                     (tmp_path / "alerts.jsonl").read_text().splitlines()
                                     if '"exchange_banned"' in line]
                            if (tmp_path / "alerts.jsonl").exists() else None,
                            "the exchange_banned alert")
        assert alerts[0]["severity"] == "critical" and alerts[0]["labels"]["exchange"] == "bx"
        with pytest.raises(ProtocolError) as refused:
            client.submit(market_buy(client_order_id="after"))
        assert refused.value.code == "rate_limited"
        assert refused.value.retry_after_s is not None and refused.value.retry_after_s > 100
        banned_answers = venue.usage()["http_418"]
        time.sleep(1.0)  # tracking and resends would go on: nothing may go out
        assert venue.usage()["http_418"] == banned_answers
        assert "banned" not in [o["clientOrderId"] for o in venue.orders()]
