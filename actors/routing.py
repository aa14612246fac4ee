"""Which worker of an exchange gets the next request: the least busy one.

A cancel therefore goes to an idle worker rather than queueing behind a slow
create. Counts are kept by OrderActor (sent minus reported), so no worker needs
to be asked.
"""

from __future__ import annotations


def worker_name(exchange: str, index: int) -> str:
    return f"exchange.{exchange}.{index}"


class Router:
    """Outstanding requests per worker; used by OrderActor's thread only."""

    def __init__(self, workers: dict[str, int]) -> None:
        self._busy: dict[str, dict[str, int]] = {
            exchange: {worker_name(exchange, i): 0 for i in range(count)}
            for exchange, count in workers.items()}
        self._outstanding = dict.fromkeys(workers, 0)  # per exchange, kept with _busy
        self._turn = 0

    def pick(self, exchange: str) -> str:
        workers = self._busy[exchange]
        self._turn += 1
        names = list(workers)
        # least busy; ties rotate so idle workers share the load
        start = self._turn % len(names)
        ordered = names[start:] + names[:start]
        name = min(ordered, key=workers.__getitem__)
        workers[name] += 1
        self._outstanding[exchange] += 1
        return name

    def done(self, worker: str) -> None:
        for exchange, workers in self._busy.items():
            if workers.get(worker, 0) > 0:
                workers[worker] -= 1
                self._outstanding[exchange] -= 1
                return

    def forget(self, worker: str) -> None:
        """The worker was restarted: the requests queued for it are gone, and so is their
        count, which would otherwise hold its exchange's backlog up for good."""
        for exchange, workers in self._busy.items():
            if worker in workers:
                self._outstanding[exchange] -= workers[worker]
                workers[worker] = 0
                return

    def outstanding(self, exchange: str) -> int:
        """Requests sent to the exchange's workers and not yet reported."""
        return self._outstanding.get(exchange, 0)


def side_worker_name(exchange: str) -> str:
    """The worker outside the order rotation: reconciliation queries and price refreshes,
    so they never hold up an order."""
    return f"exchange.{exchange}.side"
