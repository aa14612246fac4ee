"""The chaos soak, short: a real daemon and venue process under every kind of fault,
and not one order lost, placed twice, overfilled, left unresolved or unanswered.

`bench/soak.py` is the soak itself (`python -m bench.soak --minutes N`); here it runs
for 45 s with a fixed seed. Its timing figures (restart to ready, expired orders) are
printed, never asserted: they depend on the machine; the invariants do not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import INVARIANTS, Settings, run, table

SEED = 10
"""Its first faults are venue faults, a kill -9 of the daemon, a kill -9 of the venue
and an actor crash (then the rest of the shuffled deck, as time allows)."""


@pytest.mark.timeout(600)
def test_a_short_chaos_soak_breaks_no_invariant(tmp_path: Path) -> None:
    figures = run(Settings(minutes=0.75, seed=SEED, workdir=tmp_path / "soak"))
    print(table(figures))
    assert {"venue_faults", "kill_daemon", "kill_venue", "crash"} <= set(figures["faults"])
    assert figures["acked"] > 0 and figures["restarts"] >= 1
    broken = {name: figures[name] for name in INVARIANTS if figures[name]}
    assert broken == {}, figures["examples"]
