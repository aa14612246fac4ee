"""Exchange concurrency and supervision, on an in-process daemon with real sockets."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from ccxt.base.errors import InvalidNonce

from actors.exchange.client import ExchangeClient
from actors.exchange.drivers.paper import PaperExchange, PaperVenue
from actors.runtime import Clock
from actors.supervisor_messages import Crash
from daemon.app import EXIT_ESCALATED, Daemon
from daemon.config import load_config
from protocol.client import OrderdClient
from protocol.errors import ProtocolError
from tests.helpers import free_ports, market_buy, resting_limit_buy, wait_until, write_config


class GatedExchange(PaperExchange):
    """The paper venue, except that creates on ETH/USD wait for a gate."""

    def __init__(self, venue: PaperVenue, gate: threading.Event) -> None:
        super().__init__(venue)
        self.gate = gate

    def create_order(self, symbol: str, type: str, side: str, amount: Any,
                     price: Any = None, params: dict[str, Any] | None = None) -> Any:
        if symbol == "ETH/USD":
            assert self.gate.wait(30), "gate never opened"
        return super().create_order(symbol, type, side, amount, price, params)


class RecordingExchange(GatedExchange):
    """The gated paper venue, recording each create (by client id) and fetch (by id).
    Its create answers carry no status (as binance's ACK ones): a lookup verifies each."""

    def __init__(self, venue: PaperVenue, gate: threading.Event,
                 calls: list[tuple[str, str]]) -> None:
        super().__init__(venue, gate)
        self.calls = calls

    def create_order(self, symbol: str, type: str, side: str, amount: Any,
                     price: Any = None, params: dict[str, Any] | None = None) -> Any:
        self.calls.append(("create", str((params or {}).get("clientOrderId"))))
        answer = super().create_order(symbol, type, side, amount, price, params)
        return {**answer, "status": None}

    def fetch_order(self, id: str | None, symbol: str | None = None,
                    params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.calls.append(("fetch", str(id)))
        return super().fetch_order(id, symbol, params)


class FirstCreateRefused(PaperExchange):
    """The paper venue, except that the first create of all its clients is refused for a
    stale nonce before it is booked (so the worker sends it again: a retry)."""

    def __init__(self, venue: PaperVenue, refused: threading.Event) -> None:
        super().__init__(venue)
        self.refused = refused

    def create_order(self, symbol: str, type: str, side: str, amount: Any,
                     price: Any = None, params: dict[str, Any] | None = None) -> Any:
        if not self.refused.is_set():
            self.refused.set()
            raise InvalidNonce("nonce too small")
        return super().create_order(symbol, type, side, amount, price, params)


ONE_WORKER = '[[exchanges]]\nname = "paper"\ndriver = "paper"\nconcurrency = 1\n'


class MarketsCountingExchange(PaperExchange):
    """The paper venue, counting the loads of its markets."""

    def __init__(self, venue: PaperVenue, loads: list[int]) -> None:
        super().__init__(venue)
        self.loads = loads

    def load_markets(self, reload: bool = False) -> dict[str, Any]:
        if reload or not self.markets:
            self.loads.append(1)
        return super().load_markets(reload)


@contextmanager
def in_process_daemon(tmp_path: Path, extra: str = "",
                      clients: dict[str, Callable[[], ExchangeClient]] | None = None,
                      clock: Clock | None = None,
                      orders: str = "", exchanges: str | None = None,
                      ) -> Iterator[tuple[Daemon, OrderdClient]]:
    control, events = (f"tcp://127.0.0.1:{p}" for p in free_ports(2))
    config = load_config(write_config(tmp_path / "orderd.toml", control=control,
                                      events=events, extra=extra, orders=orders,
                                      exchanges=exchanges))
    daemon = Daemon(config, clock=clock, clients=clients)
    daemon.start()
    client = OrderdClient(control, timeout_s=10)
    try:
        yield daemon, client
    finally:
        client.close()
        daemon.stop()


def test_a_slow_create_does_not_delay_a_cancel(tmp_path: Path) -> None:
    gate = threading.Event()
    venue = PaperVenue(tmp_path / "venue.sqlite")
    try:
        with in_process_daemon(tmp_path, clients={
                "paper": lambda: GatedExchange(venue, gate)}) as (_daemon, client):
            resting = client.submit(resting_limit_buy(client_order_id="rest-1"))
            stuck = client.submit(market_buy("0.1", "ETH/USD", client_order_id="slow-1"),
                                  wait="durable")
            assert stuck["status"] == "pending_submit"
            canceled = client.cancel(client_order_id=resting["client_order_id"])
            assert canceled["status"] == "canceled"
            assert not gate.is_set(), "the cancel finished while the create was still stuck"
            gate.set()
            assert client.submit(market_buy("0.1", "ETH/USD", client_order_id="slow-1"))[
                "status"] == "filled"
    finally:
        gate.set()
        venue.close()


def wait_for_restarts(client: OrderdClient, actor: str, count: int) -> dict[str, Any]:
    def restarted() -> dict[str, Any] | None:
        health = client.health()
        state = health["actors"][actor]
        return health if state["restarts"] >= count and state["alive"] else None

    return wait_until(restarted, f"{actor} to be restarted {count} times", attempts=500)


def test_a_crashed_actor_is_restarted_and_serving_goes_on(tmp_path: Path) -> None:
    with in_process_daemon(tmp_path) as (daemon, client):
        placed = client.submit(resting_limit_buy(client_order_id="before-crash"))
        daemon.registry.tell("order", Crash("test"))
        health = wait_for_restarts(client, "order", 1)
        assert health["state"] == "ready"
        again = client.status(client_order_id="before-crash")
        assert again.pop("confirmation")[0]["step"] == "ack"
        assert again == placed
        assert client.submit(market_buy(client_order_id="after-crash"))["status"] == "filled"
        daemon.registry.tell("exchange.paper.0", Crash("test"))
        wait_for_restarts(client, "exchange.paper.0", 1)
        for i in range(8):  # every worker serves again
            assert client.submit(market_buy(client_order_id=f"w-{i}"))["status"] == "filled"


def test_stats_survive_a_restart_of_the_order_actor(tmp_path: Path) -> None:
    """Sends, retries and submit latencies are the daemon's since its start: a crash of
    the order actor, which the supervisor repairs, does not set them back to zero."""
    refused = threading.Event()
    venue = PaperVenue(tmp_path / "venue.sqlite")
    try:
        with in_process_daemon(tmp_path, clients={
                "paper": lambda: FirstCreateRefused(venue, refused)}) as (daemon, client):
            for cid in ("s-1", "s-2"):
                assert client.submit(market_buy(client_order_id=cid))["status"] == "filled"
            before = client.stats()
            assert (before["sends"], before["retries"]) == (3, 1)
            assert before["submit_latency"]["samples"] == 2
            daemon.registry.tell("order", Crash("test"))
            wait_for_restarts(client, "order", 1)
            after = client.stats()
            for key in ("sends", "retries", "resends", "submit_latency"):
                assert after[key] == before[key], key
            assert client.submit(market_buy(client_order_id="s-3"))["status"] == "filled"
            counted_on = client.stats()
            assert (counted_on["sends"], counted_on["retries"]) == (4, 1)
            assert counted_on["submit_latency"]["samples"] == 3
    finally:
        venue.close()


def test_a_restart_storm_halts_and_exits_non_zero(tmp_path: Path) -> None:
    extra = "[supervisor]\nintensity = 2\nperiod_s = 60\n"
    with in_process_daemon(tmp_path, extra=extra) as (daemon, client):
        client.submit(market_buy(client_order_id="storm-0"))
        for crash in range(1, 3):
            daemon.registry.tell("exchange.paper.1", Crash("test"))
            wait_for_restarts(client, "exchange.paper.1", crash)
        daemon.registry.tell("exchange.paper.1", Crash("test"))
        assert daemon.wait(timeout=30), "escalation asks the process to stop"
        assert daemon.exit_code == EXIT_ESCALATED
        assert client.ping()["state"] == "halted"
    # the ledger was flushed: the order is there after the stop
    with in_process_daemon(tmp_path) as (_daemon, client):
        assert client.status(client_order_id="storm-0")["status"] == "filled"


def test_a_backlog_at_its_limit_refuses_new_submits_until_it_drains(tmp_path: Path) -> None:
    """Orders the exchange cannot take in time are refused, not accepted to expire."""
    gate = threading.Event()
    venue = PaperVenue(tmp_path / "venue.sqlite")
    try:
        with in_process_daemon(tmp_path, orders="max_backlog = 2\n", clients={
                "paper": lambda: GatedExchange(venue, gate)}) as (_daemon, client):
            stuck = [client.submit(market_buy("0.1", "ETH/USD", client_order_id=f"slow-{i}"),
                                   wait="durable") for i in range(2)]
            assert [order["status"] for order in stuck] == ["pending_submit"] * 2
            with pytest.raises(ProtocolError) as refused:
                client.submit(market_buy("0.1", client_order_id="next-1"), wait="durable")
            assert refused.value.code == "rate_limited"
            assert refused.value.retry_after_s is not None and refused.value.retry_after_s > 0
            # an order already accepted is still answered: idempotency comes first
            again = client.submit(market_buy("0.1", "ETH/USD", client_order_id="slow-0"),
                                  wait="durable")
            assert again["client_order_id"] == "slow-0"
            gate.set()
            wait_until(lambda: all(client.status(client_order_id=f"slow-{i}")["status"]
                                   == "filled" for i in range(2)), "the backlog to drain")
            assert client.submit(market_buy("0.1", client_order_id="next-1"))["status"] \
                == "filled"
            assert client.status(client_order_id="next-1")["attempts"] == 1
    finally:
        gate.set()
        venue.close()


def test_waiting_creates_go_before_the_verification_of_earlier_orders(tmp_path: Path) -> None:
    """A worker verifies an order it created right away only when no create waits for it,
    so a backlog of creates is not slowed by the confirmation of orders already placed.
    The orders rest: tracking's reads find them open and look neither of them up."""
    gate, calls = threading.Event(), list[tuple[str, str]]()
    venue = PaperVenue(tmp_path / "venue.sqlite")
    try:
        with in_process_daemon(tmp_path, exchanges=ONE_WORKER, clients={
                "paper": lambda: RecordingExchange(venue, gate, calls)}) as (_daemon, client):
            for cid in ("first", "second"):  # the first create holds the worker at the gate
                client.submit(resting_limit_buy("0.1", symbol="ETH/USD", client_order_id=cid),
                              wait="durable")
            # answered after the commit that also handed "second" to the worker: queued now
            client.status(client_order_id="second")
            gate.set()
            wait_until(lambda: len(calls) >= 4, "both created and looked up")
            ids = {client.status(client_order_id=cid)["order_id"]: cid
                   for cid in ("first", "second")}
            assert [(op, ids.get(ref, ref)) for op, ref in calls] == [
                ("create", "first"), ("create", "second"),
                ("fetch", "first"), ("fetch", "second")]
    finally:
        gate.set()
        venue.close()


def test_requests_lost_with_a_crashed_worker_do_not_hold_the_backlog(tmp_path: Path) -> None:
    """A worker that crashes with requests queued (they go to its replacement) must not
    keep its exchange at the backlog limit for good."""
    gate = threading.Event()
    venue = PaperVenue(tmp_path / "venue.sqlite")
    try:
        with in_process_daemon(tmp_path, exchanges=ONE_WORKER, orders="max_backlog = 2\n",
                               clients={"paper": lambda: GatedExchange(venue, gate)}
                               ) as (daemon, client):
            for cid in ("held", "queued"):  # the first create holds the worker at the gate
                client.submit(market_buy("0.1", "ETH/USD", client_order_id=cid), wait="durable")
            client.status(client_order_id="queued")  # its create is in the worker's inbox now
            # a crash queued behind both creates, ahead of the verifications they queue
            daemon.registry.tell("exchange.paper.0", Crash("test"))
            gate.set()
            wait_for_restarts(client, "exchange.paper.0", 1)

            def accepted() -> dict[str, Any] | None:
                try:
                    return client.submit(market_buy(client_order_id="after"), wait="durable")
                except ProtocolError as exc:
                    assert exc.code == "rate_limited"
                    return None

            assert wait_until(accepted, "a submit accepted again")["client_order_id"] == "after"
    finally:
        gate.set()
        venue.close()


def test_restarted_and_side_workers_take_the_markets_already_loaded(tmp_path: Path) -> None:
    loads: list[int] = []
    venue = PaperVenue(tmp_path / "venue.sqlite")
    try:
        with in_process_daemon(tmp_path, clients={
                "paper": lambda: MarketsCountingExchange(venue, loads)}) as (daemon, client):
            for i in range(8):  # every order worker serves
                assert client.submit(market_buy(client_order_id=f"m-{i}"))["status"] == "filled"
            daemon.registry.tell("exchange.paper.0", Crash("test"))  # a new client
            wait_for_restarts(client, "exchange.paper.0", 1)
            for i in range(8):
                assert client.submit(market_buy(client_order_id=f"n-{i}"))["status"] == "filled"
            client.submit(resting_limit_buy(client_order_id="resting"))
            # the reconciler's own worker reads the open orders, with their markets
            assert client.reconcile()["report"]["exchanges"]["paper"]["errors"] == []
    finally:
        venue.close()
    assert len(loads) == 1
