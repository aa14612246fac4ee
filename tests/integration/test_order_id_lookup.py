"""`status` and `cancel` by the exchange's order id: exchanges number orders each their
own way (binance per market), so two paper accounts in one daemon both have an order
"1". Such an id is refused, naming the field, and nothing is canceled; a unique id is
found."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.errors import ProtocolError
from tests.helpers import resting_limit_buy, running_daemon

TWO_PAPER_ACCOUNTS = """
[[exchanges]]
name = "north"
driver = "paper"
[[exchanges]]
name = "south"
driver = "paper"
"""


def test_an_order_id_two_exchanges_share_is_refused_and_cancels_nothing(
        tmp_path: Path) -> None:
    with running_daemon(tmp_path, exchanges=TWO_PAPER_ACCOUNTS) as daemon:
        client = daemon.client()
        north = client.submit(resting_limit_buy(client_order_id="n-1", exchange="north"))
        south = client.submit(resting_limit_buy(client_order_id="s-1", exchange="south"))
        assert north["order_id"] == south["order_id"]  # each account's first order
        for ask in (client.status, client.cancel):
            with pytest.raises(ProtocolError) as refused:
                ask(order_id=north["order_id"])
            assert refused.value.code == "bad_request"
            assert refused.value.details == {"field": "order_id"}
            assert "client_order_id" in refused.value.message
        assert client.status(client_order_id="n-1")["status"] == "open"
        assert client.status(client_order_id="s-1")["status"] == "open"
        second = client.submit(resting_limit_buy(client_order_id="n-2", exchange="north"))
        assert client.cancel(order_id=second["order_id"])["client_order_id"] == "n-2"
        assert client.status(client_order_id="s-1")["status"] == "open"
        assert daemon.stop() == 0

