"""ReliableOrderExecutor: the daemon's actors in-process, behind an async API."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from actors.circuit.breakers import NAME as CIRCUIT_ACTOR
from actors.circuit.messages import DescribeCircuits
from actors.exchange.budget import RequestBudget
from actors.exchange.messages import FetchBalance
from actors.exchange.routing import side_worker_name
from actors.metrics.alerts import Alerter
from actors.order.actor import NAME as ORDER_ACTOR
from actors.order.messages import Cancel, CancelAll, GetStats, GetStatus, RecordHalt, Submit
from actors.orders import rfc3339
from actors.reconcile.actor import NAME as RECONCILER
from actors.reconcile.actor import RUN_TIMEOUT_S
from actors.reconcile.messages import RunReconciliation
from actors.runtime import OPERATOR, Clock
from daemon.commands import check_exchange, check_submit, deliver
from daemon.config import Config
from daemon.market_steps import snap_floats, steps_for, take_floats
from daemon.system import ActorSystem
from daemon.wiring import ClientFactory
from orderd.accounts import Budgets, account_of
from orderd.bridge import Replies
from orderd.config import executor_config
from orderd.interface import ConfigDict, OrderExecutionInterface
from protocol.errors import ProtocolError
from protocol.validation import parse_cancel_all, parse_order_ref, parse_submit

REPLY_MARGIN_S = 30.0
"""Added to the configured accept timeout: the actors answer well within it."""
START_TIMEOUT_S = 120.0
"""Longest wait for the orders a previous run left unresolved to be resolved."""


class ReliableOrderExecutor(OrderExecutionInterface):
    """The same actors as the daemon, in this process: durable ledger, retries with a
    budget, circuit breakers, confirmation and tracking, reconciliation.

        async with ReliableOrderExecutor({"state_dir": "orders"}) as executor:
            order_id = await executor.execute_order(
                {"symbol": "BTC/USD", "side": "buy", "type": "market", "amount": "0.01"})

    The config is the library's dict (`orderd.config`); without an
    exchange it trades on the paper venue. Only one executor (or daemon) may use a
    state_dir at a time: `configure` raises StateDirInUse when another has it.
    Unclosed, it is stopped at the program's exit (see `ActorSystem.start`).
    """

    def __init__(self, config: ConfigDict | None = None, *, base_dir: Path | None = None,
                 clock: Clock | None = None, alerter: Alerter | None = None,
                 clients: dict[str, ClientFactory] | None = None) -> None:
        """`base_dir` anchors relative paths of the dict; `clients` replaces the client
        of an exchange (tests, embedding)."""
        self._base_dir = base_dir
        self._config = executor_config(config, base_dir) if config is not None else None
        self._clock = clock or Clock()
        self._budgets = Budgets(self._clock)
        self._alerter = alerter
        self._clients = clients
        self._system: ActorSystem | None = None
        self._stopping = threading.Event()
        self._lock = asyncio.Lock()
        self._replies = Replies()

    @property
    def config(self) -> Config | None:
        """The configuration in use (after `configure`)."""
        return self._config

    async def configure(self, config: ConfigDict | None = None) -> None:
        """Start the actors (stopping any running ones first), wait until orders left
        unresolved by a previous run are resolved, then accept orders. The actors are new;
        the request budget of each account an entry still talks to is kept (see
        `orderd.accounts`): a 429 or ban under way holds the new actors' requests too."""
        async with self._lock:
            if config is not None or self._config is None:
                self._config = executor_config(config, self._base_dir)
            await self._shutdown()
            self._stopping = threading.Event()
            system = ActorSystem(self._config, clock=self._clock, alerter=self._alerter,
                                 clients=self._clients, budgets=self._kept(self._config))
            await asyncio.to_thread(_boot, system, self._stopping)
            self._system = system

    def _kept(self, config: Config) -> dict[str, RequestBudget]:
        """Each entry's budget: the one of the account it talks to, kept across
        configure(), with the entry's `[budget]` shares as configured now."""
        return {e.name: self._budgets.of(e, account_of(e, config.state_dir))
                for e in config.exchanges}

    async def place(self, order: Mapping[str, Any], wait: str = "accepted") -> dict[str, Any]:
        system = self._running()
        fields, floats = take_floats(order)
        args = parse_submit({"order": fields, "wait": wait})
        spec = snap_floats(args.order, floats,
                           steps_for(system.markets, args.order, system.config.default_exchange))
        check_submit(spec, _names(system), system.markets, system.board,
                     {e.name: e.driver for e in system.config.exchanges})
        result = await self._ask(system, ORDER_ACTOR, "submit",
                                 lambda reply: Submit(spec, args.wait, reply))
        return dict(result["order"])

    async def get_order_status(self, client_order_id: str | None = None,
                               order_id: str | None = None) -> dict[str, Any]:
        """The Order with its `confirmation` trail."""
        system = self._running()
        ref = parse_order_ref({"client_order_id": client_order_id, "order_id": order_id})
        result = await self._ask(system, ORDER_ACTOR, "status",
                                 lambda reply: GetStatus(ref, reply))
        return dict(result["order"])

    async def cancel(self, client_order_id: str | None = None,
                     order_id: str | None = None) -> dict[str, Any]:
        system = self._running()
        ref = parse_order_ref({"client_order_id": client_order_id, "order_id": order_id})
        result = await self._ask(system, ORDER_ACTOR, "cancel", lambda reply: Cancel(ref, reply))
        return dict(result["order"])

    async def get_execution_stats(self) -> dict[str, Any]:
        """The daemon's `stats`: counts, sends, retries, latency, unresolved, circuits."""
        system = self._running()
        stats = await self._ask(system, ORDER_ACTOR, "stats", GetStats)
        circuits = await self._ask(system, CIRCUIT_ACTOR, "stats", DescribeCircuits)
        return {**stats, "circuits": circuits}

    async def reconcile_orders(self, exchange: str | None = None) -> dict[str, Any]:
        """One reconciliation run now (after any run in progress); its report."""
        system = self._running()
        if exchange is not None:
            check_exchange(exchange, _names(system))
        result = await self._ask(system, RECONCILER, "reconcile",
                                 lambda reply: RunReconciliation(exchange, reply),
                                 timeout_s=RUN_TIMEOUT_S)
        return dict(result["report"])

    async def cancel_all(self, exchange: str | None = None,
                         symbol: str | None = None) -> list[dict[str, Any]]:
        """Every live order in scope asked to cancel, also while halted; the orders as
        recorded (their outcomes follow, as `get_order_status` shows)."""
        system = self._running()
        args = parse_cancel_all({k: v for k, v in (("exchange", exchange), ("symbol", symbol))
                                 if v is not None})
        if args.exchange is not None:
            check_exchange(args.exchange, _names(system))
        result = await self._ask(system, ORDER_ACTOR, "cancel_all",
                                 lambda reply: CancelAll(args, reply))
        return list(result["orders"])

    async def get_balance(self, exchange: str | None = None) -> dict[str, Any]:
        """Each exchange's balances, read by its side worker within its rate limit."""
        system = self._running()
        names = _names(system) if exchange is None else [exchange]
        balances: dict[str, Any] = {}
        for name in names:
            check_exchange(name, _names(system))
            result = await self._ask(system, side_worker_name(name), "balance", FetchBalance)
            balances[name] = result["balances"]
        return {"balances": balances, "at": rfc3339(time.time())}

    async def halt(self, reason: str = "halted by the program") -> str:
        """Refuse new orders (`halted`) until `resume`, also after a restart: the halt is
        recorded in the ledger. Returns the state."""
        system = self._running()
        system.state.halt(reason, by=OPERATOR)
        result = await self._ask(system, ORDER_ACTOR, "halt", RecordHalt)
        return str(result["state"])

    async def resume(self) -> str:
        """Accept orders again after a halt (this executor's, a daemon's recorded one, or
        one made at start); returns the state."""
        system = self._running()
        system.state.resume()
        result = await self._ask(system, ORDER_ACTOR, "resume", RecordHalt)
        return str(result["state"])

    async def close(self) -> None:
        """Stop every actor (the ledger is committed last) and close the venues."""
        self._stopping.set()  # ends a wait for recovery in progress
        async with self._lock:
            await self._shutdown()

    async def _shutdown(self) -> None:
        system, self._system = self._system, None
        if system is None:
            return
        system.state.set("stopping")
        await asyncio.to_thread(system.stop)
        self._replies.fail_all(ProtocolError("halted", "the executor is closed"))

    def _running(self) -> ActorSystem:
        if self._system is None:
            raise RuntimeError("the executor is not running: await configure() first, "
                               "or use it as `async with`")
        if self._system.escalated is not None:  # its actors crash faster than they heal
            raise RuntimeError(f"the executor stopped after a restart storm "
                               f"({self._system.escalated}): close() it, or configure() "
                               "it again")
        return self._system

    async def _ask(self, system: ActorSystem, actor: str, what: str,
                   message: Callable[[Callable[[Any], None]], Any],
                   timeout_s: float | None = None) -> Any:
        """Tell `actor` the message made with a reply callback; await the reply."""
        future, reply = self._replies.new()
        deliver(system.registry, system.state, actor, message(reply), reply)
        if timeout_s is None:
            timeout_s = system.config.orders.accept_timeout_s + REPLY_MARGIN_S
        return await self._replies.wait(future, timeout_s, what)


def _names(system: ActorSystem) -> list[str]:
    return [e.name for e in system.config.exchanges]


def _boot(system: ActorSystem, stopping: threading.Event) -> None:
    """Start `system` and make it ready (in a worker thread: it blocks)."""
    system.start()
    try:
        system.guard_start()
    except BaseException:
        system.stop()
        raise
    deadline = threading.Timer(START_TIMEOUT_S, stopping.set)
    deadline.daemon = True
    deadline.start()
    try:
        system.wait_recovered(stopping)
    finally:
        deadline.cancel()
    if stopping.is_set():
        system.stop()
        raise ProtocolError("timeout", "closed, or orders left unresolved by the last run "
                            f"were not resolved within {START_TIMEOUT_S:g} s")
    system.state.running()
