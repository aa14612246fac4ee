"""BasicOrderExecutor's `status` and `cancel` by the exchange's order id, as the daemon's
(tests/integration/test_order_id_lookup.py): each venue numbers its orders its own way,
so an id two of the executor's orders share is refused `bad_request`, naming the field,
and nothing is looked up or canceled; a unique one is found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orderd import BasicOrderExecutor
from protocol.errors import ProtocolError
from tests.library_support import limit, run


def paper_entries(state_dir: Path, *names: str) -> dict[str, Any]:
    """Paper entries, each with a venue of its own in `state_dir`."""
    state_dir.mkdir(exist_ok=True)
    return {"state_dir": str(state_dir),
            "exchanges": [{"name": name, "driver": "paper"} for name in names]}


async def refused_as_ambiguous(executor: BasicOrderExecutor, order_id: str) -> None:
    for ask in (executor.get_order_status, executor.cancel_order):
        with pytest.raises(ProtocolError) as refused:
            await ask(order_id=order_id)
        assert refused.value.code == "bad_request"
        assert refused.value.details == {"field": "order_id"}
        assert "client_order_id" in refused.value.message


def test_an_order_id_two_exchanges_share_is_refused_and_cancels_nothing(
        tmp_path: Path) -> None:
    config = paper_entries(tmp_path, "north", "south")

    async def scenario() -> list[str]:
        async with BasicOrderExecutor(config) as executor:
            north = await executor.execute_order(
                limit(client_order_id="n-1", exchange="north"), return_order=True)
            south = await executor.execute_order(
                limit(client_order_id="s-1", exchange="south"), return_order=True)
            assert north["order_id"] == south["order_id"]  # each venue's first order
            await refused_as_ambiguous(executor, south["order_id"])
            second = await executor.execute_order(
                limit(client_order_id="n-2", exchange="north"), return_order=True)
            canceled = await executor.cancel_order(order_id=second["order_id"],
                                                   return_order=True)
            assert canceled["client_order_id"] == "n-2"
            return [(await executor.get_order_status(cid))["status"]
                    for cid in ("n-1", "s-1", "n-2")]

    assert run(scenario) == ["open", "open", "canceled"]


def test_an_order_id_shared_with_an_order_placed_elsewhere_is_refused(
        tmp_path: Path) -> None:
    """The entry is pointed at another paper venue (a book in another state_dir), whose
    first order has the id of the first one placed before: the id names two orders, not
    the older one."""
    async def scenario() -> str:
        async with BasicOrderExecutor(paper_entries(tmp_path / "a", "p")) as executor:
            first = await executor.execute_order(limit(client_order_id="a-1"),
                                                 return_order=True)
            await executor.configure(paper_entries(tmp_path / "b", "p"))
            here = await executor.execute_order(limit(client_order_id="b-1"),
                                                return_order=True)
            assert here["order_id"] == first["order_id"]
            await refused_as_ambiguous(executor, here["order_id"])
            return str((await executor.get_order_status("b-1"))["status"])

    assert run(scenario) == "open"
