"""The Python library: order execution in-process, with the original module's API.

    from orderd import ReliableOrderExecutor

    executor = ReliableOrderExecutor()
    await executor.configure({"state_dir": "orders"})
    order_id = await executor.execute_order(
        {"symbol": "BTC/USD", "side": "buy", "type": "market", "amount": 0.01})
    status = await executor.get_order_status(order_id)
    print(status["status"], status["filled"])

- `ReliableOrderExecutor`: the daemon's actors in this process (durable ledger,
  retries, circuit breakers, confirmation, tracking, reconciliation).
- `BasicOrderExecutor`: direct exchange calls with simple retries, orders in memory.
- `OrderExecutionInterface`: what both offer (all methods async).
- `ReconciliationJob`: reconciliation on a schedule or once, without the daemon.
- The monitoring decorators `log_execution_time`, `track_metrics`,
  `circuit_breaker_aware` and `alert_on_failure` (sync and async functions alike).

Their config is a dict of the daemon's configuration keys (`orderd.config`
documents the shape); without one they trade on the paper venue. A program need not
close an executor: its actors never keep the process alive, and they are stopped
(the ledger committed) at exit.
"""

from typing import TYPE_CHECKING, Any

from actors.metrics.monitoring import (
    alert_on_failure,
    circuit_breaker_aware,
    log_execution_time,
    track_metrics,
)
from orderd.basic import BasicOrderExecutor
from orderd.config import executor_config
from orderd.interface import OrderExecutionInterface
from orderd.reliable import ReliableOrderExecutor

if TYPE_CHECKING:
    from orderd.reconciliation_job import ReconciliationJob

__all__ = [
    "BasicOrderExecutor",
    "OrderExecutionInterface",
    "ReconciliationJob",
    "ReliableOrderExecutor",
    "alert_on_failure",
    "circuit_breaker_aware",
    "executor_config",
    "log_execution_time",
    "track_metrics",
]


def __getattr__(name: str) -> Any:
    # Imported on first use: `python -m orderd.reconciliation_job` runs that module as
    # __main__, and a copy imported here first would be a second one (runpy warns).
    if name == "ReconciliationJob":
        from orderd.reconciliation_job import ReconciliationJob

        return ReconciliationJob
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
