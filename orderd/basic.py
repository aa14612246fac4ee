"""BasicOrderExecutor: direct exchange calls with simple retries, no actors, no ledger."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from actors.exchange.drivers.paper import PaperVenue
from actors.exchange.errors import HALT, REJECT, RESOLVE
from actors.exchange.failure import CallFailed, error_info
from actors.exchange.link import Attempts
from actors.exchange.order_params import check_params
from actors.order.admission import make_client_order_id
from actors.order.core import ambiguous_order_id
from actors.order.stats import OrderStats
from actors.orders import Order, rfc3339
from actors.runtime import Clock
from daemon.commands import check_exchange
from daemon.config import Config
from daemon.market_steps import Steps, check_steps, snap_floats, take_floats
from daemon.state_lock import StateDirLock
from daemon.wiring import ClientFactory, client_factory
from orderd.accounts import Budgets, Placement, account_of, placement_of
from orderd.config import basic_config
from orderd.direct import DirectExchange, try_later, wait_for
from orderd.direct_reconcile import reconcile_section
from orderd.interface import ConfigDict, OrderExecutionInterface
from orderd.order_sync import adopt_view, look, refresh, resolve
from protocol.errors import ProtocolError
from protocol.messages import OrderRef, OrderStatus
from protocol.validation import parse_cancel_all, parse_order_ref, parse_submit


class BasicOrderExecutor(OrderExecutionInterface):
    """Orders sent straight to the exchange from the caller's task, retried on the
    `[retry]` settings where the error table says a re-send is safe. Orders are kept
    in this object's memory, across configure() and close(), so a resubmit returns the
    order placed first; an id it never placed goes to the exchange as a new order (no
    ledger remembers it), and nothing is tracked in the background. A create whose
    outcome is unknown is never sent again: it stays `unknown`, looked up
    `[resolution] interval_s` apart, until found or proven absent by the daemon's rule
    (`rejected`, the reason in `last_error`; see `orderd.unclear`); when the lookups
    themselves fail it stays `unknown`, and `get_order_status` looks again. For a
    durable ledger, circuit breakers and tracking use ReliableOrderExecutor.

    The config is the library's dict (`orderd.config`) without the sections
    this executor does not use (see `basic_config`); the paper venue keeps its book
    in `state_dir`, which it owns while configured (StateDirInUse when another
    executor or daemon has it). `wait` is accepted for the interface's sake: every
    answer comes once the exchange has answered.
    """

    def __init__(self, config: ConfigDict | None = None, *, base_dir: Path | None = None,
                 clock: Clock | None = None, clients: dict[str, ClientFactory] | None = None,
                 seed: int | None = None) -> None:
        """`clients` replaces the client of an exchange; `seed` fixes the backoff jitter."""
        self._base_dir = base_dir
        self._config = basic_config(config, base_dir) if config is not None else None
        self._clock = clock or Clock()
        self._clients = clients or {}
        self._rng = random.Random(seed)
        self._ids = random.Random()  # seeded from the OS, whatever `seed`: ids stay unique
        self._exchanges: dict[str, DirectExchange] = {}
        self._venues: dict[str, PaperVenue] = {}
        self._lock: StateDirLock | None = None
        self._orders: dict[str, Order] = {}
        self._placements: dict[str, Placement] = {}  # where each order's entry placed it
        self._budgets = Budgets(self._clock)
        self._creating: dict[str, asyncio.Event] = {}
        """Orders whose create is in flight; set once it has ended."""
        self._stats = OrderStats()

    @property
    def config(self) -> Config | None:
        return self._config

    async def configure(self, config: ConfigDict | None = None) -> None:
        """Open a client per configured exchange (closing open ones); orders stay known."""
        if config is not None or self._config is None:
            self._config = basic_config(config, self._base_dir)
        await self.close()
        await asyncio.to_thread(self._open, self._config)

    def _open(self, config: Config) -> None:
        self._lock = StateDirLock(config.state_dir)
        self._lock.acquire()
        for exchange in config.exchanges:
            factory = self._clients.get(exchange.name) or client_factory(
                exchange, config.state_dir, self._clock, self._venues)
            budget = self._budgets.of(exchange, account_of(exchange, config.state_dir))
            self._exchanges[exchange.name] = DirectExchange(
                exchange.name, factory(), config.retry, self._rng, budget, self._clock,
                placement_of(exchange, config.state_dir))

    async def place(self, order: Mapping[str, Any], wait: str = "accepted") -> dict[str, Any]:
        config = self._running()
        fields, floats = take_floats(order)
        spec = parse_submit({"order": fields, "wait": wait}).order
        exchange = self._exchange(spec.exchange or config.default_exchange)
        # the daemon's check (check_submit), before the order is kept or sent
        check_params(config.exchange(exchange.name).driver, spec)
        cid = spec.client_order_id or make_client_order_id(
            config.orders.client_id_prefix, self._clock.now(), self._ids)
        spec = spec.normalized(config.default_exchange, cid)
        reads, sends = Attempts(), Attempts()
        try:
            markets = await self._markets(exchange, reads)
            if spec.symbol not in markets:
                raise ProtocolError("unknown_symbol", f"{spec.symbol} is not a market of "
                                    f"{exchange.name}", field="symbol")
            steps = Steps.of(markets[spec.symbol])
            spec = snap_floats(spec, floats, steps)
            check_steps(spec, steps)
            # from this check to the order's entry in the map nothing awaits: a concurrent
            # submit of the same client_order_id finds it, and is not sent twice
            existing = self._orders.get(cid)
            if existing is not None:
                if not existing.same_spec(spec):
                    raise ProtocolError("duplicate_client_order_id", f"client_order_id {cid!r}"
                                        " is already used by a different order",
                                        field="client_order_id")
                return await self._outcome_of(existing)
            placed = Order.from_spec(spec, self._clock.now())
            self._orders[cid] = placed
            self._placements[cid] = exchange.placement
            self._creating[cid] = created = asyncio.Event()
            started = self._clock.monotonic()
            try:
                adopt_view(placed, await exchange.create(placed, sends), self._clock)
            except Exception as exc:  # noqa: BLE001 - every exchange failure is judged below
                await self._create_failed(exchange, placed, exc, reads)
            finally:
                placed.attempts = sends.sends
                self._stats.submit_latency_s.append(self._clock.monotonic() - started)
                del self._creating[cid]
                created.set()
        finally:
            self._count(reads)
            self._count(sends)
        return placed.to_wire()

    async def _outcome_of(self, order: Order) -> dict[str, Any]:
        """A submit of an order already placed: its state once its create has ended."""
        created = self._creating.get(order.client_order_id)
        if created is not None:
            await created.wait()
        if self._orders.get(order.client_order_id) is not order:
            raise ProtocolError("exchange_unavailable", f"the first submit of "
                                f"{order.client_order_id} failed; submit it again",
                                retry_after_s=1.0)
        return order.to_wire()

    async def _create_failed(self, exchange: DirectExchange, order: Order, failure: Exception,
                             attempts: Attempts) -> None:
        error = error_info(failure)
        order.last_error = {"code": error.code, "message": error.message}
        if error.action == RESOLVE:  # it may have landed: look, never send it again
            order.move_to(OrderStatus.UNKNOWN, self._clock.now())
            await resolve(exchange, order, attempts, self._running(), self._clock)
        elif error.action in (REJECT, HALT):
            order.move_to(OrderStatus.REJECTED, self._clock.now())
        else:  # retries spent on errors known to leave no order: the caller may try again
            del self._orders[order.client_order_id], self._placements[order.client_order_id]
            raise try_later(f"{exchange.name}: {error.message}", error, 1.0)

    async def get_order_status(self, client_order_id: str | None = None,
                               order_id: str | None = None) -> dict[str, Any]:
        """The order, looked up on the exchange unless terminal; when the lookup fails,
        as last known."""
        order = self._find(parse_order_ref({"client_order_id": client_order_id,
                                            "order_id": order_id}))
        if not order.terminal and order.client_order_id not in self._creating:
            attempts = Attempts()
            await look(self._exchange_of(order), order, attempts, self._running(),
                       self._clock)
            self._count(attempts)
        return order.to_wire()

    async def cancel(self, client_order_id: str | None = None,
                     order_id: str | None = None) -> dict[str, Any]:
        order = self._find(parse_order_ref({"client_order_id": client_order_id,
                                            "order_id": order_id}))
        exchange = self._exchange_of(order)
        attempts = Attempts()
        try:
            if order.status == OrderStatus.UNKNOWN:  # first learn whether it was placed
                await resolve(exchange, order, attempts, self._running(), self._clock)
                if order.status == OrderStatus.UNKNOWN:
                    raise ProtocolError("exchange_unavailable", f"{exchange.name}: whether "
                                        f"{order.client_order_id} was placed is not known "
                                        "yet", retry_after_s=1.0)
            if not order.terminal:
                await self._send_cancel(exchange, order, attempts)
        finally:
            self._count(attempts)
        if order.status != OrderStatus.CANCELED:
            raise ProtocolError("not_cancelable", f"order {order.client_order_id} is "
                                f"{order.status}")
        return order.to_wire()

    async def _send_cancel(self, exchange: DirectExchange, order: Order,
                           attempts: Attempts) -> None:
        try:
            adopt_view(order, await exchange.cancel(order, attempts), self._clock)
        except Exception as exc:  # noqa: BLE001 - the order's state tells what happened
            error = error_info(exc)
            order.last_error = {"code": error.code, "message": error.message}
            await refresh(exchange, order, attempts, self._clock)
            if not order.terminal:  # the code cancel_order documents, the wait known
                raise ProtocolError("exchange_unavailable", f"{exchange.name}: cancel of "
                                    f"{order.client_order_id} failed: {error.message}",
                                    retry_after_s=wait_for(error, 1.0)) from None

    async def get_execution_stats(self) -> dict[str, Any]:
        """Counts by status, sends, retries, submit latency and unresolved orders of
        this executor's orders."""
        orders = self._orders.values()
        unknown = [o.created_at for o in orders if o.status == "unknown"]
        oldest = self._clock.now() - min(unknown) if unknown else 0.0
        return {
            "orders_by_status": dict(Counter(o.status.value for o in orders)),
            "live_orders": sum(1 for o in orders if not o.terminal),
            "sends": self._stats.sends,
            "retries": self._stats.retries,
            "submit_latency": self._stats.latency(),
            "unresolved": {"count": len(unknown), "oldest_age_s": round(oldest, 3)},
        }

    async def reconcile_orders(self, exchange: str | None = None) -> dict[str, Any]:
        """Look up every order not terminal, and list the exchange's open orders this
        executor does not know; the report has the daemon's layout, without repairs
        beyond taking the exchange's state."""
        config = self._running()
        names = [e.name for e in config.exchanges] if exchange is None else [exchange]
        started = self._clock.now()
        sections = {name: await self._reconcile(self._exchange(name)) for name in names}
        return {"run_id": uuid.uuid4().hex, "started_at": rfc3339(started),
                "finished_at": rfc3339(self._clock.now()), "exchanges": sections}

    async def _reconcile(self, exchange: DirectExchange) -> dict[str, Any]:
        attempts = Attempts()
        mine = [o for o in self._orders.values() if self._placed_on(o, exchange)]
        section = await reconcile_section(exchange, mine, attempts, self._running(),
                                          self._clock)
        self._count(attempts)
        return section

    async def cancel_all(self, exchange: str | None = None,
                         symbol: str | None = None) -> list[dict[str, Any]]:
        """Every order of this executor in scope that is not final, canceled one after the
        other; each as it then stands (one that could not be canceled too)."""
        args = parse_cancel_all({k: v for k, v in (("exchange", exchange), ("symbol", symbol))
                                 if v is not None})
        if args.exchange is not None:
            self._exchange(args.exchange)
        chosen = [o for o in self._orders.values() if not o.terminal
                  and args.exchange in (None, o.exchange) and args.symbol in (None, o.symbol)]
        for order in chosen:
            with contextlib.suppress(ProtocolError):  # it stands as it is; the rest go on
                await self.cancel(order.client_order_id)
        return [order.to_wire() for order in chosen]

    async def get_balance(self, exchange: str | None = None) -> dict[str, Any]:
        config = self._running()
        names = [e.name for e in config.exchanges] if exchange is None else [exchange]
        attempts, balances = Attempts(), {}
        try:
            for name in names:
                balances[name] = await self._exchange(name).balances(attempts)
        except CallFailed as exc:  # the exchange's own error, as this method has raised it
            raise exc.error from None
        finally:
            self._count(attempts)
        return {"balances": balances, "at": rfc3339(self._clock.now())}

    async def close(self) -> None:
        """Close the clients and paper venues. The orders stay known: forgetting them
        would let a resubmit after configure() place a second order under one id."""
        venues = list(self._venues.values())
        self._venues.clear()
        self._exchanges.clear()
        for venue in venues:
            await asyncio.to_thread(venue.close)
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()

    # --- helpers -------------------------------------------------------------------

    def _running(self) -> Config:
        if self._config is None or not self._exchanges:
            raise RuntimeError("the executor is not configured: await configure() first, "
                               "or use it as `async with`")
        return self._config

    def _exchange(self, name: str) -> DirectExchange:
        config = self._running()
        check_exchange(name, [e.name for e in config.exchanges])
        return self._exchanges[name]

    def _exchange_of(self, order: Order) -> DirectExchange:
        """The exchange of `order`, which only an earlier configuration may have had: an
        entry of its name that now talks to another address (or paper account) would
        look it up (by client id) and cancel it where it is not, or another's order under
        its id. A rotated API key is the same placement: its orders stay managed."""
        self._running()
        exchange = self._exchanges.get(order.exchange)
        if exchange is None or not self._placed_on(order, exchange):
            where = ("which the configuration no longer has" if exchange is None else
                     "whose entry now talks to another account or address")
            raise ProtocolError("unknown_exchange", f"order {order.client_order_id} is on "
                                f"{order.exchange!r}, {where}", field="exchange")
        return exchange

    def _placed_on(self, order: Order, exchange: DirectExchange) -> bool:
        """Whether `order` is where `exchange` talks now: placed through an entry of its
        name with the same placement (see orderd.accounts)."""
        return (order.exchange == exchange.name
                and self._placements[order.client_order_id] == exchange.placement)

    async def _markets(self, exchange: DirectExchange, attempts: Attempts) -> dict[str, Any]:
        try:
            return await exchange.markets(attempts)
        except Exception as exc:  # noqa: BLE001 - said as the protocol says it
            error = error_info(exc)
            raise try_later(f"the markets of {exchange.name} cannot be loaded: "
                             f"{error.message}", error, 5.0) from None

    def _find(self, ref: OrderRef) -> Order:
        """The order `ref` names, as the daemon finds it (OrderCore.find)."""
        if ref.client_order_id is not None:
            order = self._orders.get(ref.client_order_id)
        else:
            named = [o for o in self._orders.values() if o.order_id == ref.order_id]
            if len(named) > 1:
                raise ambiguous_order_id(str(ref.order_id))
            order = named[0] if named else None
        if order is None:
            which = ref.client_order_id or ref.order_id
            raise ProtocolError("not_found", f"no order {which!r} placed by this executor")
        return order

    def _count(self, attempts: Attempts) -> None:
        self._stats.sends += attempts.sends
        self._stats.retries += attempts.retries
