"""Actors heal: each kind crashes in the middle of a stream of submits, and every
request is answered in time and every duty goes on; a restart storm ends the process.

A real orderd trades through its binance driver on a real `orderd paper-venue`; the
crashes come from the test-only `crash` command (`[supervisor] fault_commands`).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from actors.supervisor_messages import Crash
from orderd import ReliableOrderExecutor
from protocol.client import NoAnswer, OrderdClient
from protocol.errors import ProtocolError
from tests.helpers import (
    KEY,
    SECRET,
    DaemonProcess,
    VenueProcess,
    free_port,
    resting_limit_buy,
    running_daemon,
    wait_until,
)
from tests.integration.test_resilience import in_process_daemon

ACCEPT_TIMEOUT_S = 5.0  # tests.helpers.write_config's [orders] accept_timeout_s
ANSWER_WITHIN_S = ACCEPT_TIMEOUT_S + 1.0
CREATE = {"path": "/api/v3/order", "method": "POST"}
OPEN_ORDERS_HELD = {"path": "/api/v3/openOrders", "method": "GET", "fault": "hold_answer"}
"""A symbol's read (tracking's, a catch-up's), answered once the test releases it."""
HEALING = """
[resolution]
interval_s = 0.2
window_s = 0.2
absent_needed = 2
[supervisor]
fault_commands = true
"""


@pytest.fixture
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VenueProcess]:
    """A venue, and so an account, of each test's own: a daemon's first reconciliation
    reads trades from a minute before its oldest order, and on a shared account (a slow
    machine made the first run late) it found the trades of the tests before it and
    reported them, rightly, as orders not its own."""
    running = VenueProcess(tmp_path_factory.mktemp("venue"))
    yield running
    running.stop()


def binance(venue: VenueProcess) -> str:
    return (f'[[exchanges]]\nname = "bx"\ndriver = "binance"\napi_url = "{venue.url}"\n'
            f'api_key = "{KEY}"\nsecret = "{SECRET}"\ntimeout_ms = 1000\nconcurrency = 2\n')


@dataclass
class Stream:
    """Clients submitting small market orders back to back (buys and sells in turn, so
    the account lasts), each re-sending with the same client id after a retryable
    error, as a client should. Records how long each answer took."""

    endpoint: str
    prefix: str
    clients: int = 2
    answers: list[tuple[float, str]] = field(default_factory=list)
    """(seconds, "ok" or the error code) of every request."""
    unanswered: list[str] = field(default_factory=list)
    placed: set[str] = field(default_factory=set)
    """Client ids of every order submitted."""
    acked: set[str] = field(default_factory=set)
    """Client ids of the orders the daemon accepted."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Stream:
        for index in range(self.clients):
            thread = threading.Thread(target=self._run, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def done(self) -> int:
        with self._lock:
            return sum(1 for _s, outcome in self.answers if outcome == "ok")

    def _run(self, index: int) -> None:
        with OrderdClient(self.endpoint, timeout_s=ANSWER_WITHIN_S) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                order = market(f"{self.prefix}-{index}-{n}", n)
                cid = order["client_order_id"]
                with self._lock:
                    self.placed.add(cid)
                while not self._stop.is_set() and not self._submit(client, order):
                    pass

    def _submit(self, client: OrderdClient, order: dict[str, Any]) -> bool:
        """True once answered ok; False after a retryable error."""
        started = time.monotonic()
        try:
            reply = client.request("submit", {"order": order})
        except NoAnswer:
            with self._lock:
                self.unanswered.append(order["client_order_id"])
            return True
        elapsed = time.monotonic() - started
        if reply["ok"]:
            outcome = "ok"
        else:
            error = ProtocolError.from_wire(reply["error"])
            assert error.retryable, f"{order['client_order_id']}: {reply['error']}"
            outcome = error.code
            self._stop.wait(min(error.retry_after_s or 0.1, 0.2))
        with self._lock:
            self.answers.append((elapsed, outcome))
            if outcome == "ok":
                self.acked.add(order["client_order_id"])
        return outcome == "ok"


def market(cid: str, n: int) -> dict[str, Any]:
    return {"symbol": "SOL/USD", "side": "buy" if n % 2 else "sell", "type": "market",
            "amount": "0.1", "client_order_id": cid}


def crash_in_a_burst(endpoint: str, actor: str, prefix: str, size: int = 20) -> set[str]:
    """Send `size` submits, the crash and `size` more without waiting, so the crash lands
    among queued requests; all are answered in time. Returns the ids of the orders in
    the burst once each is accepted (after a retryable error, submitted again)."""
    cids = [f"{prefix}-{n}" for n in range(2 * size)]
    with OrderdClient(endpoint, timeout_s=ANSWER_WITHIN_S) as burst:
        sent = {burst.send("submit", {"order": market(cid, n)}): cid
                for n, cid in enumerate(cids[:size])}
        crash = burst.send("crash", {"actor": actor})
        sent.update({burst.send("submit", {"order": market(cid, n)}): cid
                     for n, cid in enumerate(cids[size:], size)})
        deadline = time.monotonic() + ANSWER_WITHIN_S
        replies: dict[str, dict[str, Any]] = {}
        while len(replies) < len(sent) + 1:  # NoAnswer when one is late
            reply = burst.receive(timeout_s=max(0.01, deadline - time.monotonic()))
            replies[reply["id"]] = reply
        assert replies[crash]["result"] == {"actor": actor}
        for request_id, cid in sent.items():
            reply = replies[request_id]
            if not reply["ok"]:
                assert ProtocolError.from_wire(reply["error"]).retryable, reply
                assert burst.submit(market(cid, cids.index(cid)))["client_order_id"] == cid
    return set(cids)


def set_price(venue: VenueProcess, symbol: str, price: str) -> None:
    """Move the venue's price (`POST /_venue/price`): resting orders it crosses fill."""
    body = json.dumps({"symbol": symbol, "price": price}).encode()
    request = urllib.request.Request(venue.url + "/_venue/price", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return str(answer.read().decode())


def wait_restarted(client: OrderdClient, actor: str, count: int) -> dict[str, Any]:
    def restarted() -> dict[str, Any] | None:
        health = client.health()
        state = health["actors"][actor]
        return health if state["restarts"] >= count and state["alive"] else None

    return wait_until(restarted, f"{actor} restarted {count} times")


def settle(client: OrderdClient, cid: str, status: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        order = client.status(client_order_id=cid)
        return order if order["status"] == status else None

    return wait_until(reached, f"{cid} to become {status}")


@pytest.mark.parametrize("actor", ["order", "exchange.bx.0", "exchange.bx.side", "stream-bx",
                                   "circuit", "metrics", "reconciler"])
def test_an_actor_crashing_mid_stream_costs_no_answer_and_no_duty(
        venue: VenueProcess, tmp_path: Path, actor: str) -> None:
    port = free_port()
    extra = f'{HEALING}[metrics]\nlisten = "127.0.0.1:{port}"\n'
    with running_daemon(tmp_path, extra=extra, exchanges=binance(venue)) as daemon:
        client = daemon.client()
        stream = Stream(daemon.control, f"h{uuid.uuid4().hex[:8]}").start()
        try:
            wait_until(lambda: stream.done() >= 10, "orders before the crash")
            burst = crash_in_a_burst(daemon.control, actor, f"b{uuid.uuid4().hex[:8]}")
            health = wait_restarted(client, actor, 1)
            after = stream.done()
            wait_until(lambda: stream.done() >= after + 10, "orders after the restart")
        finally:
            stream.stop()
        assert stream.unanswered == []
        assert max(seconds for seconds, _outcome in stream.answers) < ANSWER_WITHIN_S
        assert health["state"] == "ready"
        restarts = {name: state["restarts"] for name, state in health["actors"].items()}
        assert restarts == {name: int(name == actor) for name in restarts}
        accepted = stream.acked | burst
        for cid in accepted:  # every accepted order went through
            settle(client, cid, "filled")
        on_venue = [o["clientOrderId"] for o in venue.orders()]
        assert all(on_venue.count(cid) == 1 for cid in accepted), "lost or placed twice"
        assert all(on_venue.count(cid) <= 1 for cid in stream.placed), "placed twice"
        duties_go_on(daemon, venue, client, port, actor)
        stopping = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - stopping < 5.0, "nothing was left waiting for an answer"


def duties_go_on(daemon: DaemonProcess, venue: VenueProcess, client: OrderdClient,
                 port: int, actor: str) -> None:
    """Tracking, resolution, metrics and reconciliation, after `actor` was restarted."""
    tag = uuid.uuid4().hex[:8]
    resting = client.submit(resting_limit_buy("2", "10", "SOL/USD",
                                              client_order_id=f"rest-{tag}"))
    assert resting["status"] == "open"
    set_price(venue, "SOL/USD", "9.99")
    try:
        assert settle(client, f"rest-{tag}", "filled")["filled"] == "2"  # by tracking
    finally:
        set_price(venue, "SOL/USD", "150")
    venue.script({**CREATE, "fault": "code_1007"})  # booked, answered ambiguously
    client.submit({"symbol": "SOL/USD", "side": "buy", "type": "market", "amount": "0.1",
                   "client_order_id": f"amb-{tag}"}, wait="durable")
    assert settle(client, f"amb-{tag}", "filled")["attempts"] == 1  # resolved by lookup
    section = client.reconcile()["report"]["exchanges"]["bx"]
    assert section["errors"] == []  # trades too: read per symbol, as binance wants
    assert section["counts"]["discrepancies"] == 0, section["discrepancies"][:5]

    def restart_scraped() -> str | None:
        text = scrape(port)
        return text if f'orderd_actor_restarts_total{{actor="{actor}"}} 1.0' in text else None

    metrics = wait_until(restart_scraped, "the restart in the metrics")
    assert f'orderd_actor_up{{actor="{actor}"}} 1.0' in metrics
    assert 'orderd_daemon_state{state="ready"} 1.0' in metrics
    after_crash = daemon.log.read_text().split("crash requested")[-1]
    assert " failed on " not in after_crash, "a handler failed after the restart"


def test_a_restart_storm_exits_with_status_70_within_two_seconds(
        venue: VenueProcess, tmp_path: Path) -> None:
    extra = f"{HEALING}intensity = 2\nperiod_s = 60\n"
    with running_daemon(tmp_path, extra=extra, exchanges=binance(venue)) as daemon:
        client = daemon.client()
        for crash in (1, 2):
            client.call("crash", {"actor": "circuit"})
            wait_restarted(client, "circuit", crash)
        placed = client.submit(resting_limit_buy("2", "10", "SOL/USD",
                                                 client_order_id=f"storm-{uuid.uuid4().hex[:8]}"))
        client.call("crash", {"actor": "circuit"})
        crashed = time.monotonic()
        assert daemon.process is not None
        code = daemon.process.wait(timeout=30)
        took = time.monotonic() - crashed
        assert code == 70
        assert took < 2.0, f"exited {took:.2f} s after the storm"
        log = daemon.log.read_text()
        assert "restart storm, escalating: 3 actor restarts within 60 s" in log
    with running_daemon(tmp_path, exchanges=binance(venue)) as again:  # nothing was lost
        assert again.client().status(client_order_id=placed["client_order_id"])[
            "status"] == "open"
        again.client().cancel(client_order_id=placed["client_order_id"])


def test_the_crash_command_is_unknown_unless_fault_commands_are_on(
        daemon: DaemonProcess) -> None:
    with pytest.raises(ProtocolError) as refused:
        daemon.client().call("crash", {"actor": "order"})
    assert refused.value.code == "unknown_command"


def test_the_library_surfaces_a_restart_storm_as_an_error(tmp_path: Path) -> None:
    """An executor whose actors crash faster than they heal fails its calls at once."""
    config = {"state_dir": str(tmp_path), "exchange": {"name": "paper"},
              "supervisor": {"intensity": 1, "period_s": 60, "backoff_initial_s": 0}}

    async def scenario() -> None:
        async with ReliableOrderExecutor(config) as executor:
            placed = await executor.execute_order(resting_limit_buy(client_order_id="lib-s"),
                                                  return_order=True)
            system = executor._system  # the test-only Crash message, sent in-process
            assert system is not None
            system.registry.tell("order", Crash("test"))
            wait_until(lambda: system.registry.health()["order"]["restarts"] == 1,
                       "the first restart")
            again = await executor.get_order_status(client_order_id="lib-s")
            assert again["status"] == "open" == placed["status"]
            system.registry.tell("order", Crash("test"))  # one more: the storm
            started = time.monotonic()
            with pytest.raises((ProtocolError, RuntimeError)) as failed:
                await executor.get_order_status(client_order_id="lib-s")
            assert time.monotonic() - started < 2.0, "answered at once, not at a timeout"
            assert "restart storm" in str(failed.value)
            wait_until(lambda: system.escalated is not None, "the escalation")
            with pytest.raises(RuntimeError, match="restart storm"):
                await executor.execute_order(resting_limit_buy())

    asyncio.run(scenario())


def test_ping_and_health_are_not_ready_while_an_actor_restarts(tmp_path: Path) -> None:
    # the supervisor's jitter is seeded: the first restart waits 0.84 of its 2 s cap
    extra = f"{HEALING}backoff_initial_s = 2.0\nbackoff_max_s = 2.0\n"
    with running_daemon(tmp_path, extra=extra) as daemon:
        client = daemon.client()
        client.call("crash", {"actor": "metrics"})
        health = wait_until(lambda: (h := client.health())["state"] == "starting" and h,
                            "health to say starting")
        assert health["actors"]["metrics"]["alive"] is False
        assert health["actors"]["metrics"]["down_s"] >= 0
        assert health["actors"]["order"] == {"alive": True, "restarts": 0}
        assert client.ping()["state"] == "starting"
        # the other actors serve on: an order placed meanwhile is filled
        filled = client.submit({"symbol": "SOL/USD", "side": "buy", "type": "market",
                                "amount": "0.1"})
        assert filled["status"] == "filled"
        wait_restarted(client, "metrics", 1)
        assert client.ping()["state"] == "ready"


def test_a_scheduled_reconciliation_due_during_a_restart_still_runs(tmp_path: Path) -> None:
    extra = "[supervisor]\nbackoff_initial_s = 1.0\nbackoff_max_s = 1.0\n"  # waits 0.84 s
    with in_process_daemon(tmp_path, extra=extra) as (daemon, client):
        client.submit(resting_limit_buy(client_order_id="sched-1"))
        daemon.registry.tell("reconciler", Crash("test"))
        wait_until(lambda: not daemon.registry.is_up("reconciler"), "the crash")
        assert daemon.scheduled is not None
        daemon.scheduled.run()  # what the scheduler calls when a run is due
        [report] = [json.loads(line) for line in
                    daemon.config.report_file.read_text().splitlines()]
        assert report["exchanges"]["paper"]["counts"]["ledger_orders"] == 1
        assert daemon.registry.health()["reconciler"] == {"alive": True, "restarts": 1}
        assert daemon.scheduled.job.next_run_time is not None  # and it stays scheduled


def test_creates_carried_to_a_restarted_worker_still_count_in_the_backlog(
        tmp_path: Path) -> None:
    """Creates queued for a worker when it crashes go to its replacement (nothing is
    dropped), so they are still unanswered creates: `[orders] max_backlog` holds them."""
    venue = VenueProcess(tmp_path / "venue")
    # one worker, and a timeout no test run comes near: the venue's gate, not a clock,
    # keeps the first carried create unanswered until the backlog has been checked
    entry = binance(venue).replace("concurrency = 2", "concurrency = 1").replace(
        "timeout_ms = 1000", "timeout_ms = 120000")
    try:
        with running_daemon(tmp_path, extra=HEALING, exchanges=entry,
                            orders="max_backlog = 3\n") as daemon:
            client = daemon.client()
            tag = uuid.uuid4().hex[:8]
            venue.script({**CREATE, "fault": "hold_answer"})  # booked, answered on release
            client.call("crash", {"actor": "exchange.bx.0"})
            try:
                carried = [client.submit(market(f"c-{tag}-{n}", n), wait="durable")
                           for n in range(2)]  # queued behind the crash: carried over
                wait_restarted(client, "exchange.bx.0", 1)
                wait_until(lambda: venue.held() == 1, "the replacement's first create")
                assert all(client.status(client_order_id=o["client_order_id"])["status"]
                           == "pending_submit" for o in carried), "still unanswered"
                client.submit(market(f"d-{tag}-0", 0), wait="durable")  # the third
                with pytest.raises(ProtocolError) as refused:
                    client.submit(market(f"d-{tag}-1", 1), wait="durable")
                assert refused.value.code == "rate_limited"
            finally:
                venue.release()
            for order in carried:
                settle(client, order["client_order_id"], "filled")
    finally:
        venue.stop()


def test_a_stream_catch_up_under_way_when_order_restarts_still_ends_trusted(
        tmp_path: Path) -> None:
    """After a (re)connect the stream is trusted once the catch-up reads have answered;
    OrderActor counts them. A restarted OrderActor takes the catch-up over: the stream
    becomes live again, and tracking slows to its safety interval."""
    venue = VenueProcess(tmp_path / "venue")
    entry = binance(venue).replace("timeout_ms = 1000", "timeout_ms = 120000")
    try:
        with running_daemon(tmp_path, extra=HEALING, exchanges=entry,
                            tracking="safety_interval_s = 60\n") as daemon:
            client = daemon.client()

            def stream() -> dict[str, Any]:
                state: dict[str, Any] = client.health()["streams"]["bx"]
                return state

            wait_until(lambda: stream()["live"], "the stream live")
            # the symbol's first read goes by before the stream breaks; the next one, the
            # catch-up's, is held at the venue until the restart is done (the venue's
            # gate, not a clock, keeps the catch-up under way)
            venue.script(OPEN_ORDERS_HELD)
            client.submit(resting_limit_buy("2", "10", "SOL/USD",
                                            client_order_id=f"cu-{uuid.uuid4().hex[:8]}"))
            wait_until(lambda: venue.held() == 1, "the symbol's first read")
            venue.release()
            venue.script(OPEN_ORDERS_HELD)
            try:
                client.call("crash", {"actor": "stream-bx"})  # a new connection: a catch-up
                wait_until(lambda: (s := stream())["connected"] and s["reconnects"] == 1
                           and not s["caught_up"] and venue.held() == 1,
                           "the catch-up under way, its read held")
                client.call("crash", {"actor": "order"})
                wait_restarted(client, "order", 1)
            finally:
                venue.release()
            wait_until(lambda: stream()["live"], "the stream live after the restart")
    finally:
        venue.stop()
