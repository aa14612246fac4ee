"""What an exchange entry of the library talks to is the daemon's placement: its driver
and binance's address as daemon.wiring spells it. Its orders follow the placement (a
key rotated on the same account keeps them); its request budget follows the placement
and the key (binance counts weight per address and orders per account)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from orderd import BasicOrderExecutor
from tests.library_support import limit, run
from tests.unit.orderd.test_basic_reconfigure import refused_as_unknown_exchange
from tests.unit.orderd.test_library_rate_limits import (
    held_by_a_429_across_configure,
)
from venue.binance.server import PaperVenueServer
from venue.book import PaperVenue


def entry(tmp_path: Path, api_url: str | None, api_key: str = "k") -> dict[str, Any]:
    exchange = {"name": "bx", "driver": "binance", "api_key": api_key, "secret": "s"}
    return {"state_dir": str(tmp_path),
            "exchange": exchange if api_url is None else {**exchange, "api_url": api_url}}


@pytest.mark.parametrize("spelled", ["https://api.binance.com", "https://api1.binance.com",
                                     "https://api.binance.com:443/"])
def test_binance_spelled_another_way_is_one_budget_across_configure(
        tmp_path: Path, spelled: str) -> None:
    """An entry without api_url, configured again with binance's address spelled out
    (or another of its own hosts, or its port): one address, one account, so the 429
    under way still holds the next order. (The client is the embedder's, sent to the
    venue here; the entry's api_url is what says where it talks.)"""
    held_by_a_429_across_configure(
        lambda server: (entry(tmp_path, None), entry(tmp_path, spelled)),
        lambda server: {"bx": lambda: build_binance(DriverSettings("k", "s", server.url))})


def test_a_rotated_key_keeps_the_orders_placed_with_the_old_one(tmp_path: Path) -> None:
    """The account's key is replaced (the venue now takes only the new one) and the
    entry configured with it: its open order is still looked up and canceled. Pointed
    at another address, the entry refuses the order `unknown_exchange`; pointed back,
    it manages it again."""
    book = PaperVenue(None)
    server = PaperVenueServer(book, api_key="k", secret="s").start()
    elsewhere = PaperVenueServer(PaperVenue(None), api_key="k2", secret="s").start()
    rotated = entry(tmp_path, server.url, "k2")

    async def scenario() -> tuple[dict[str, Any], bool]:
        async with BasicOrderExecutor(entry(tmp_path, server.url)) as executor:
            await executor.execute_order(limit(client_order_id="rot-1"))
            server.api_key = "k2"  # the old key revoked: the same account and address
            await executor.configure(rotated)
            looked = await executor.get_order_status("rot-1")
            await executor.configure(entry(tmp_path, elsewhere.url, "k2"))
            await refused_as_unknown_exchange(executor, "rot-1", "another account")
            await executor.configure(rotated)
            return looked, await executor.cancel_order("rot-1")

    try:
        looked, canceled = run(scenario)
    finally:
        server.stop()
        elsewhere.stop()
    assert looked["status"] == "open" and canceled is True
    assert [o["status"] for o in book.orders("default")] == ["canceled"]
