"""BasicOrderExecutor keeps an unclear create `unknown` until its signed request can no
longer land, as the daemon does: a create held in transit inside binance's recvWindow
is booked late, and the executor reports that order, not a rejection."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from orderd import BasicOrderExecutor
from tests.helpers import KEY, SECRET, VenueProcess
from tests.library_support import run

CREATE = {"path": "/api/v3/order", "method": "POST"}


def test_basic_waits_for_a_create_booked_late(tmp_path: Path) -> None:
    venue = VenueProcess(tmp_path / "venue")
    try:
        config = {"state_dir": str(tmp_path / "state"),
                  "exchange": {"name": "bx", "driver": "binance", "api_url": venue.url,
                               "api_key": KEY, "secret": SECRET, "timeout_ms": 1000},
                  "resolution": {"interval_s": 0.2, "window_s": 0.5, "absent_needed": 2}}
        cid = f"late-{uuid.uuid4().hex[:16]}"
        order = {"symbol": "SOL/USD", "side": "buy", "type": "market", "amount": "0.1",
                 "client_order_id": cid}
        # the create times out after 1 s; held in transit 2.5 s, well inside binance's
        # 5 s recvWindow, it is then booked (and filled)
        venue.script({**CREATE, "fault": "late_booking", "delay_s": 2.5})

        async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
            async with BasicOrderExecutor(config) as executor:
                first = await executor.execute_order(order, return_order=True)
                again = await executor.execute_order(order, return_order=True)
                return first, again

        first, again = run(scenario)
        booked = [o for o in venue.orders() if o["clientOrderId"] == cid]
        assert [o["status"] for o in booked] == ["FILLED"]
        assert first["status"] == "filled", first["last_error"]
        assert first["order_id"] == str(booked[0]["orderId"]) and first["attempts"] == 1
        assert first["last_error"]["code"] == "timeout"  # why it had to be looked up
        assert again == first
    finally:
        venue.stop()
