"""Worker choice and the per-exchange backlog that submits are refused on."""

from __future__ import annotations

from actors.exchange.routing import Router


def test_only_unanswered_creates_make_the_backlog() -> None:
    router = Router({"paper": 2, "slow": 1})
    lookups = [router.pick("paper") for _ in range(5)]  # tracking and lookups
    creates = [router.pick("paper", create=True) for _ in range(3)]
    assert router.backlog("paper") == 3 and router.backlog("slow") == 0
    for worker in lookups:
        router.done(worker)
    assert router.backlog("paper") == 3
    router.answered(creates[0])  # its verifying fetch may still follow: done comes later
    assert router.backlog("paper") == 2


def test_idle_workers_take_turns() -> None:
    """Requests one after another (each finished before the next) go round every
    worker, so each worker's client gets used, not only the first."""
    router = Router({"paper": 3})
    picked = []
    for _ in range(3):
        worker = router.pick("paper", create=True)
        router.answered(worker)
        router.done(worker)
        picked.append(worker)
    assert sorted(picked) == ["exchange.paper.0", "exchange.paper.1", "exchange.paper.2"]
