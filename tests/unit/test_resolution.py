"""Lookups of orders whose exchange outcome is unknown."""

from __future__ import annotations

from actors.resolution import LOST_LOOKUP_S, Resolver, ResolveSettings


def test_absence_needs_several_lookups_across_the_window() -> None:
    resolver = Resolver(ResolveSettings(interval_s=1.0, window_s=5.0, absent_needed=3))
    resolver.add("c", 0.0)
    proven = []
    for now in (0.0, 1.0, 2.0, 5.0):
        assert resolver.due(now) == ["c"]
        proven.append(resolver.looked_up("c", absent=True, now=now))
    assert proven == [False, False, False, True]
    assert "c" not in resolver


def test_a_failed_lookup_proves_nothing() -> None:
    resolver = Resolver(ResolveSettings(interval_s=1.0, window_s=0.0, absent_needed=1))
    resolver.add("c", 0.0)
    resolver.due(0.0)
    assert resolver.looked_up("c", absent=False, now=0.0) is False
    assert "c" in resolver


def test_a_lost_lookup_is_sent_again() -> None:
    resolver = Resolver(ResolveSettings(interval_s=1.0))
    resolver.add("c", 0.0)
    assert resolver.due(0.0) == ["c"]
    assert resolver.due(5.0) == [], "still waiting for its answer"
    assert resolver.due(LOST_LOOKUP_S + 1) == ["c"], "its answer never came"
