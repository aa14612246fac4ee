"""Which worker of an exchange gets the next request: the least busy one.

A cancel therefore goes to an idle worker rather than queueing behind a slow
create. Counts are kept by OrderActor (sent minus reported), so no worker needs
to be asked.
"""

from __future__ import annotations


def worker_name(exchange: str, index: int) -> str:
    return f"exchange.{exchange}.{index}"


class Router:
    """Outstanding requests per worker, and the creates each exchange has not yet
    answered; used by OrderActor's thread only."""

    def __init__(self, workers: dict[str, int]) -> None:
        self._busy: dict[str, dict[str, int]] = {
            exchange: {worker_name(exchange, i): 0 for i in range(count)}
            for exchange, count in workers.items()}
        self._exchange_of = {w: e for e, names in self._busy.items() for w in names}
        self._creates = dict.fromkeys(self._exchange_of, 0)  # unanswered, per worker
        self._backlog = dict.fromkeys(workers, 0)  # unanswered creates, per exchange
        self._turn = 0

    def pick(self, exchange: str, create: bool = False) -> str:
        workers = self._busy[exchange]
        self._turn += 1
        names = list(workers)
        # least busy; ties rotate so idle workers share the load
        start = self._turn % len(names)
        ordered = names[start:] + names[:start]
        name = min(ordered, key=workers.__getitem__)
        workers[name] += 1
        if create:
            self._creates[name] += 1
            self._backlog[exchange] += 1
        return name

    def done(self, worker: str) -> None:
        """The worker finished a request (its last report of it came)."""
        exchange = self._exchange_of.get(worker)
        if exchange is not None and self._busy[exchange][worker] > 0:
            self._busy[exchange][worker] -= 1

    def answered(self, worker: str) -> None:
        """The worker reported the outcome of a create."""
        exchange = self._exchange_of.get(worker)
        if exchange is not None and self._creates[worker] > 0:
            self._creates[worker] -= 1
            self._backlog[exchange] -= 1

    def backlog(self, exchange: str) -> int:
        """Creates sent to the exchange's workers and not yet answered. Lookups and
        tracking fetches do not count: only creates are what a client waits for."""
        return self._backlog.get(exchange, 0)


def side_worker_name(exchange: str) -> str:
    """The worker outside the order rotation: reconciliation queries and price refreshes,
    so they never hold up an order."""
    return f"exchange.{exchange}.side"
