"""binance's stream client: which events carry a sequence a gap can be found by."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ccxt.base.errors import ExchangeNotAvailable

from actors.exchange.budget import NotSent, RequestBudget
from actors.exchange.drivers.ccxt_driver import DriverSettings
from actors.stream.pro_driver import build_binance_pro, refusal_headers

SUBSCRIBED = {"id": "sub-1", "status": 200, "result": {"subscriptionId": 0}}


def event(number: int) -> dict[str, Any]:
    return {"e": "executionReport", "E": 1_700_000_000_000, "s": "BTCUSDT", "c": "cid-1",
            "S": "BUY", "o": "LIMIT", "f": "GTC", "q": "0.01", "p": "1000", "X": "NEW",
            "x": "NEW", "i": 7, "l": "0", "z": "0", "L": "0", "n": "0", "T": 1, "t": -1,
            "I": number, "w": True, "m": False, "O": 1, "Z": "0", "Y": "0", "Q": "0"}


class Connection:
    """What ccxt's handling of a subscribe answer touches of its connection."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, Any] = {}
        self.futures: dict[str, Any] = {}
        self.resolved: list[Any] = []

    def resolve(self, result: Any, message_hash: Any) -> None:
        self.resolved.append(result)


def numbers(subscribed: dict[str, Any]) -> list[int | None]:
    seen: list[dict[str, Any]] = []
    connection = build_binance_pro(DriverSettings("key", "secret", "http://127.0.0.1:1",
                                                  1000, 5000), seen.append)
    socket = Connection()
    connection.pro.handle_message(socket, subscribed)
    for number in (8641984, 8641990):
        connection.pro.handle_message(socket, {"subscriptionId": 0, "event": event(number)})
    return [connection.read(raw).number for raw in seen]


def test_binance_execution_ids_are_no_sequence() -> None:
    """binance's `I` is an execution id across all accounts: its jumps are no gap."""
    assert numbers(SUBSCRIBED) == [None, None]


def test_a_venue_that_numbers_its_events_shows_them() -> None:
    numbered = {**SUBSCRIBED, "result": {"subscriptionId": 0, "eventsNumbered": True}}
    assert numbers(numbered) == [8641984, 8641990]


def refused(data: dict[str, Any] | None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": -1003, "msg": "Way too much request weight used"}
    if data is not None:
        error["data"] = data
    return {"id": "hb-1", "status": 418, "error": error}


def test_a_refusal_s_retry_after_is_counted_on_the_exchange_s_clock() -> None:
    """binance's `retryAfter` is a time on its clock: ours may be off by seconds."""
    answer = refused({"serverTime": 1_700_000_000_000, "retryAfter": 1_700_000_120_500})
    assert refusal_headers(answer, now_ms=1_600_000_000_000) == {"Retry-After": "120.500"}


def test_a_refusal_without_server_time_is_counted_on_ours() -> None:
    answer = refused({"retryAfter": 1_700_000_002_000})
    assert refusal_headers(answer, now_ms=1_700_000_000_000) == {"Retry-After": "2.000"}


def test_a_refusal_without_a_wait_leaves_it_to_the_budget() -> None:
    assert refusal_headers(refused(None), now_ms=0) is None
    assert refusal_headers(SUBSCRIBED, now_ms=0) is None


def open_without_markets(budget: RequestBudget) -> tuple[list[str], BaseException | None]:
    """Open a stream no worker shared markets with (it loads them over REST itself): the
    URLs its client asked for, and what ended the opening."""
    connection = build_binance_pro(DriverSettings("key", "secret", "http://127.0.0.1:1",
                                                  1000, 5000), lambda _event: None, budget)
    asked: list[str] = []

    async def fetch(url: str, *_args: Any, **_kwargs: Any) -> Any:
        asked.append(url)
        raise ExchangeNotAvailable("no exchange here")

    connection.pro.fetch = fetch

    async def opening() -> BaseException | None:
        try:
            await connection.open(None)
        except Exception as exc:  # noqa: BLE001 - what ended it is the answer
            return exc
        finally:
            await connection.close()
        return None

    return asked, asyncio.run(opening())


def test_markets_the_stream_loads_itself_spend_from_the_budget() -> None:
    """exchangeInfo costs the address 20 weight, whichever client asks for it."""
    budget = RequestBudget("binance")
    asked, _ended = open_without_markets(budget)
    assert [url.rsplit("/", 1)[-1] for url in asked] == ["exchangeInfo"]
    assert budget.counts.requests == {"GET /api/v3/exchangeInfo": 1}
    assert budget.counts.weight_spent == 20


def test_markets_the_stream_loads_itself_wait_out_a_ban() -> None:
    """A request sent during a ban lengthens it: the stream's REST requests are held
    back like every other."""
    budget = RequestBudget("binance")
    budget.paused_until, budget.banned = time.time() + 60, True
    asked, ended = open_without_markets(budget)
    assert asked == []
    assert isinstance(ended, NotSent)
