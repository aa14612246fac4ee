"""An exchange order of ours with terms outside our words is reported, never adopted:
the ledger holds only the sides and types the wire can carry."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.exchange.drivers.paper import PaperExchange, PaperVenue
from actors.ledger.reader import LedgerReader
from actors.reconcile.actor import ActorQueries
from actors.reconcile.compare import ExchangeCheck, ReconcileSettings
from tests.recon_support import BTC, WAIT_S, FakeClock, order_actors, seed_ledger


class StopLossType(PaperExchange):
    """The paper venue, showing one order's type in an exchange's own word, as ccxt
    passes on what it does not map (binance's STOP_LOSS_LIMIT, say)."""

    def __init__(self, venue: PaperVenue, clock: FakeClock, odd: str) -> None:
        super().__init__(venue, clock=clock.now, sleep=clock.sleep)
        self.odd = odd

    def fetch_open_orders(self, symbol: str | None = None, since: int | None = None,
                          limit: int | None = None,
                          params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        found = super().fetch_open_orders(symbol, since, limit, params)
        return [{**raw, "type": "stop_loss_limit"} if raw.get("clientOrderId") == self.odd
                else raw for raw in found]


def test_an_orphan_of_a_type_we_never_place_is_reported_not_adopted(tmp_path: Path) -> None:
    clock = FakeClock()
    seed_ledger(tmp_path / "ledger.sqlite", [])  # an empty ledger: both orders are orphans
    with order_actors(tmp_path, clock,
                      client=lambda venue: StopLossType(venue, clock, "od-odd")) as actors:
        for cid in ("od-odd", "od-plain"):
            actors.venue.create_order("default", BTC, "limit", "buy", Decimal("0.01"),
                                      Decimal("1000"), client_order_id=cid)
        reader = LedgerReader(tmp_path / "ledger.sqlite")
        try:
            section = ExchangeCheck("paper", reader, ActorQueries(actors.registry, "paper",
                                                                  WAIT_S),
                                    ReconcileSettings(min_age_s=0.0), clock.clock()).run()
        finally:
            reader.close()
    found = {d["client_order_id"]: d["kind"] for d in section.discrepancies}
    assert found == {"od-odd": "unknown_on_exchange", "od-plain": "unknown_on_exchange"}
    assert [repair.client_order_id for repair in section.repairs] == ["od-plain"]
