"""A real daemon whose paper venue goes down: the breaker opens, answers fast, recovers."""

from __future__ import annotations

from pathlib import Path

from protocol.errors import ProtocolError
from tests.helpers import DaemonProcess, market_buy, wait_until

OUTAGE = """
[circuit_breaker]
error_threshold = 2.0
warning_threshold = 1.0
window_size_minutes = 1.0
cool_down_seconds = 1.0
[resolution]
interval_s = 0.2
window_s = 0.5
absent_needed = 2
[retry]
initial_delay = 0.05
max_delay = 0.1
"""
PAPER_WITH_OUTAGE = """
[[exchanges]]
name = "paper"
driver = "paper"
[exchanges.faults]
outage_file = "{flag}"
"""
"""The venue is down while the test keeps the flag file: the outage lasts until what it
must show has been seen, however slow the machine."""
KNOWN = {"open", "filled", "canceled", "rejected", "expired"}


def test_outage_opens_the_circuit_and_recovery_closes_it(tmp_path: Path) -> None:
    flag = tmp_path / "venue-down"
    daemon = DaemonProcess(tmp_path, extra=OUTAGE,
                           exchanges=PAPER_WITH_OUTAGE.format(flag=flag)).start()
    try:
        client = daemon.client()
        placed: list[str] = []
        refused: list[ProtocolError] = []
        client.submit(market_buy("0.1", "SOL/USD", client_order_id="before"))
        placed.append("before")
        flag.touch()  # the outage begins

        def submit_one() -> bool:
            cid = f"o-{len(placed) + len(refused)}"
            try:
                client.submit(market_buy("0.1", "SOL/USD", client_order_id=cid),
                              wait="durable")
                placed.append(cid)
            except ProtocolError as exc:
                refused.append(exc)
            return any(e.code == "circuit_open" for e in refused)

        wait_until(submit_one, "circuit_open replies", attempts=3000)
        error = next(e for e in refused if e.code == "circuit_open")
        assert error.retryable and error.retry_after_s is not None
        assert client.health()["circuits"]["paper"]["state"] in ("open", "half_open")

        def unresolved_shown() -> bool:
            shown = client.health()["unresolved"]
            return bool(shown["count"] >= 1 and shown["oldest_age_s"] > 0)

        # the creates the outage made ambiguous are visible (health's snapshot is
        # refreshed every tick), never silent
        wait_until(unresolved_shown, "health to show unresolved orders", attempts=3000)
        flag.unlink()  # the outage ends

        def recovered() -> bool:
            try:
                client.submit(market_buy("0.1", "SOL/USD",
                                         client_order_id=f"after-{len(placed)}"))
            except ProtocolError as exc:
                assert exc.code == "circuit_open"
                return False
            placed.append(f"after-{len(placed)}")
            return bool(client.health()["circuits"]["paper"]["state"] == "closed")

        wait_until(recovered, "the circuit to close", attempts=3000)

        def all_known() -> bool:
            return all(client.status(client_order_id=cid)["status"] in KNOWN for cid in placed)

        wait_until(all_known, "every order to end in a known state", attempts=3000)
        stats = client.stats()
        assert stats["unresolved"]["count"] == 0
        # health reads the snapshot OrderActor leaves on each tick
        wait_until(lambda: client.health()["unresolved"] == {"count": 0, "oldest_age_s": 0.0},
                   "health to show nothing unresolved", attempts=3000)
        assert stats["circuits"]["paper"]["state"] == "closed"
    finally:
        daemon.stop()
