"""The repeat limiter under an alert storm: once it held FORGET_AFTER identities, it
went through all of them for every new one, looking for some to forget; in a storm
none are (each was sent within its interval), so every alert cost a pass over
thousands and the MetricsActor fell behind the alerts it had to pass on. Now it keeps
them in the order they were last sent and forgets from the oldest end."""

from __future__ import annotations

import time

from actors.metrics.alert_sinks import FORGET_AFTER, RepeatLimiter
from actors.metrics.alerts import Alert

INTERVAL_S = 60.0


def of_order(n: int) -> Alert:
    return Alert("order_mismatch", "critical", "x", {"order": f"od-{n}"})


def test_beyond_the_bound_repeats_within_their_interval_are_held_back() -> None:
    now = [0.0]
    limiter = RepeatLimiter(INTERVAL_S, lambda: now[0])
    early = Alert("circuit_open", "critical", "x", {"exchange": "a"})
    assert limiter.admit(early) == 0
    now[0] += INTERVAL_S
    assert limiter.admit(early) == 0  # sent again: now among the newest, though first seen
    for n in range(FORGET_AFTER + 500):  # a storm of new identities within one interval
        now[0] += INTERVAL_S / (4 * FORGET_AFTER)
        assert limiter.admit(of_order(n)) == 0
    assert limiter.admit(early) is None
    assert [limiter.admit(of_order(n)) for n in (0, 1, FORGET_AFTER + 499)] == [None] * 3
    now[0] += INTERVAL_S  # all quiet: each is let through, with what was held back
    assert limiter.admit(of_order(0)) == 1
    assert limiter.admit(early) == 1
    assert limiter.admit(of_order(2)) == 0


def test_a_storm_of_new_identities_costs_little_per_alert() -> None:
    now = [0.0]
    limiter = RepeatLimiter(INTERVAL_S, lambda: now[0])
    storm = [of_order(n) for n in range(20 * FORGET_AFTER)]
    # a pass over the identities per alert took minutes here; one step each, well
    # under a second even on a loaded machine
    bound_s, started = 5.0, time.perf_counter()
    for alert in storm:
        now[0] += INTERVAL_S / len(storm) / 2
        assert limiter.admit(alert) == 0
        assert time.perf_counter() - started < bound_s, "each alert scans the identities"
