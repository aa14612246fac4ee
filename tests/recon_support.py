"""Test support for tracking and reconciliation: a fake clock, a seeded ledger and
paper venue, and in-process actors on them."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from actors.circuit.actor import CircuitActor
from actors.circuit.breakers import NAME as CIRCUIT_ACTOR
from actors.circuit.breakers import BreakerSettings, CircuitBoard, Circuits
from actors.exchange.actor import ExchangeActor
from actors.exchange.drivers.paper import PaperExchange, PaperVenue
from actors.exchange.link import ExchangeLink
from actors.exchange.messages import OrderTicket, OrderView, TradePage, TradeView
from actors.exchange.retry import RateLimiter, RetryBudget, RetryPolicy
from actors.exchange.routing import side_worker_name, worker_name
from actors.ledger.store import Ledger
from actors.metrics.alerts import Alert
from actors.order.actor import NAME as ORDER_ACTOR
from actors.order.actor import OrderActor, OrderSettings
from actors.order.messages import GetStatus
from actors.orders import Order
from actors.runtime import Clock, DaemonState
from actors.supervisor import Registry, Supervisor, SupervisorSettings
from protocol.codec import loads
from protocol.messages import OrderRef, OrderStatus, OrderType, Side, TimeInForce

T0 = 1_700_000_000.0
BTC = "BTC/USD"
ETH = "ETH/USD"
WAIT_S = 10.0


class FakeClock:
    """Time that moves only when told; sleeps are recorded, not slept."""

    def __init__(self, now: float = T0) -> None:
        self.wall = now
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.wall - T0 + 1000.0

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def advance(self, seconds: float) -> None:
        self.wall += seconds

    def clock(self) -> Clock:
        return Clock(now=self.now, monotonic=self.monotonic, sleep=self.sleep)


def ledger_order(cid: str, *, order_id: str | None = None, status: str = "open",
                 amount: str = "0.01", price: str | None = "1000", filled: str = "0",
                 fee: str | None = None, created_at: float = T0, side: str = "buy",
                 exchange: str = "paper", symbol: str = BTC) -> Order:
    return Order(client_order_id=cid, exchange=exchange, symbol=symbol, side=Side(side),
                 type=OrderType.LIMIT if price else OrderType.MARKET, amount=Decimal(amount),
                 price=Decimal(price) if price else None,
                 time_in_force=TimeInForce.GTC if price else None,
                 params={}, status=OrderStatus(status), order_id=order_id, filled=Decimal(filled),
                 fee_currency="USD" if fee else None, fee_cost=Decimal(fee) if fee else None,
                 created_at=created_at, updated_at=created_at, attempts=1)


def seed_ledger(path: Path, orders: list[Order],
                fills: list[tuple[str, TradeView]] | None = None) -> None:
    ledger = Ledger(path)
    for order in orders:
        ledger.stage(order)
    for cid, trade in fills or []:
        ledger.stage_fill("paper", cid, trade)
    ledger.commit()
    ledger.close()


class Events:
    """An event sink tests can wait on."""

    def __init__(self) -> None:
        self.queue: queue.Queue[dict[str, Any]] = queue.Queue()

    def publish(self, frames: list[bytes]) -> None:
        self.queue.put(loads(frames[1]))

    def next(self) -> dict[str, Any]:
        return self.queue.get(timeout=WAIT_S)


@dataclass
class Alerts:
    """An alerter that keeps what it was given."""

    seen: list[Alert] = field(default_factory=list)

    def alert(self, alert: Alert) -> None:
        self.seen.append(alert)


@dataclass
class Actors:
    registry: Registry
    events: Events
    alerts: Alerts
    venue: PaperVenue

    def tell(self, message: Any) -> None:
        self.registry.tell(ORDER_ACTOR, message)

    def status(self, cid: str) -> dict[str, Any]:
        done: Future[Any] = Future()
        self.tell(GetStatus(OrderRef(client_order_id=cid), done.set_result))
        result: dict[str, Any] = done.result(timeout=WAIT_S)["order"]
        return result


@contextmanager
def order_actors(state: Path, clock: FakeClock,
                 client: Callable[[PaperVenue], PaperExchange] | None = None,
                 **settings: Any) -> Iterator[Actors]:
    """OrderActor and the paper ExchangeActors on `state`, with captured events and alerts;
    `client` makes each worker's exchange client from the venue (a PaperExchange)."""
    registry, events, alerts = Registry(), Events(), Alerts()
    registry.supervisor = Supervisor.start(registry, SupervisorSettings(), clock.monotonic,
                                           clock.sleep, lambda reason: None)
    board = CircuitBoard(["paper"], clock.monotonic)
    circuits = Circuits(["paper"], BreakerSettings(), board, clock.monotonic, alerts)
    registry.start(CIRCUIT_ACTOR, lambda: CircuitActor.start(registry, circuits))
    link = ExchangeLink("paper", RetryPolicy(), RetryBudget(10, 1, clock.monotonic),
                        RateLimiter(None, clock.monotonic, clock.sleep), board, clock.clock())
    venue = PaperVenue(state / "paper-paper.sqlite", clock=clock.now)
    ready = DaemonState()
    ready.set("ready")
    order_settings = OrderSettings(ledger_path=state / "ledger.sqlite", default_exchange="paper",
                                   **settings)
    registry.start(ORDER_ACTOR, lambda: OrderActor.start(
        registry, order_settings, ready, events, clock.clock(), alerts))
    make = client or (lambda v: PaperExchange(v, clock=clock.now, sleep=clock.sleep))
    # an order worker, and the side worker that reads open orders for tracking
    for name in (worker_name("paper", 0), side_worker_name("paper")):
        registry.start(name, partial(ExchangeActor.start, registry, name, link,
                                     lambda: make(venue)))
    try:
        yield Actors(registry, events, alerts, venue)
    finally:
        registry.stop_all()
        venue.close()


class EmptyExchange:
    """Reconciliation's view of an exchange holding nothing of ours; `up=False`: one
    that cannot be reached."""

    def __init__(self, up: bool = True) -> None:
        self.up = up

    def open_orders(self) -> list[OrderView]:
        if not self.up:
            raise ConnectionError("unreachable")
        return []

    def trades(self, symbol: str, since: int | None, from_id: str | None,
               limit: int) -> TradePage:
        raise AssertionError("no symbols")

    def lookup(self, ticket: OrderTicket) -> OrderView:
        raise AssertionError("no lookups")
