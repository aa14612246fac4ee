"""A worker's read of the exchange's unfilled order counts for its request budget
(see count_reads): OrderActor asks the side worker when a read is due; the answer
goes to the budget, a failure back to its plan."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.circuit.breakers import CircuitOpen
from actors.exchange.count_reads import CountRead
from actors.exchange.drivers.ccxt_driver import order_count_reader
from actors.exchange.errors import RESOLVE, RETRY
from actors.exchange.failure import CallFailed, error_info
from actors.exchange.metering import Meter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadOrderCounts:
    """Read the order counts of `exchange` for its budget (`read`: the budget's claim)."""

    exchange: str
    read: CountRead


def counts_reader(client: Any, meter: Meter | None,
                  read: Callable[[Callable[[], Any]], Any]
                  ) -> Callable[[ReadOrderCounts], None]:
    """The worker's handler of ReadOrderCounts: `read` makes a request as the worker's
    other reads (breaker, budget as a lookup, retries). The budget is told here whether
    the driver can read the counts, and only a metered client may: the read's weight
    must be counted."""
    request = order_count_reader(client) if meter is not None else None
    if meter is not None and request is not None:
        meter.budget.count_reads = True

    def handle(msg: ReadOrderCounts) -> None:
        if meter is None or request is None:
            return
        reads = meter.budget.reads
        reads.sent(msg.read)
        try:
            rows = read(request)
        except Exception as exc:  # noqa: BLE001 - whether to read again is judged below
            # not sent (no weight, the circuit open) or no answer read (a timeout, a
            # 5xx): the fill is still unread, and the next read a second later may get
            # it; one the exchange refused for good (400, permissions) would be again
            again = isinstance(exc, CircuitOpen) or (isinstance(exc, CallFailed)
                                                     and exc.rule.action in (RETRY, RESOLVE))
            reads.failed(msg.read, again)
            log.info("order counts of %s not read: %s", msg.exchange, error_info(exc).message)
            return
        meter.budget.counts_read(msg.read, rows)

    return handle
