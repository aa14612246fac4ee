"""Real ccxt.binance against the paper venue's HTTP server: dialect, errors, faults."""

from __future__ import annotations

import json
import queue
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import ccxt
import pytest
from ccxt.base.errors import (
    AuthenticationError,
    BadRequest,
    BadSymbol,
    DDoSProtection,
    DuplicateOrderId,
    ExchangeNotAvailable,
    InsufficientFunds,
    InvalidOrder,
    NetworkError,
    OperationFailed,
    OrderNotFound,
    RequestTimeout,
)

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance, lookup_params
from actors.exchange.errors import HALT, REJECT, RESOLVE, RETRY, classify
from tests.helpers import wait_until
from venue.binance.faults import VenueFaults
from venue.binance.server import PaperVenueServer
from venue.book import PaperVenue

KEY, SECRET = "test-key", "test-secret"
SHORT_TIMEOUT_MS = 400
WAIT_S = 10.0


def cid() -> str:
    return f"t-{uuid.uuid4().hex[:20]}"


def venue_call(server: PaperVenueServer, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(server.url + path, data=data),
                                timeout=WAIT_S) as answer:
        return json.loads(answer.read())


def on_venue(server: PaperVenueServer, client_order_id: str) -> list[dict[str, Any]]:
    return [o for o in venue_call(server, "/_venue/orders")["orders"]
            if o["clientOrderId"] == client_order_id]


def client_of(server: PaperVenueServer, secret: str = SECRET, key: str = KEY) -> Any:
    return build_binance(DriverSettings(key, secret, server.url))


def serve(faults: VenueFaults | None = None) -> PaperVenueServer:
    return PaperVenueServer(PaperVenue(None), api_key=KEY, secret=SECRET, faults=faults).start()


@pytest.fixture(scope="module")
def server() -> Iterator[PaperVenueServer]:
    running = serve()
    yield running
    running.stop()


@pytest.fixture
def client(server: PaperVenueServer) -> Iterator[Any]:
    exchange = client_of(server)
    exchange.load_markets()
    yield exchange
    venue_call(server, "/_venue/faults", {"script": []})


def test_load_markets_asks_only_exchange_info(server: PaperVenueServer) -> None:
    exchange = client_of(server)
    server.weighed.clear()
    markets = exchange.load_markets()
    assert [(m, p) for m, p, _ in server.weighed] == [("GET", "/api/v3/exchangeInfo")]
    assert {"BTC/USD", "ETH/USD", "SOL/USD"} <= set(markets)
    btc = markets["BTC/USD"]
    assert btc["id"] == "BTCUSD" and btc["spot"] is True
    assert btc["limits"]["cost"]["min"] == 5
    # ccxt rounds to the venue's own grid
    assert exchange.amount_to_precision("BTC/USD", 0.0123456) == "0.01234"
    assert exchange.price_to_precision("BTC/USD", 1000.124) == "1000.12"
    assert exchange.amount_to_precision("SOL/USD", 1.239) == "1.23"


def test_market_buy_fills_and_carries_our_client_id(server: PaperVenueServer,
                                                    client: Any) -> None:
    ours = cid()
    order = client.create_order("BTC/USD", "market", "buy", 0.01, None,
                                {"newClientOrderId": ours})
    assert order["status"] == "closed" and order["filled"] == 0.01
    assert order["clientOrderId"] == ours
    assert order["fee"]["currency"] == "USD" and order["fee"]["cost"] > 0
    [booked] = on_venue(server, ours)
    assert booked["orderId"] == int(order["id"]) and booked["status"] == "FILLED"
    assert booked["executedQty"] == "0.01"
    trades = client.fetch_my_trades("BTC/USD")
    assert next(t for t in trades if t["order"] == order["id"])["amount"] == 0.01


def test_limit_order_round_trip(client: Any) -> None:
    ours = cid()
    placed = client.create_order("BTC/USD", "limit", "buy", 0.01, 1000,
                                 {"newClientOrderId": ours})
    assert placed["status"] == "open" and placed["price"] == 1000
    assert client.fetch_order(placed["id"], "BTC/USD")["clientOrderId"] == ours
    for params in (lookup_params("binance", ours), {"clientOrderId": ours}):
        assert client.fetch_order(None, "BTC/USD", params)["id"] == placed["id"]
    assert placed["id"] in [o["id"] for o in client.fetch_open_orders()]
    assert placed["id"] in [o["id"] for o in client.fetch_open_orders("BTC/USD")]
    balance = client.fetch_balance()
    assert balance["USD"]["used"] > 0
    canceled = client.cancel_order(None, "BTC/USD", lookup_params("binance", ours))
    assert canceled["status"] == "canceled"
    assert placed["id"] not in [o["id"] for o in client.fetch_open_orders("BTC/USD")]
    every = {o["id"]: o["status"] for o in client.fetch_orders("BTC/USD")}
    assert every[placed["id"]] == "canceled"


def test_operator_price_and_cancel(server: PaperVenueServer, client: Any) -> None:
    resting = client.create_order("SOL/USD", "limit", "buy", 1, 100)
    venue_call(server, "/_venue/price", {"symbol": "SOLUSD", "price": "99.5"})
    filled = client.fetch_order(resting["id"], "SOL/USD")
    assert filled["status"] == "closed" and filled["average"] == 100
    venue_call(server, "/_venue/price", {"symbol": "SOL/USD", "price": "180"})
    other = client.create_order("SOL/USD", "limit", "buy", 1, 100)
    venue_call(server, "/_venue/cancel", {"orderId": other["id"]})
    assert client.fetch_order(other["id"], "SOL/USD")["status"] == "canceled"


def test_error_codes_map_to_the_classes_our_table_expects(client: Any) -> None:
    def raised(call: Callable[[], Any]) -> BaseException:
        with pytest.raises(ccxt.BaseError) as caught:
            call()
        error: BaseException = caught.value
        return error

    resting = client.create_order("BTC/USD", "limit", "buy", 0.01, 1000)
    client.cancel_order(resting["id"], "BTC/USD")
    live = client.create_order("BTC/USD", "limit", "buy", 0.01, 1000)
    cases: list[tuple[Callable[[], Any], type, str]] = [
        (lambda: client.create_order("BTC/USD", "market", "buy", 100, None),
         InsufficientFunds, REJECT),  # -2010 insufficient balance
        (lambda: client.fetch_order("999999", "BTC/USD"), OrderNotFound, REJECT),  # -2013
        (lambda: client.cancel_order(resting["id"], "BTC/USD"), OrderNotFound, REJECT),  # -2011
        (lambda: client.create_order("BTC/USD", "limit", "buy", 0.01, 1000,
                                     {"newClientOrderId": live["clientOrderId"]}),
         DuplicateOrderId, RESOLVE),  # -2010 Duplicate order sent.
        (lambda: client.create_order("BTC/USD", "limit", "buy", 0.00001, 1000),
         BadRequest, REJECT),  # -1013 Filter failure: NOTIONAL
        (lambda: client.privateGetOrder({"symbol": "DOGEUSD", "orderId": "1"}),
         BadSymbol, REJECT),  # -1121
    ]
    for call, expected, action in cases:
        error = raised(call)
        assert type(error) is expected, error
        assert classify(error).action == action
    client.cancel_order(live["id"], "BTC/USD")


def test_post_only_is_a_limit_maker_that_never_takes(server: PaperVenueServer,
                                                     client: Any) -> None:
    """ccxt sends postOnly as type LIMIT_MAKER: it rests, or binance refuses it (-2010)
    rather than let it take; with a timeInForce binance refuses the request (-1106)."""
    ours, taker = cid(), cid()
    rests = client.create_order("BTC/USD", "limit", "buy", 0.01, 1000,
                                {"postOnly": True, "newClientOrderId": ours})
    assert rests["status"] == "open" and rests["type"] == "limit"
    with pytest.raises(InvalidOrder, match="would immediately match") as caught:
        client.create_order("BTC/USD", "limit", "buy", 0.01, 1_000_000,
                            {"postOnly": True, "newClientOrderId": taker})
    assert classify(caught.value).action == REJECT and on_venue(server, taker) == []
    with pytest.raises(BadRequest, match="timeInForce"):
        client.create_order("BTC/USD", "limit", "buy", 0.01, 1000,
                            {"postOnly": True, "timeInForce": "GTC", "newClientOrderId": taker})
    assert on_venue(server, taker) == []
    client.cancel_order(rests["id"], "BTC/USD")


@pytest.mark.parametrize("key,secret", [(KEY, "wrong-secret"), ("wrong-key", SECRET)])
def test_bad_credentials_are_refused(server: PaperVenueServer, client: Any, key: str,
                                     secret: str) -> None:
    intruder = client_of(server, secret=secret, key=key)
    intruder.markets, intruder.markets_by_id = client.markets, client.markets_by_id
    ours = cid()
    with pytest.raises(AuthenticationError) as caught:
        intruder.create_order("BTC/USD", "market", "buy", 0.01, None,
                              {"newClientOrderId": ours})
    assert classify(caught.value).action == HALT
    assert on_venue(server, ours) == []


SCRIPTED = [
    # fault, the exact ccxt class, our action, booked on the venue
    ("drop_before_booking", NetworkError, RESOLVE, False),
    ("timeout_before_booking", RequestTimeout, RESOLVE, False),
    ("http_503", ExchangeNotAvailable, RESOLVE, False),
    ("http_429", DDoSProtection, RETRY, False),
    ("code_1001", OperationFailed, RESOLVE, False),
    ("reject", InvalidOrder, REJECT, False),
    ("drop_after_booking", NetworkError, RESOLVE, True),
    ("timeout_after_booking", RequestTimeout, RESOLVE, True),
    ("code_1007", RequestTimeout, RESOLVE, True),
]


@pytest.mark.parametrize("fault,expected,action,booked", SCRIPTED)
def test_scripted_create_fault(server: PaperVenueServer, client: Any, fault: str,
                               expected: type, action: str, booked: bool) -> None:
    venue_call(server, "/_venue/faults", {"script": [
        {"path": "/api/v3/order", "method": "POST", "fault": fault, "delay_s": 5,
         "retry_after_s": 7}]})
    client.timeout = SHORT_TIMEOUT_MS if "timeout" in fault else 10000
    ours = cid()
    with pytest.raises(ccxt.BaseError) as caught:
        client.create_order("BTC/USD", "limit", "buy", 0.01, 1000, {"newClientOrderId": ours})
    client.timeout = 10000
    error: BaseException = caught.value
    assert type(error) is expected, error
    assert classify(error).action == action
    assert venue_call(server, "/_venue/faults")["script"] == []
    if fault == "http_429":
        assert client.last_response_headers["Retry-After"] == "7"
    if booked:
        wait_until(lambda: len(on_venue(server, ours)) == 1, "the order on the venue")
        found = client.fetch_order(None, "BTC/USD", lookup_params("binance", ours))
        assert found["status"] == "open"
        client.cancel_order(found["id"], "BTC/USD")
    else:
        assert on_venue(server, ours) == []
        with pytest.raises(OrderNotFound):
            client.fetch_order(None, "BTC/USD", lookup_params("binance", ours))


def test_script_is_consumed_by_matching_requests_in_order(server: PaperVenueServer,
                                                          client: Any) -> None:
    venue_call(server, "/_venue/faults", {"script": [
        {"path": "/api/v3/order", "method": "POST", "fault": "http_503"},
        {"path": "/api/v3/account", "fault": "http_429"},
        {"path": "/api/v3/order", "method": "POST", "fault": "code_1007"}]})
    with pytest.raises(DDoSProtection):
        client.fetch_balance()
    with pytest.raises(ExchangeNotAvailable):
        client.create_order("BTC/USD", "limit", "buy", 0.01, 1000)
    client.fetch_balance()  # no fault left for /account
    ours = cid()
    with pytest.raises(RequestTimeout):
        client.create_order("BTC/USD", "limit", "buy", 0.01, 1000, {"newClientOrderId": ours})
    assert len(on_venue(server, ours)) == 1
    client.cancel_order(None, "BTC/USD", lookup_params("binance", ours))


def test_a_held_answer_waits_for_the_release(server: PaperVenueServer, client: Any) -> None:
    """A gate for tests: the create is booked on arrival, its answer sent only once
    `POST /_venue/release` lets it go, however long that takes."""
    venue_call(server, "/_venue/faults", {"script": [
        {"path": "/api/v3/order", "method": "POST", "fault": "hold_answer"}]})
    ours, answers = cid(), queue.Queue[dict[str, Any]]()
    sender = threading.Thread(target=lambda: answers.put(client.create_order(
        "BTC/USD", "limit", "buy", 0.01, 1000, {"newClientOrderId": ours})), daemon=True)
    sender.start()
    wait_until(lambda: venue_call(server, "/_venue/faults")["held"] == 1, "the held answer")
    assert len(on_venue(server, ours)) == 1  # booked on arrival
    assert answers.empty() and sender.is_alive()  # and not answered
    assert venue_call(server, "/_venue/release", {}) == {"released": 1}
    sender.join(WAIT_S)
    placed = answers.get_nowait()
    assert (placed["clientOrderId"], placed["status"]) == (ours, "open")
    assert venue_call(server, "/_venue/faults") == {"script": [], "held": 0}
    client.cancel_order(placed["id"], "BTC/USD")


def test_bad_script_is_refused(server: PaperVenueServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        venue_call(server, "/_venue/faults", {"script": [{"fault": "explode"}]})
    assert caught.value.code == 400


def test_random_faults_are_seeded_and_cycle_through_every_kind() -> None:
    server = serve(VenueFaults(error_rate=1.0, latency_ms=1))
    try:
        exchange = client_of(server)
        kinds = []
        for _ in range(4):
            with pytest.raises(ccxt.BaseError) as caught:
                exchange.load_markets(reload=True)
            kinds.append(type(caught.value))
        assert kinds == [ExchangeNotAvailable, OperationFailed, NetworkError, DDoSProtection]
    finally:
        server.stop()


def test_random_ambiguous_creates_are_booked() -> None:
    server = serve(VenueFaults(ambiguous_rate=1.0))
    try:
        exchange = client_of(server)
        exchange.load_markets()
        for expected in (NetworkError, RequestTimeout):
            ours = cid()
            with pytest.raises(expected):
                exchange.create_order("ETH/USD", "market", "buy", 0.01, None,
                                      {"newClientOrderId": ours})
            assert on_venue(server, ours)[0]["status"] == "FILLED"
    finally:
        server.stop()


def test_random_rejects_book_nothing() -> None:
    server = serve(VenueFaults(reject_rate=1.0))
    try:
        exchange = client_of(server)
        exchange.load_markets()
        with pytest.raises(InvalidOrder):
            exchange.create_order("ETH/USD", "market", "buy", 0.01, None)
        assert venue_call(server, "/_venue/orders")["orders"] == []
    finally:
        server.stop()


def test_key_refused_after_it_worked_reads_as_a_ban() -> None:
    """The venue answers a key it no longer takes as binance does (-2015, HTTP 401);
    ccxt's binance takes that, after a successful signed call, for a temporary ban."""
    server = serve()
    try:
        exchange = client_of(server)
        exchange.fetch_balance()
        server.api_key = "rotated-key"
        with pytest.raises(DDoSProtection) as refused:
            exchange.fetch_balance()
        assert "-2015" in str(refused.value)
    finally:
        server.stop()


def test_my_trades_pages_by_trade_id_and_requests_list_their_weight(
        server: PaperVenueServer, client: Any) -> None:
    """binance's myTrades `fromId`: trades with that id and after, ids ascending; with
    `startTime` too it is refused (-1128, a BadRequest in ccxt)."""
    for n in range(3):
        side = "sell" if n % 2 else "buy"
        client.create_order("SOL/USD", "market", side, 0.1, None, {"newClientOrderId": cid()})
    ids = [int(t["id"]) for t in client.fetch_my_trades("SOL/USD")][-3:]
    server.weighed.clear()
    page = client.fetch_my_trades("SOL/USD", None, 2, {"fromId": ids[0]})
    assert [int(t["id"]) for t in page] == ids[:2]
    rest = client.fetch_my_trades("SOL/USD", None, 2, {"fromId": ids[1] + 1})
    assert [int(t["id"]) for t in rest] == ids[2:]
    with pytest.raises(BadRequest):
        client.fetch_my_trades("SOL/USD", 1, 2, {"fromId": ids[0]})
    listed = venue_call(server, "/_venue/requests")
    assert listed["requests"][:2] == [["GET", "/api/v3/myTrades"]] * 2
    assert listed["weights"][:2] == [20, 20]


def test_operator_trade_fills_part_and_binance_shows_partially_filled(
        server: PaperVenueServer, client: Any) -> None:
    ours = cid()
    resting = client.create_order("SOL/USD", "limit", "buy", 1, 50,
                                  {"newClientOrderId": ours})
    answer = venue_call(server, "/_venue/trade",
                        {"symbol": "SOL/USD", "price": "49", "amount": "0.3"})
    [made] = [t for t in answer["trades"] if t["orderId"] == int(resting["id"])]
    assert (made["qty"], made["price"], made["isMaker"]) == ("0.3", "50", True)
    [booked] = on_venue(server, ours)
    assert (booked["status"], booked["executedQty"], booked["isWorking"]) == (
        "PARTIALLY_FILLED", "0.3", True)
    seen = client.fetch_order(resting["id"], "SOL/USD")
    assert (seen["status"], seen["filled"], seen["remaining"]) == ("open", 0.3, 0.7)
    assert resting["id"] in [o["id"] for o in client.fetch_open_orders("SOL/USD")]

    venue_call(server, "/_venue/trade", {"symbol": "SOLUSD", "price": "49", "amount": "0.2"})
    canceled = client.cancel_order(resting["id"], "SOL/USD")
    assert (canceled["status"], canceled["filled"]) == ("canceled", 0.5)
    trades = client.fetch_order_trades(resting["id"], "SOL/USD")
    assert [t["amount"] for t in trades] == [0.3, 0.2]
    assert len({t["id"] for t in trades}) == 2
    assert sum(t["fee"]["cost"] for t in trades) == pytest.approx(0.025)


def test_operator_trade_refuses_bad_terms(server: PaperVenueServer) -> None:
    for body in ({"symbol": "SOL/USD", "price": "49"},
                 {"symbol": "SOL/USD", "price": "49", "amount": "0.001"},
                 {"symbol": "NOPE", "price": "49", "amount": "1"}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            venue_call(server, "/_venue/trade", body)
        assert refused.value.code == 400


def test_my_trades_pages_no_larger_than_the_venue_serves() -> None:
    paged = PaperVenueServer(PaperVenue(None), api_key=KEY, secret=SECRET,
                             trades_page=2).start()
    try:
        exchange = client_of(paged)
        exchange.load_markets()
        order = exchange.create_order("SOL/USD", "limit", "buy", 1, 50)
        for _ in range(5):
            venue_call(paged, "/_venue/trade",
                       {"symbol": "SOL/USD", "price": "49", "amount": "0.1"})
        ids = [int(t["id"]) for t in exchange.fetch_my_trades("SOL/USD", None, None,
                                                               {"fromId": 0})]
        ids += [int(t["id"]) for t in exchange.fetch_my_trades("SOL/USD", None, None,
                                                                {"fromId": ids[-1] + 1})]
        ids += [int(t["id"]) for t in exchange.fetch_my_trades("SOL/USD", None, None,
                                                                {"fromId": ids[-1] + 1})]
        assert len(ids) == 5
        # not told where to start, binance lists an order's most recent trades
        latest = exchange.fetch_order_trades(order["id"], "SOL/USD")
        assert [int(t["id"]) for t in latest] == ids[-2:]
        first = exchange.fetch_order_trades(order["id"], "SOL/USD", None, None, {"fromId": 0})
        assert [int(t["id"]) for t in first] == ids[:2]
        rest = exchange.fetch_order_trades(order["id"], "SOL/USD", None, None,
                                           {"fromId": ids[1] + 1})
        assert [int(t["id"]) for t in rest] == ids[2:4]
        assert len(exchange.fetch_my_trades("SOL/USD", None, 500)) == 2
    finally:
        paged.stop()
