"""Live orders placed where their exchange entry no longer points (its paper account, its
binance address changed while the daemon was down): set aside at load, and managed again
once the entry points back; a ledger older than the records sets nothing aside."""

from __future__ import annotations

import json
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from actors.exchange.config import ExchangeConfig
from actors.ledger.placement import ENTRY_KEY, ORDER_KEY
from actors.ledger.reader import LedgerReader
from actors.ledger.store import Ledger
from actors.order.messages import Cancel
from daemon.wiring import placement
from protocol.errors import ProtocolError
from protocol.messages import OrderRef
from tests.recon_support import WAIT_S, FakeClock, ledger_order, order_actors, seed_ledger
from tests.unit.order.test_removed_exchange import recovered

ALERT = "orders_of_moved_exchange"
FIRST = json.dumps({"driver": "paper", "account": "first"})
SECOND = json.dumps({"driver": "paper", "account": "second"})


def cancel_refusal(tmp_path: Path, place: str) -> tuple[ProtocolError | None, list[str]]:
    """Start on the ledger with the paper entry at `place`: the refusal of a cancel of
    rest-1 (None: it was sent, the order is pending_cancel) and the alerts of moved
    orders."""
    with order_actors(tmp_path, FakeClock(), places={"paper": place}) as actors:
        assert recovered(actors)
        answer: Future[Any] = Future()
        actors.tell(Cancel(OrderRef(client_order_id="rest-1"), answer.set_result))
        sent = actors.status("rest-1")["status"] == "pending_cancel"  # after the cancel
        alerts = [a.message for a in actors.alerts.seen if a.name == ALERT]
    if sent:
        return None, alerts
    refused = answer.result(timeout=WAIT_S)
    assert isinstance(refused, ProtocolError)
    return refused, alerts


def meta(tmp_path: Path, key: str) -> str | None:
    ledger = Ledger(tmp_path / "ledger.sqlite")
    try:
        return ledger.meta(key)
    finally:
        ledger.close()


def test_a_ledger_without_a_record_takes_the_entry_as_it_is(tmp_path: Path) -> None:
    seed_ledger(tmp_path / "ledger.sqlite", [ledger_order("rest-1", order_id="1")])
    refused, alerts = cancel_refusal(tmp_path, FIRST)
    assert refused is None and not alerts
    assert meta(tmp_path, ENTRY_KEY + "paper") == FIRST


def test_orders_of_a_moved_entry_are_set_aside_until_it_points_back(tmp_path: Path) -> None:
    seed_ledger(tmp_path / "ledger.sqlite", [ledger_order("rest-1", order_id="1")])
    with order_actors(tmp_path, FakeClock(), places={"paper": FIRST}) as actors:
        assert recovered(actors)  # records where rest-1 was placed

    refused, alerts = cancel_refusal(tmp_path, SECOND)
    assert refused is not None and refused.code == "unknown_exchange"
    assert refused.details == {"client_order_id": "rest-1", "exchange": "paper"}
    assert "no longer points" in refused.message
    assert len(alerts) == 1 and "account first" in alerts[0] and "account second" in alerts[0]
    # the entry's new orders go to the second account; rest-1 keeps its own record
    assert meta(tmp_path, ENTRY_KEY + "paper") == SECOND
    assert meta(tmp_path, ORDER_KEY + "rest-1") == FIRST
    reader = LedgerReader(tmp_path / "ledger.sqlite")
    assert list(reader.live("paper")) == []  # reconciliation leaves it out
    reader.close()

    refused, alerts = cancel_refusal(tmp_path, SECOND)  # still moved: still aside
    assert refused is not None and len(alerts) == 1

    refused, alerts = cancel_refusal(tmp_path, FIRST)  # pointed back
    assert refused is None and not alerts
    assert meta(tmp_path, ORDER_KEY + "rest-1") == ""
    assert meta(tmp_path, ENTRY_KEY + "paper") == FIRST


def test_a_place_recorded_with_fewer_fields_is_the_same_place(tmp_path: Path) -> None:
    """A field a later version adds (an account's id) sets nothing aside."""
    seed_ledger(tmp_path / "ledger.sqlite", [ledger_order("rest-1", order_id="1")])
    with order_actors(tmp_path, FakeClock(), places={"paper": FIRST}) as actors:
        assert recovered(actors)
    more = json.dumps({"driver": "paper", "account": "first", "uid": "7"})
    refused, alerts = cancel_refusal(tmp_path, more)
    assert refused is None and not alerts


def binance_place(api_url: str | None) -> str:
    """What a binance entry with `api_url` talks to, as the daemon records it."""
    return placement(ExchangeConfig(name="paper", driver="binance", api_url=api_url,
                                    api_key="key", secret="secret"))


def test_binance_base_endpoints_of_one_venue_are_one_place(tmp_path: Path) -> None:
    """binance serves its live API at api.binance.com, api-gcp and api1 to api4 ("use
    whichever works best"), and a default port is no other address: an entry switched
    among them keeps its orders managed (set aside, nothing would track or cancel them)."""
    seed_ledger(tmp_path / "ledger.sqlite", [ledger_order("rest-1", order_id="1")])
    with order_actors(tmp_path, FakeClock(), places={"paper": binance_place(None)}) as actors:
        assert recovered(actors)
    for url in ("https://api1.binance.com", "https://api-gcp.binance.com:443/",
                "https://API4.binance.com"):
        with order_actors(tmp_path, FakeClock(), places={"paper": binance_place(url)}) as actors:
            assert recovered(actors)
            assert not [a for a in actors.alerts.seen if a.name == ALERT], url
    refused, alerts = cancel_refusal(tmp_path, binance_place("https://api.binance.com"))
    assert (refused, alerts) == (None, [])
    assert binance_place("http://127.0.0.1:80") == binance_place("http://127.0.0.1")
    assert binance_place("https://testnet.binance.vision") != binance_place(None)
    assert binance_place("https://api.binance.com:8443") != binance_place(None)


def test_an_order_id_names_the_order_placed_where_the_entry_points(tmp_path: Path) -> None:
    """Each venue numbers its orders on its own: moved back and forth, an order id the
    entry's venue lists is taken for the order placed there, never for the other's."""
    path = tmp_path / "ledger.sqlite"

    def start(place: str) -> list[str]:
        with order_actors(tmp_path, FakeClock(), places={"paper": place}) as actors:
            assert recovered(actors)
        reader = LedgerReader(path)
        try:
            return [o.client_order_id for o in reader.by_order_ids("paper", ["1"]).values()]
        finally:
            reader.close()

    seed_ledger(path, [ledger_order("at-first", order_id="1", status="filled", filled="0.01")])
    assert start(FIRST) == ["at-first"]
    start(SECOND)
    seed_ledger(path, [ledger_order("at-second", order_id="1", status="filled", filled="0.01")])
    assert [start(place) for place in (FIRST, SECOND, FIRST)] == [
        ["at-first"], ["at-second"], ["at-first"]]
