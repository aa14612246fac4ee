"""The stream's once-only memories (foreign orders warned of, trades read) stay bounded
on an account that other programs keep trading on."""

from __future__ import annotations

from concurrent.futures import Future
from decimal import Decimal
from pathlib import Path
from typing import Any

import pykka

from actors.exchange.messages import OrderView
from actors.order.messages import ExchangeReport, GetStats, StreamEvents
from actors.order.stream import first_time
from actors.reconcile.messages import RECONCILER, RecordDiscrepancy
from protocol.messages import OrderStatus
from tests.recon_support import WAIT_S, FakeClock, order_actors


def test_a_key_is_new_once() -> None:
    seen: dict[str, None] = {}
    assert first_time(seen, "o-1") and not first_time(seen, "o-1")


def test_the_memory_keeps_only_the_newest_keys() -> None:
    seen: dict[str, None] = {}
    for n in range(1_000):
        assert first_time(seen, f"o-{n}", most=100)
    assert len(seen) == 100
    assert not first_time(seen, "o-999", most=100)  # still remembered
    assert first_time(seen, "o-0", most=100)  # forgotten long ago: new again
    assert len(seen) == 100



def test_foreign_orders_of_two_symbols_with_one_id_are_each_reported(tmp_path: Path) -> None:
    """binance numbers each symbol's orders on their own: another program's orders 7 on
    BTC and on ETH are two orders, each a discrepancy, and each is reported once."""
    reported: list[Any] = []

    class Reconciler(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> None:
            if isinstance(message, RecordDiscrepancy):
                reported.append(message.entry)

    with order_actors(tmp_path, FakeClock()) as actors:
        actors.registry.start(RECONCILER, Reconciler.start)
        foreign = [ExchangeReport("theirs", "fetch", "ok", OrderView(
            "7", OrderStatus.OPEN, Decimal(0), None, None, None, symbol=symbol))
            for symbol in ("BTC/USD", "ETH/USD", "BTC/USD")]
        actors.tell(StreamEvents("paper", tuple(foreign)))
        handled: Future[Any] = Future()
        actors.tell(GetStats(handled.set_result))  # after the events, in OrderActor's turn
        handled.result(timeout=WAIT_S)
        actors.registry.ref(RECONCILER).ask("what it was told before", timeout=WAIT_S)
    assert [(r["order_id"], r["source"]) for r in reported] == [("7", "stream")] * 2
