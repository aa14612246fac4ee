"""The paper venue and its ccxt-style client."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ccxt.base.errors import (
    ArgumentsRequired,
    BadSymbol,
    DuplicateOrderId,
    ExchangeNotAvailable,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    OrderImmediatelyFillable,
    OrderNotFound,
    RequestTimeout,
)

from actors.exchange.drivers.paper import PaperExchange, PaperFaults, PaperVenue
from tests.helpers import ROOT
from tests.venue_support import FakeClock

BTC = "BTC/USD"


class Sleeps:
    """Records requested sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def venue(tmp_path: Path, clock: FakeClock) -> PaperVenue:
    return PaperVenue(tmp_path / "paper.db", seed=7, clock=clock)


@pytest.fixture
def ex(venue: PaperVenue, clock: FakeClock) -> PaperExchange:
    return PaperExchange(venue, clock=clock, sleep=Sleeps())


def usd(ex: PaperExchange) -> dict[str, float]:
    balance: dict[str, float] = ex.fetch_balance()["USD"]
    return balance


# -- markets and plain trading ----------------------------------------------------


def test_load_markets_gives_ccxt_structure(ex: PaperExchange) -> None:
    markets = ex.load_markets()
    assert set(markets) == {"BTC/USD", "ETH/USD", "SOL/USD"}
    assert ex.markets is markets
    btc = markets[BTC]
    assert (btc["base"], btc["quote"], btc["type"], btc["spot"], btc["active"]) == (
        "BTC", "USD", "spot", True, True,
    )
    assert btc["precision"] == {"amount": 0.00001, "price": 0.01}
    assert btc["limits"]["amount"]["min"] == 0.00001
    assert btc["limits"]["cost"] == {"min": 5.0, "max": None}
    assert markets["ETH/USD"]["precision"]["amount"] == 0.0001
    assert markets["SOL/USD"]["precision"]["amount"] == 0.01


def test_market_buy_fills_with_fee_and_moves_balances(ex: PaperExchange, venue: PaperVenue) -> None:
    price = venue.price(BTC)
    order = ex.create_order(BTC, "market", "buy", "0.01")
    cost = Decimal("0.01") * price
    fee = cost * Decimal("0.001")
    assert order["status"] == "closed"
    assert order["filled"] == 0.01 and order["remaining"] == 0
    assert order["average"] == float(price)
    assert order["cost"] == float(cost)
    assert order["fee"] == {"currency": "USD", "cost": float(fee)}
    assert order["datetime"] == "2023-11-14T22:13:20.000Z"
    balance = ex.fetch_balance()
    assert balance["USD"]["free"] == float(Decimal(100000) - cost - fee)
    assert balance["BTC"]["free"] == 10.01
    assert balance["total"]["BTC"] == 10.01
    (trade,) = ex.fetch_my_trades()
    assert trade["order"] == order["id"]
    assert trade["info"]["clientOrderId"] == order["clientOrderId"]
    assert (trade["side"], trade["takerOrMaker"], trade["amount"]) == ("buy", "taker", 0.01)
    assert trade["fee"] == {"currency": "USD", "cost": float(fee)}


def test_market_sell_credits_quote_minus_fee(ex: PaperExchange, venue: PaperVenue) -> None:
    price = venue.price("SOL/USD")
    ex.create_order("SOL/USD", "market", "sell", 2)
    proceeds = 2 * price * Decimal("0.999")
    balance = ex.fetch_balance()
    assert balance["SOL"]["free"] == 998
    assert balance["USD"]["free"] == float(Decimal(100000) + proceeds)


def test_amount_and_price_accept_float_int_str_decimal(ex: PaperExchange) -> None:
    for amount in (0.1, 1, "0.1", Decimal("0.1")):
        order = ex.create_order("ETH/USD", "limit", "buy", amount, 1000.01)
        assert order["amount"] == float(amount)
        assert order["price"] == 1000.01


def test_limit_buy_rests_reserves_and_fills_when_price_crosses(
    ex: PaperExchange, venue: PaperVenue
) -> None:
    order = ex.create_order(BTC, "limit", "buy", "0.1", "90000")
    assert order["status"] == "open" and order["filled"] == 0 and order["fee"] is None
    reserved = Decimal("9000") * Decimal("1.001")  # notional plus the maker fee
    assert usd(ex) == {
        "free": float(Decimal(100000) - reserved),
        "used": float(reserved),
        "total": 100000.0,
    }
    assert [o["id"] for o in ex.fetch_open_orders()] == [order["id"]]

    venue.set_price(BTC, Decimal("90000.01"))  # not crossed yet
    assert ex.fetch_order(order["id"])["status"] == "open"
    venue.set_price(BTC, Decimal("89000"))
    filled = ex.fetch_order(order["id"])
    assert filled["status"] == "closed"
    assert filled["average"] == 90000.0  # at its limit, not the lower price
    assert filled["fee"] == {"currency": "USD", "cost": 9.0}
    assert usd(ex) == {"free": 100000 - 9009.0, "used": 0.0, "total": 100000 - 9009.0}
    assert ex.fetch_balance()["BTC"]["free"] == 10.1
    assert ex.fetch_open_orders() == []
    (trade,) = ex.fetch_my_trades()
    assert trade["takerOrMaker"] == "maker" and trade["price"] == 90000.0


def test_limit_sell_reserves_base_and_fills_when_price_rises(
    ex: PaperExchange, venue: PaperVenue
) -> None:
    order = ex.create_order("ETH/USD", "limit", "sell", "1.5", "4000")
    eth = ex.fetch_balance()["ETH"]
    assert (eth["free"], eth["used"]) == (98.5, 1.5)
    venue.set_price("ETH/USD", Decimal("4000"))
    assert ex.fetch_order(order["id"])["status"] == "closed"
    balance = ex.fetch_balance()
    assert (balance["ETH"]["free"], balance["ETH"]["used"]) == (98.5, 0.0)
    assert balance["USD"]["free"] == 100000 + 6000 - 6.0


def test_marketable_limit_fills_at_once_as_taker_at_current_price(
    ex: PaperExchange, venue: PaperVenue
) -> None:
    venue.set_price(BTC, Decimal("95000"))
    buy = ex.create_order(BTC, "limit", "buy", "0.01", "96000")
    assert buy["status"] == "closed" and buy["average"] == 95000.0
    sell = ex.create_order(BTC, "limit", "sell", "0.01", "94000")
    assert sell["status"] == "closed" and sell["average"] == 95000.0
    assert {t["takerOrMaker"] for t in ex.fetch_my_trades()} == {"taker"}


def test_random_walk_fills_resting_order_lazily(
    ex: PaperExchange, venue: PaperVenue, clock: FakeClock
) -> None:
    start = venue.price("SOL/USD")
    order = ex.create_order("SOL/USD", "limit", "buy", 1, start - Decimal("0.01"))
    for _ in range(10_000):
        clock.advance(1)
        if ex.fetch_order(order["id"])["status"] == "closed":
            break
    assert ex.fetch_order(order["id"])["status"] == "closed"
    assert venue.price("SOL/USD") != start


@pytest.mark.parametrize("tif", ["IOC", "FOK"])
def test_ioc_and_fok_limit_that_cannot_fill_expires(ex: PaperExchange, tif: str) -> None:
    order = ex.create_order(BTC, "limit", "buy", "0.01", "1000", {"timeInForce": tif})
    assert (order["status"], order["filled"], order["timeInForce"]) == ("expired", 0, tif)
    assert usd(ex)["used"] == 0
    assert ex.fetch_open_orders() == []


def test_post_only_rests_or_is_refused_never_takes(ex: PaperExchange, venue: PaperVenue) -> None:
    venue.set_price(BTC, Decimal("95000"))
    rests = ex.create_order(BTC, "limit", "buy", "0.01", "94000", {"postOnly": True})
    assert rests["status"] == "open" and usd(ex)["used"] > 0
    for side, price in (("buy", "95000"), ("sell", "95000")):
        with pytest.raises(OrderImmediatelyFillable, match="would immediately match"):
            ex.create_order(BTC, "limit", side, "0.01", price, {"postOnly": True})
    for args in ((BTC, "market", "buy", "0.01", None, {"postOnly": True}),
                 (BTC, "limit", "buy", "0.01", "90000", {"postOnly": True, "timeInForce": "IOC"})):
        with pytest.raises(InvalidOrder, match="postOnly"):
            ex.create_order(*args)
    assert [o["id"] for o in venue.all_orders()] == [rests["id"]], "refused: nothing booked"
    assert ex.fetch_my_trades() == []


def test_cancel_releases_reservation(ex: PaperExchange) -> None:
    order = ex.create_order(BTC, "limit", "buy", "0.1", "90000")
    canceled = ex.cancel_order(order["id"], BTC)
    assert canceled["status"] == "canceled"
    assert usd(ex) == {"free": 100000.0, "used": 0.0, "total": 100000.0}
    assert ex.fetch_open_orders() == []


def test_cancel_closed_order_is_invalid_and_unknown_is_not_found(ex: PaperExchange) -> None:
    order = ex.create_order(BTC, "market", "buy", "0.01")
    with pytest.raises(InvalidOrder, match="not open"):
        ex.cancel_order(order["id"])
    with pytest.raises(OrderNotFound):
        ex.cancel_order("999")
    with pytest.raises(OrderNotFound):
        ex.fetch_order("999")
    with pytest.raises(OrderNotFound):
        ex.fetch_order("not-a-number")


def test_cancel_on_venue_is_seen_by_client(ex: PaperExchange, venue: PaperVenue) -> None:
    order = ex.create_order(BTC, "limit", "sell", "1", "99000")
    venue.cancel_on_venue(order["id"])
    assert ex.fetch_order(order["id"])["status"] == "canceled"
    assert ex.fetch_balance()["BTC"] == {"free": 10.0, "used": 0.0, "total": 10.0}


# -- client order ids ---------------------------------------------------------------


def test_duplicate_open_client_id_refused_reuse_after_fill_allowed(
    ex: PaperExchange, venue: PaperVenue
) -> None:
    params = {"clientOrderId": "abc-1"}
    first = ex.create_order(BTC, "limit", "buy", "0.01", "90000", params)
    with pytest.raises(DuplicateOrderId, match="duplicate clientOrderId"):
        ex.create_order(BTC, "limit", "buy", "0.01", "90000", params)
    assert issubclass(DuplicateOrderId, InvalidOrder)
    venue.set_price(BTC, Decimal("89000"))  # fills the first
    second = ex.create_order(BTC, "limit", "buy", "0.01", "80000", params)
    assert second["clientOrderId"] == "abc-1" and second["id"] != first["id"]
    ex.cancel_order(second["id"])
    third = ex.create_order(BTC, "market", "buy", "0.01", None, params)
    assert third["status"] == "closed"


def test_client_id_is_per_account(venue: PaperVenue, clock: FakeClock) -> None:
    alice = PaperExchange(venue, account="alice", clock=clock)
    bob = PaperExchange(venue, account="bob", clock=clock)
    params = {"clientOrderId": "same"}
    a = alice.create_order(BTC, "limit", "buy", "0.01", "90000", params)
    b = bob.create_order(BTC, "limit", "buy", "0.01", "90000", params)
    assert alice.fetch_order(None, params=params)["id"] == a["id"]
    assert bob.fetch_order(None, params=params)["id"] == b["id"]
    with pytest.raises(OrderNotFound):
        bob.fetch_order(a["id"])


def test_generated_client_ids_are_unique(ex: PaperExchange) -> None:
    ex.create_order(BTC, "limit", "buy", "0.01", "90000", {"clientOrderId": "paper-2"})
    generated = ex.create_order(BTC, "limit", "buy", "0.01", "90000")
    assert generated["clientOrderId"] not in ("", None, "paper-2")


def test_fetch_and_cancel_by_client_order_id(ex: PaperExchange, venue: PaperVenue) -> None:
    params = {"clientOrderId": "cid-9"}
    old = ex.create_order(BTC, "market", "buy", "0.01", None, params)
    new = ex.create_order(BTC, "limit", "buy", "0.01", "90000", params)
    assert ex.fetch_order(None, params=params)["id"] == new["id"]  # the most recent
    assert ex.fetch_order(old["id"])["clientOrderId"] == "cid-9"
    assert ex.cancel_order(None, BTC, params)["id"] == new["id"]
    with pytest.raises(OrderNotFound):
        ex.fetch_order(None, params={"clientOrderId": "nobody"})
    with pytest.raises(OrderNotFound):
        ex.fetch_order(new["id"], "ETH/USD")  # wrong symbol
    with pytest.raises(ArgumentsRequired):
        ex.fetch_order(None)


# -- rejections -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("DOGE/USD", "market", "buy", 1), BadSymbol, "DOGE/USD"),
        ((BTC, "market", "buy", 0), InvalidOrder, "positive"),
        ((BTC, "market", "buy", -1), InvalidOrder, "positive"),
        ((BTC, "market", "buy", "nan"), InvalidOrder, "finite"),
        ((BTC, "market", "buy", "abc"), InvalidOrder, "number"),
        ((BTC, "market", "buy", "0.000001"), InvalidOrder, "minimum"),
        ((BTC, "market", "buy", "0.000015"), InvalidOrder, "multiple"),
        (("SOL/USD", "limit", "buy", 1, "100.001"), InvalidOrder, "multiple"),
        ((BTC, "limit", "buy", "0.01", 0), InvalidOrder, "positive"),
        ((BTC, "limit", "buy", "0.01", -5), InvalidOrder, "positive"),
        ((BTC, "market", "buy", "0.00005"), InvalidOrder, "below the minimum 5"),
        ((BTC, "limit", "buy", "0.01"), InvalidOrder, "needs a price"),
        ((BTC, "market", "buy", "0.01", 95000), InvalidOrder, "no price"),
        ((BTC, "stop", "buy", "0.01"), InvalidOrder, "order type"),
        ((BTC, "market", "hold", "0.01"), InvalidOrder, "side"),
        ((BTC, "market", "buy", "2"), InsufficientFunds, "USD"),
        ((BTC, "limit", "buy", "2", "90000"), InsufficientFunds, "USD"),
        ((BTC, "market", "sell", "10.00001"), InsufficientFunds, "BTC"),
    ],
)
def test_rejections(
    ex: PaperExchange,
    venue: PaperVenue,
    args: tuple[Any, ...],
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        ex.create_order(*args)
    assert venue.all_orders() == []
    assert usd(ex) == {"free": 100000.0, "used": 0.0, "total": 100000.0}


def test_bad_time_in_force_and_client_id_rejected(ex: PaperExchange) -> None:
    with pytest.raises(InvalidOrder, match="timeInForce"):
        ex.create_order(BTC, "limit", "buy", "0.01", "90000", {"timeInForce": "GTX"})
    with pytest.raises(InvalidOrder, match="clientOrderId"):
        ex.create_order(BTC, "limit", "buy", "0.01", "90000", {"clientOrderId": "x" * 65})


def test_reserved_funds_are_not_free(ex: PaperExchange) -> None:
    ex.create_order(BTC, "limit", "buy", "1", "90000")  # holds 90,090 USD
    with pytest.raises(InsufficientFunds):
        ex.create_order(BTC, "limit", "buy", "0.2", "90000")


def test_unknown_symbol_on_fetches(ex: PaperExchange) -> None:
    with pytest.raises(BadSymbol):
        ex.fetch_open_orders("XRP/USD")
    with pytest.raises(BadSymbol):
        ex.fetch_my_trades("XRP/USD")


# -- listings -------------------------------------------------------------------------


def test_fetch_my_trades_since_is_inclusive_and_ordered(
    ex: PaperExchange, clock: FakeClock
) -> None:
    stamps = []
    for _ in range(4):
        stamps.append(ex.create_order("ETH/USD", "market", "buy", "0.01")["timestamp"])
        clock.advance(0.5)  # under a second: the price stays put
    trades = ex.fetch_my_trades(since=stamps[1])
    assert [t["timestamp"] for t in trades] == stamps[1:]
    assert ex.fetch_my_trades("ETH/USD", since=stamps[1], limit=2)[-1]["timestamp"] == stamps[2]
    assert [t["timestamp"] for t in ex.fetch_my_trades(limit=1)] == stamps[-1:]
    assert ex.fetch_my_trades(BTC) == []


def test_fetch_orders_and_open_orders_filter(ex: PaperExchange) -> None:
    resting = ex.create_order("SOL/USD", "limit", "buy", 1, 100)
    ex.create_order(BTC, "market", "buy", "0.01")
    assert [o["id"] for o in ex.fetch_open_orders()] == [resting["id"]]
    assert ex.fetch_open_orders(BTC) == []
    assert len(ex.fetch_orders()) == 2
    assert [o["symbol"] for o in ex.fetch_orders(BTC)] == [BTC]


def test_all_orders_spans_accounts(venue: PaperVenue, clock: FakeClock) -> None:
    for account in ("a", "b"):
        client = PaperExchange(venue, account=account, clock=clock)
        client.create_order(BTC, "market", "buy", "0.01")
    assert [o["id"] for o in venue.all_orders()] == ["1", "2"]


def test_orders_returned_are_copies(ex: PaperExchange) -> None:
    order = ex.create_order(BTC, "limit", "buy", "0.01", "90000")
    order["info"]["status"] = "tampered"
    assert ex.fetch_order(order["id"])["info"]["status"] == "open"


# -- prices ------------------------------------------------------------------------------


def test_prices_start_near_real_levels(venue: PaperVenue) -> None:
    assert venue.price(BTC) == 95000
    assert venue.price("ETH/USD") == 3300
    assert venue.price("SOL/USD") == 180


def test_price_walk_is_deterministic_for_seed_and_clock() -> None:
    def run(seed: int) -> list[Decimal]:
        clock = FakeClock()
        venue = PaperVenue(None, seed=seed, clock=clock)
        seen = []
        for step in (1, 1, 5, 0.5, 3600 * 24 * 365):  # a year's pause is one step
            clock.advance(step)
            seen.append(venue.price(BTC))
        return seen

    assert run(3) == run(3)
    assert run(3) != run(4)
    assert len(set(run(3))) > 1


def test_price_does_not_move_within_a_second_or_backwards(
    venue: PaperVenue, clock: FakeClock
) -> None:
    before = venue.price(BTC)
    clock.advance(0.9)
    assert venue.price(BTC) == before
    clock.advance(-100)
    assert venue.price(BTC) == before


def test_set_price_rejects_bad_prices(venue: PaperVenue) -> None:
    with pytest.raises(ValueError):
        venue.set_price(BTC, Decimal("-1"))
    with pytest.raises(ValueError):
        venue.set_price(BTC, Decimal("1.001"))
    with pytest.raises(BadSymbol):
        venue.set_price("XRP/USD", Decimal("1"))


# -- persistence -----------------------------------------------------------------------


def test_state_survives_a_new_venue_on_the_same_path(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "paper.db"
    venue = PaperVenue(path, seed=1, clock=clock)
    ex = PaperExchange(venue, clock=clock)
    ex.create_order(BTC, "market", "buy", "0.01", None, {"clientOrderId": "m1"})
    resting = ex.create_order(BTC, "limit", "buy", "0.1", "90000", {"clientOrderId": "r1"})
    clock.advance(30)
    price = venue.price(BTC)
    before = (venue.all_orders(), ex.fetch_balance(), ex.fetch_my_trades())
    # The first venue stays open: the second reads only what was committed.
    again = PaperVenue(path, seed=1, clock=clock)
    ex2 = PaperExchange(again, clock=clock)
    assert again.price(BTC) == price
    assert (again.all_orders(), ex2.fetch_balance(), ex2.fetch_my_trades()) == before
    with pytest.raises(DuplicateOrderId):
        ex2.create_order(BTC, "limit", "buy", "0.01", "90000", {"clientOrderId": "r1"})
    assert ex2.create_order(BTC, "market", "buy", "0.01")["id"] == "3"  # next id carried over
    again.set_price(BTC, Decimal("85000"))
    assert ex2.fetch_order(resting["id"])["status"] == "closed"
    assert [t["id"] for t in ex2.fetch_my_trades()] == ["1", "2", "3"]
    venue.close()
    again.close()


def test_price_walk_continues_identically_after_restart(tmp_path: Path) -> None:
    def prices(restart: bool) -> list[Decimal]:
        clock = FakeClock()
        path = tmp_path / f"walk-{restart}.db"
        venue = PaperVenue(path, seed=5, clock=clock)
        seen = []
        for i in range(6):
            if restart and i == 3:
                venue.close()
                venue = PaperVenue(path, seed=5, clock=clock)
            clock.advance(2)
            seen.append(venue.price("ETH/USD"))
        venue.close()
        return seen

    assert prices(restart=True) == prices(restart=False)


def run_killed(script: str) -> subprocess.CompletedProcess[bytes]:
    """Run `script` (which kills itself with SIGKILL) in a Python process of its own."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], env=env,
                            check=False, capture_output=True, timeout=120)
    assert result.returncode == -9, result.stderr.decode()
    return result


def test_kill_9_after_a_call_returned_keeps_its_effect(tmp_path: Path) -> None:
    path = tmp_path / "paper.db"
    run_killed(
        f"""
        import os, signal
        from pathlib import Path
        from actors.exchange.drivers.paper import PaperExchange, PaperVenue
        ex = PaperExchange(PaperVenue(Path({str(path)!r})))
        ex.create_order("BTC/USD", "market", "buy", "0.01", None, {{"clientOrderId": "k9"}})
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    ex = PaperExchange(PaperVenue(path))
    order = ex.fetch_order(None, params={"clientOrderId": "k9"})
    assert order["status"] == "closed"
    assert ex.fetch_balance()["BTC"]["free"] == 10.01


def test_kill_9_keeps_every_answered_order_of_concurrent_clients(tmp_path: Path) -> None:
    """Concurrent creates share commits; none is answered before it is on disk."""
    path = tmp_path / "paper.db"
    result = run_killed(
        f"""
        import os, signal, threading
        from pathlib import Path
        from actors.exchange.drivers.paper import PaperExchange, PaperVenue
        venue = PaperVenue(Path({str(path)!r}))
        answered = threading.Semaphore(0)

        def trade(name):
            ex = PaperExchange(venue)
            for i in range(100_000):
                cid = f"{{name}}-{{i}}"
                ex.create_order("SOL/USD", "market", "buy", "0.1", None, {{"clientOrderId": cid}})
                os.write(1, f"{{cid}}\\n".encode())
                answered.release()

        for name in ("a", "b", "c", "d", "e", "f"):
            threading.Thread(target=trade, args=(name,), daemon=True).start()
        for _ in range(600):
            answered.acquire()
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    answered = result.stdout.decode().split()
    assert len(answered) >= 600
    venue = PaperVenue(path)
    booked = {o["clientOrderId"] for o in venue.all_orders()}
    assert set(answered) <= booked
    venue.close()


def test_in_memory_venue_needs_no_path(clock: FakeClock) -> None:
    ex = PaperExchange(PaperVenue(None, clock=clock), clock=clock)
    assert ex.create_order(BTC, "market", "buy", "0.01")["status"] == "closed"


# -- faults ---------------------------------------------------------------------------------


def test_error_rate_one_raises_transient_errors_and_books_nothing(
    venue: PaperVenue, clock: FakeClock
) -> None:
    ex = PaperExchange(venue, faults=PaperFaults(error_rate=1), clock=clock)
    kinds = []
    for _ in range(3):
        with pytest.raises(NetworkError) as caught:
            ex.create_order(BTC, "market", "buy", "0.01")
        kinds.append(type(caught.value))
    assert kinds == [RequestTimeout, ExchangeNotAvailable, NetworkError]
    with pytest.raises(NetworkError):
        ex.fetch_balance()
    assert venue.all_orders() == []


def test_ambiguous_rate_one_books_then_times_out(venue: PaperVenue, clock: FakeClock) -> None:
    ex = PaperExchange(venue, faults=PaperFaults(ambiguous_rate=1), clock=clock)
    with pytest.raises(RequestTimeout):
        ex.create_order(BTC, "market", "buy", "0.01", None, {"clientOrderId": "amb"})
    (order,) = venue.all_orders()
    assert order["clientOrderId"] == "amb" and order["status"] == "closed"
    assert ex.fetch_order(None, params={"clientOrderId": "amb"})["id"] == order["id"]


def test_reject_rate_one_refuses_without_booking(venue: PaperVenue, clock: FakeClock) -> None:
    ex = PaperExchange(venue, faults=PaperFaults(reject_rate=1), clock=clock)
    with pytest.raises(InvalidOrder, match="rejected by venue"):
        ex.create_order(BTC, "market", "buy", "0.01")
    assert venue.all_orders() == []
    assert ex.fetch_balance()["BTC"]["free"] == 10  # other requests are unaffected


def test_outage_window_follows_the_clock(venue: PaperVenue, clock: FakeClock) -> None:
    faults = PaperFaults(outage_after_s=10, outage_duration_s=5)
    ex = PaperExchange(venue, faults=faults, clock=clock)
    ex.fetch_balance()
    clock.advance(10)
    with pytest.raises(ExchangeNotAvailable, match="outage"):
        ex.create_order(BTC, "market", "buy", "0.01")
    clock.advance(4.999)
    with pytest.raises(ExchangeNotAvailable):
        ex.fetch_open_orders()
    clock.advance(0.001)
    assert ex.create_order(BTC, "market", "buy", "0.01")["status"] == "closed"
    assert len(venue.all_orders()) == 1


def test_outage_file_holds_an_outage_while_it_is_there(venue: PaperVenue, clock: FakeClock,
                                                       tmp_path: Path) -> None:
    flag = tmp_path / "down"
    ex = PaperExchange(venue, faults=PaperFaults(outage_file=str(flag)), clock=clock)
    ex.fetch_balance()
    flag.touch()
    assert ex.in_outage()
    with pytest.raises(ExchangeNotAvailable, match="outage"):
        ex.create_order(BTC, "market", "buy", "0.01")
    clock.advance(3600)  # no clock ends it
    with pytest.raises(ExchangeNotAvailable):
        ex.fetch_open_orders()
    flag.unlink()
    assert ex.create_order(BTC, "market", "buy", "0.01")["status"] == "closed"
    assert len(venue.all_orders()) == 1


def test_latency_sleeps_before_each_request(venue: PaperVenue, clock: FakeClock) -> None:
    sleeps = Sleeps()
    ex = PaperExchange(venue, faults=PaperFaults(latency_ms=250), sleep=sleeps, clock=clock)
    ex.fetch_balance()
    ex.create_order(BTC, "market", "buy", "0.01")
    ex.load_markets()
    ex.load_markets()  # cached: no request
    assert sleeps.calls == [0.25, 0.25, 0.25]


def test_faults_are_deterministic_for_a_seed(clock: FakeClock) -> None:
    def outcomes(seed: int) -> list[str]:
        venue = PaperVenue(None, clock=clock)
        faults = PaperFaults(error_rate=0.3, ambiguous_rate=0.3, reject_rate=0.2, seed=seed)
        ex = PaperExchange(venue, faults=faults, clock=clock)
        seen = []
        for _ in range(40):
            try:
                ex.create_order(BTC, "market", "buy", "0.0001")
                seen.append("ok")
            except Exception as error:  # noqa: BLE001 - the kind is what is compared
                seen.append(type(error).__name__)
        return seen

    first = outcomes(11)
    assert first == outcomes(11)
    assert first != outcomes(12)
    assert {"ok", "InvalidOrder", "RequestTimeout"} <= set(first)


def test_fault_rates_are_validated() -> None:
    with pytest.raises(ValueError):
        PaperFaults(error_rate=1.5)
    with pytest.raises(ValueError):
        PaperFaults(latency_ms=-1)
    with pytest.raises(ValueError, match="outage_file: must be an absolute path"):
        PaperFaults(outage_file="down")


# -- concurrency ------------------------------------------------------------------------------


def test_two_threads_on_one_venue_record_every_order_with_unique_ids(tmp_path: Path) -> None:
    venue = PaperVenue(tmp_path / "paper.db")
    per_thread = 200
    results: dict[str, list[dict[str, Any]]] = {}

    def trade(name: str) -> None:
        ex = PaperExchange(venue)
        results[name] = []
        for i in range(per_thread):
            params = {"clientOrderId": f"{name}-{i}"}
            results[name].append(ex.create_order("SOL/USD", "market", "buy", "0.1", None, params))

    threads = [threading.Thread(target=trade, args=(name,)) for name in ("t1", "t2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [o["id"] for orders in results.values() for o in orders]
    assert len(ids) == len(set(ids)) == 2 * per_thread
    assert sorted(o["id"] for o in venue.all_orders()) == sorted(ids)
    fresh = PaperExchange(PaperVenue(tmp_path / "paper.db"))
    assert len(fresh.fetch_my_trades()) == 2 * per_thread
    assert fresh.fetch_balance()["SOL"]["free"] == pytest.approx(1000 + 2 * per_thread * 0.1)


# -- an operator's trade: partial fills ---------------------------------------------

def test_trade_fills_crossed_orders_best_price_then_oldest_partly_where_it_ends(
    ex: PaperExchange, venue: PaperVenue
) -> None:
    older = ex.create_order("SOL/USD", "limit", "buy", "1", "100")
    newer = ex.create_order("SOL/USD", "limit", "buy", "1", "100")
    best = ex.create_order("SOL/USD", "limit", "buy", "0.5", "101")
    below = ex.create_order("SOL/USD", "limit", "buy", "1", "98")  # not crossed by 99
    trades = venue.trade("SOL/USD", Decimal("99"), Decimal("1.8"))
    assert [(t["order"], t["amount"], t["price"]) for t in trades] == [
        (best["id"], 0.5, 101.0), (older["id"], 1.0, 100.0), (newer["id"], 0.3, 100.0)]
    assert len({t["id"] for t in trades}) == 3
    assert all(t["takerOrMaker"] == "maker" for t in trades)
    assert ex.fetch_order(best["id"])["status"] == "closed"
    assert ex.fetch_order(older["id"])["status"] == "closed"
    part = ex.fetch_order(newer["id"])
    assert (part["status"], part["filled"], part["remaining"]) == ("open", 0.3, 0.7)
    assert part["fee"] == {"currency": "USD", "cost": float(Decimal("30") * Decimal("0.001"))}
    assert ex.fetch_order(below["id"])["filled"] == 0
    assert venue.price("SOL/USD") != Decimal("99")  # a trade leaves the walk alone


def test_partial_fills_add_up_and_move_balances_per_trade(
    ex: PaperExchange, venue: PaperVenue
) -> None:
    order = ex.create_order("SOL/USD", "limit", "buy", "1", "100")
    held = Decimal("100") * Decimal("1.001")
    start = usd(ex)
    venue.trade("SOL/USD", Decimal("99"), Decimal("0.25"))
    part = Decimal("25") * Decimal("1.001")  # what the fill cost with its fee
    assert usd(ex) == {"free": start["free"], "used": float(held - part),
                       "total": float(Decimal(start["total"]) - part)}
    assert ex.fetch_balance()["SOL"]["free"] == 1000.25
    venue.trade("SOL/USD", Decimal("99"), Decimal("5"))  # more than remains: the rest
    done = ex.fetch_order(order["id"])
    assert (done["status"], done["filled"], done["average"]) == ("closed", 1.0, 100.0)
    assert done["fee"] == {"currency": "USD", "cost": 0.1}
    assert usd(ex)["used"] == 0.0 and usd(ex)["total"] == start["total"] - 100.1
    trades = ex.fetch_order_trades(order["id"])
    assert [t["amount"] for t in trades] == [0.25, 0.75]
    assert sum(t["fee"]["cost"] for t in trades) == pytest.approx(0.1)


def test_partly_filled_order_cancels_keeping_its_fills(
    ex: PaperExchange, venue: PaperVenue
) -> None:
    order = ex.create_order("SOL/USD", "limit", "sell", "2", "200")
    venue.trade("SOL/USD", Decimal("201"), Decimal("0.5"))
    canceled = ex.cancel_order(order["id"])
    assert (canceled["status"], canceled["filled"]) == ("canceled", 0.5)
    sol = ex.fetch_balance()["SOL"]
    assert (sol["free"], sol["used"]) == (999.5, 0.0)


def test_trade_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    venue = PaperVenue(tmp_path / "v.db", seed=7, clock=clock)
    ex = PaperExchange(venue, clock=clock, sleep=Sleeps())
    order = ex.create_order("SOL/USD", "limit", "buy", "1", "100")
    venue.trade("SOL/USD", Decimal("99"), Decimal("0.4"))
    venue.close()
    again = PaperVenue(tmp_path / "v.db", seed=7, clock=clock)
    ex = PaperExchange(again, clock=clock, sleep=Sleeps())
    kept = ex.fetch_order(order["id"])
    assert (kept["status"], kept["filled"]) == ("open", 0.4)
    trades = again.trade("SOL/USD", Decimal("99"), Decimal("1"))
    assert [t["amount"] for t in trades] == [0.6]
    assert ex.fetch_order(order["id"])["status"] == "closed"


@pytest.mark.parametrize("price, amount", [("99.001", "1"), ("0", "1"), ("99", "0"),
                                           ("99", "0.001"), ("99", "-1")])
def test_trade_refuses_off_grid_or_non_positive_terms(
    venue: PaperVenue, price: str, amount: str
) -> None:
    with pytest.raises(ValueError):
        venue.trade("SOL/USD", Decimal(price), Decimal(amount))
