"""The Python library: order execution in-process, with the original module's API.

    from daemon.executors import ReliableOrderExecutor

    async with ReliableOrderExecutor({"state_dir": "orders"}) as executor:
        order = await executor.execute_order(
            {"symbol": "BTC/USDT", "side": "buy", "type": "market", "amount": "0.01"})
        print(order["status"], order["filled"])

- `ReliableOrderExecutor`: the daemon's actors in this process (durable ledger,
  retries, circuit breakers, confirmation, tracking, reconciliation).
- `BasicOrderExecutor`: direct exchange calls with simple retries, orders in memory.
- `OrderExecutionInterface`: what both offer (all methods async).
- `ReconciliationJob`: reconciliation on a schedule or once, without the daemon.
- The monitoring decorators `log_execution_time`, `track_metrics`,
  `circuit_breaker_aware` and `alert_on_failure` (sync and async functions alike).

Their config is a dict of the daemon's configuration keys (`daemon.executor_config`
documents the shape); without one they trade on the paper venue.
"""

from actors.monitoring import (
    alert_on_failure,
    circuit_breaker_aware,
    log_execution_time,
    track_metrics,
)
from daemon.executor_config import executor_config
from daemon.executors.basic import BasicOrderExecutor
from daemon.executors.interface import OrderExecutionInterface
from daemon.executors.reliable import ReliableOrderExecutor
from daemon.reconciliation_job import ReconciliationJob

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
