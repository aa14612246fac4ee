"""binance's `GET /api/v3/rateLimit/order` on `orderd paper-venue`, read by real ccxt:
the account's current unfilled order counts, signed, weight 40."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ccxt.base.errors import AuthenticationError

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from tests.helpers import KEY, SECRET, VenueProcess, wait_until
from tests.stream_support import operator

BTC = "BTC/USD"


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[VenueProcess]:
    running = VenueProcess(tmp_path / "venue", "--orders-per-10s", "0",
                           "--orders-per-day", "10")
    try:
        yield running
    finally:
        running.stop()


def counts(client: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = client.private_get_ratelimit_order()
    return rows


def test_the_counts_read_are_the_accounts_lowered_by_a_first_fill(
        venue: VenueProcess) -> None:
    client = build_binance(DriverSettings(KEY, SECRET, venue.url))
    client.load_markets()
    # the day's count is read in one UTC day (not within 5 s of its end)
    wait_until(lambda: 86400 - time.time() % 86400 > 5, "a day with 5 s left")
    resting = [client.create_order(BTC, "limit", "buy", 0.01, 1000) for _ in range(3)]
    # only the limits that are on: the 10 s window is off
    assert counts(client) == [{"rateLimitType": "ORDERS", "interval": "DAY",
                               "intervalNum": 1, "limit": 10, "count": 3}]
    trade = {"symbol": BTC, "price": "1000", "amount": "0.004"}
    operator(venue.url, "/_venue/trade", trade)  # the first order's first fill (partial)
    assert [row["count"] for row in counts(client)] == [2]
    operator(venue.url, "/_venue/trade", trade)  # its second fill gives nothing back
    assert [row["count"] for row in counts(client)] == [2]
    seen = operator(venue.url, "/_venue/requests")
    weights = [weight for (method, path), weight in zip(seen["requests"], seen["weights"],
                                                        strict=True)
               if (method, path) == ("GET", "/api/v3/rateLimit/order")]
    assert weights == [40, 40, 40]
    assert client.last_response_headers["X-MBX-USED-WEIGHT-1M"].isdigit()
    assert len({order["id"] for order in resting}) == 3


def test_the_counts_are_user_data_signed_with_the_key(venue: VenueProcess) -> None:
    stranger = build_binance(DriverSettings("other-key", SECRET, venue.url))
    with pytest.raises(AuthenticationError):
        counts(stranger)
