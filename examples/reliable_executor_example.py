"""ReliableOrderExecutor on the paper venue: place, look up, cancel, reconcile.

    python examples/reliable_executor_example.py [--state-dir DIR]

Runs offline in a few seconds. Without --state-dir the ledger and the paper
venue's book live in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from orderd import ReliableOrderExecutor
from protocol.errors import ProtocolError


def config_for(state_dir: Path) -> dict[str, Any]:
    """The original module's config dict: the daemon's keys, one exchange."""
    return {
        "state_dir": str(state_dir),
        "exchange": {"name": "paper", "driver": "paper"},
        "retry": {"max_retries": 3, "backoff_base": 2.0, "initial_delay": 0.2,
                  "max_delay": 10.0},
        "circuit_breaker": {"error_threshold": 10, "warning_threshold": 5,
                            "window_size_minutes": 1, "cool_down_seconds": 30},
    }


def show(what: str, order: dict[str, Any]) -> None:
    print(f"{what}: {order['client_order_id']} {order['side']} {order['amount']} "
          f"{order['symbol']} -> {order['status']} (filled {order['filled']}, "
          f"average price {order['average_price']})")


async def trade(state_dir: Path) -> None:
    print(f"starting the executor on the paper venue (state in {state_dir})")
    async with ReliableOrderExecutor(config_for(state_dir)) as executor:
        market = {"client_order_id": "example-market-1", "symbol": "BTC/USD",
                  "side": "buy", "type": "market", "amount": 0.01}
        order_id = await executor.execute_order(market)  # the client order id
        filled = await executor.get_order_status(order_id)
        show("market buy", filled)

        again = await executor.execute_order(market, return_order=True)
        same = again["order_id"] == filled["order_id"]
        print(f"submitted again with the same client_order_id: "
              f"{'the same order' if same else 'A NEW ORDER'} ({again['order_id']})")

        # a float that is not quite 0.3 is rounded to the market's amount step
        resting = await executor.execute_order({"symbol": "BTC/USD", "side": "buy",
                                                "type": "limit", "amount": 0.1 + 0.2,
                                                "price": 1000.0}, return_order=True)
        show("limit buy far below the market", resting)
        status = await executor.get_order_status(resting["client_order_id"])
        steps = ", ".join(step["step"] for step in status["confirmation"])
        print(f"status: {status['status']}, confirmation: {steps}")
        canceled = await executor.cancel_order(resting["client_order_id"])
        print(f"cancel_order: {canceled}; the order is now "
              f"{(await executor.get_order_status(resting['client_order_id']))['status']}")
        print(f"cancel_order of the filled market buy: {await executor.cancel_order(order_id)}")

        for bad in ({**market, "symbol": "DOGE/USD", "client_order_id": "example-bad"},
                    {**market, "amount": 0.123456, "client_order_id": "example-odd"}):
            try:
                await executor.execute_order(bad)
            except ProtocolError as error:
                print(f"refused: {error.code}: {error.message}")

        stats = await executor.get_execution_stats()
        print(f"stats: {stats['orders_by_status']}, sends {stats['sends']}, "
              f"retries {stats['retries']}, p50 submit {stats['submit_latency']['p50_ms']} ms, "
              f"unresolved {stats['unresolved']['count']}, "
              f"circuit {stats['circuits']['paper']['state']}")

        report = await executor.reconcile_orders()
        counts = report["exchanges"]["paper"]["counts"]
        print(f"reconciliation {report['run_id']}: {counts['ledger_orders']} orders in the "
              f"ledger, {counts['discrepancies']} discrepancies")
    print("executor closed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, help="where the ledger is kept")
    args = parser.parse_args()
    if args.state_dir is not None:
        asyncio.run(trade(args.state_dir))
        return
    with tempfile.TemporaryDirectory(prefix="orderd-example-") as folder:
        asyncio.run(trade(Path(folder)))


if __name__ == "__main__":
    main()
