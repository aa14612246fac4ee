"""BasicOrderExecutor when the exchange misbehaves: retries, lost replies, unknown
outcomes resolved by lookups, and the settings it refuses."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from ccxt.base.errors import (
    AuthenticationError,
    NetworkError,
    RateLimitExceeded,
    RequestTimeout,
)

from actors.exchange.client import ExchangeClient
from actors.exchange.drivers.paper import PaperExchange, PaperVenue
from actors.runtime import Clock
from daemon.config_loader import ConfigError
from orderd import BasicOrderExecutor
from protocol.errors import ProtocolError
from protocol.validation import CLIENT_ORDER_ID
from tests.library_support import MARKET, QUICK_RESOLUTION, paper_config, run, venue_orders


def test_basic_executor_resolves_creates_lost_before_the_venue(tmp_path: Path) -> None:
    """Half the requests fail before reaching the venue. Reads are retried until they
    succeed; a create that failed this way may have landed as far as the executor can
    tell, so it is looked up, never sent again, and rejected only once the lookups
    prove the venue never had it: no order is left unknown."""
    config = paper_config(tmp_path, faults={"error_rate": 0.5, "seed": 7})
    config["retry"]["max_retries"] = 12
    # absence proven by the count alone (no window to span, which timing would stretch
    # over more or fewer lookups): the venue's seeded faults meet the same requests
    # every run
    config["resolution"] = {**QUICK_RESOLUTION, "window_s": 0.0}

    async def scenario() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with BasicOrderExecutor(config, seed=1) as executor:
            orders = [await executor.execute_order(MARKET, return_order=True)
                      for _ in range(8)]
            return orders, await executor.get_execution_stats()

    orders, stats = run(scenario)
    assert stats["retries"] > 0 and stats["unresolved"]["count"] == 0
    statuses = {o["status"] for o in orders}
    assert statuses == {"filled", "rejected"}
    assert all(o["attempts"] == 1 for o in orders)
    for order in orders:
        if order["status"] == "rejected":
            assert order["last_error"]["code"] == "order_not_found"
            assert "3 lookups, 0.01 s apart, found no order" in order["last_error"]["message"]
    booked = {o["clientOrderId"] for o in venue_orders(tmp_path)}
    assert booked == {o["client_order_id"] for o in orders if o["status"] == "filled"}


class LostCreates:
    """The paper venue behind a client whose create replies never arrive (the create
    lands or not, as `lands` says) and whose lookups fail while `down` is set."""

    def __init__(self, client: PaperExchange, lands: bool) -> None:
        self.client = client
        self.id = client.id
        self.lands = lands
        self.down = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def create_order(self, *args: Any, **kwargs: Any) -> Any:
        if self.lands:
            self.client.create_order(*args, **kwargs)
        raise RequestTimeout("no reply to POST /order")

    def fetch_order(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise NetworkError("connection refused")
        return self.client.fetch_order(*args, **kwargs)


@pytest.mark.parametrize(("lands", "final"), [(False, "rejected"), (True, "filled")])
def test_basic_executor_keeps_an_order_unknown_until_a_lookup_answers(
        tmp_path: Path, lands: bool, final: str) -> None:
    """While no lookup can say, the order stays unknown (and counted as unresolved);
    get_order_status looks again and settles it either way."""
    venue = PaperVenue(None)
    clients: list[LostCreates] = []

    def client() -> ExchangeClient:
        clients.append(LostCreates(PaperExchange(venue), lands))
        return clients[-1]

    config = {**paper_config(tmp_path), "resolution": QUICK_RESOLUTION}

    async def scenario() -> list[dict[str, Any]]:
        async with BasicOrderExecutor(config, clients={"paper": client}) as executor:
            order_id = await executor.execute_order(MARKET)
            seen = [await executor.get_order_status(order_id)]
            stats = await executor.get_execution_stats()
            assert stats["unresolved"]["count"] == 1
            with pytest.raises(ProtocolError) as unanswered:  # nothing known to cancel yet
                await executor.cancel_order(order_id)
            assert unanswered.value.code == "exchange_unavailable"
            clients[0].down = False
            seen.append(await executor.get_order_status(order_id))
            assert await executor.cancel_order(order_id) is False  # filled or never placed
            return seen

    try:
        while_down, after = run(scenario)
    finally:
        venue.close()
    assert while_down["status"] == "unknown" and while_down["last_error"]["code"] == "timeout"
    assert after["status"] == final and after["attempts"] == 1
    if final == "rejected":
        assert after["last_error"]["code"] == "order_not_found"
        assert "no reply to POST /order" in after["last_error"]["message"]


def test_basic_executor_refuses_settings_it_does_not_use(tmp_path: Path) -> None:
    documented = {"retry": {"max_retries": 5},
                  "circuit_breaker": {"error_threshold": 20, "cool_down_seconds": 30}}
    with pytest.raises(ConfigError, match=r"^circuit_breaker: not supported by Basic"):
        BasicOrderExecutor(documented)
    refused: list[tuple[dict[str, Any], str]] = [
        ({"exchange": {"name": "paper", "concurrency": 2}}, r"exchange\.concurrency"),
        ({"exchanges": [{"name": "paper", "risk": {}}]}, r"exchanges\[0\]\.risk"),
        ({"orders": {"max_backlog": 10}}, r"orders\.max_backlog"),
        ({"tracking": {"interval_s": 1.0}}, "tracking")]
    for config, key in refused:
        with pytest.raises(ConfigError, match=rf"^{key}: not supported by BasicOrderExecutor"):
            BasicOrderExecutor(config)

    async def configure_later() -> None:
        await BasicOrderExecutor().configure(documented)

    with pytest.raises(ConfigError, match="circuit_breaker"):
        run(configure_later)
    BasicOrderExecutor({"state_dir": str(tmp_path), "retry": {"max_retries": 1},
                        "orders": {"client_id_prefix": "x-"}, "resolution": QUICK_RESOLUTION})


def test_basic_executor_never_resends_an_ambiguous_create(tmp_path: Path) -> None:
    """The venue books every order but the reply is lost: one lookup finds it."""

    async def scenario() -> dict[str, Any]:
        config = paper_config(tmp_path, faults={"ambiguous_rate": 1.0})
        async with BasicOrderExecutor(config) as executor:
            return await executor.execute_order(MARKET, return_order=True)

    order = run(scenario)
    assert order["status"] == "filled" and order["attempts"] == 1
    assert order["last_error"]["code"] == "timeout"
    assert [o["clientOrderId"] for o in venue_orders(tmp_path)] == [order["client_order_id"]]


class RateLimitedTwice:
    """The paper venue behind a client whose first two creates hit a rate limit."""

    def __init__(self, client: PaperExchange) -> None:
        self.client = client
        self.id = client.id
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def create_order(self, *args: Any, **kwargs: Any) -> Any:
        if self.refused < 2:
            self.refused += 1
            raise RateLimitExceeded("429 too many requests")
        return self.client.create_order(*args, **kwargs)


def test_basic_executor_resends_a_create_refused_by_a_rate_limit(tmp_path: Path) -> None:
    venue = PaperVenue(None)

    def client() -> ExchangeClient:
        return RateLimitedTwice(PaperExchange(venue))

    async def scenario() -> dict[str, Any]:
        async with BasicOrderExecutor(paper_config(tmp_path), clients={"paper": client}) as ex:
            return await ex.execute_order(MARKET, return_order=True)

    try:
        order = run(scenario)
        assert order["status"] == "filled" and order["attempts"] == 3
        assert len(venue.orders("default")) == 1
    finally:
        venue.close()


class Locked:
    """The paper venue behind a client whose balance reads fail, as `error` says."""

    def __init__(self, client: PaperExchange, error: Exception) -> None:
        self.client = client
        self.id = client.id
        self.error = error

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def fetch_balance(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


@pytest.mark.parametrize("error", [AuthenticationError("invalid API key"),
                                   NetworkError("connection refused")])
def test_basic_executor_raises_the_exchanges_own_error_for_balances(
        tmp_path: Path, error: Exception) -> None:
    """A balance read that fails for good (at once, or once its retries are spent)
    raises the exchange's error itself, as ccxt would."""
    venue = PaperVenue(None)

    async def scenario() -> None:
        async with BasicOrderExecutor(paper_config(tmp_path),
                                      clients={"paper": lambda: Locked(PaperExchange(venue),
                                                                       error)}) as executor:
            with pytest.raises(type(error)) as caught:
                await executor.get_balance()
            assert caught.value is error

    try:
        run(scenario)
    finally:
        venue.close()


def test_ids_made_with_the_longest_prefix_are_valid_client_order_ids(tmp_path: Path) -> None:
    """An order placed without a client order id gets one the venue and the protocol
    take (at most 36 characters) with the longest prefix the configuration allows."""
    config = {**paper_config(tmp_path), "orders": {"client_id_prefix": "abcdefg-"}}

    async def scenario() -> list[dict[str, Any]]:
        async with BasicOrderExecutor(config, seed=1) as executor:
            return [await executor.execute_order(MARKET, return_order=True)
                    for _ in range(2)]

    orders = run(scenario)
    ids = [order["client_order_id"] for order in orders]
    assert len(set(ids)) == 2
    for made in ids:
        assert made.startswith("abcdefg-") and CLIENT_ORDER_ID.fullmatch(made), made
    assert {order["status"] for order in orders} == {"filled"}


def fast_clock(factor: float) -> Clock:
    """Wall and monotonic time running `factor` times as fast as real time: seconds
    of exchange windows pass in a fraction of one."""
    wall, mono = time.time(), time.monotonic()
    return Clock(now=lambda: wall + factor * (time.monotonic() - mono),
                 monotonic=lambda: mono + factor * (time.monotonic() - mono))


class NeverLands:
    """The paper venue behind a client whose creates time out without landing; when
    the create was sent and each lookup was, by `clock`."""

    def __init__(self, client: PaperExchange, clock: Clock) -> None:
        self.client = client
        self.id = client.id
        self.clock = clock
        self.created_at = 0.0
        self.lookups: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def create_order(self, *args: Any, **kwargs: Any) -> Any:
        self.created_at = self.clock.now()
        raise RequestTimeout("no reply to POST /order")

    def fetch_order(self, *args: Any, **kwargs: Any) -> Any:
        self.lookups.append(self.clock.now())
        return self.client.fetch_order(*args, **kwargs)


def test_basic_executor_proves_a_signed_create_absent_only_once_it_cannot_land(
        tmp_path: Path) -> None:
    """binance may book a signed create until its recvWindow (5 s), the clock skew
    allowance (1 s) and the request timeout have passed since it was signed: lookups
    that find nothing before then do not reject it."""
    clock, venue = fast_clock(20.0), PaperVenue(None)
    client = NeverLands(PaperExchange(venue), clock)
    config = {"state_dir": str(tmp_path),
              "exchange": {"name": "bx", "driver": "binance", "api_key": "k", "secret": "s",
                           "timeout_ms": 1000},
              "resolution": {"interval_s": 0.2, "window_s": 0.5, "absent_needed": 2}}

    async def scenario() -> dict[str, Any]:
        async with BasicOrderExecutor(config, clock=clock, clients={"bx": lambda: client}) as ex:
            placing = asyncio.create_task(
                ex.execute_order({**MARKET, "client_order_id": "nl-1"}, return_order=True))
            while not client.lookups:  # the loop runs on while the executor waits
                await asyncio.sleep(0.001)
            assert (await ex.get_order_status("nl-1"))["status"] == "unknown"
            return await placing

    try:
        order = run(scenario)
    finally:
        venue.close()
    deadline = client.created_at + 5.0 + 1.0 + 1.0
    assert order["status"] == "rejected" and order["attempts"] == 1
    assert "the last once the create could no longer land" in order["last_error"]["message"]
    assert client.lookups[0] < deadline <= client.lookups[-1]
