"""The stream's once-only memories (foreign orders warned of, trades read) stay bounded
on an account that other programs keep trading on."""

from __future__ import annotations

from actors.order.stream import first_time


def test_a_key_is_new_once() -> None:
    seen: dict[str, None] = {}
    assert first_time(seen, "o-1") and not first_time(seen, "o-1")


def test_the_memory_keeps_only_the_newest_keys() -> None:
    seen: dict[str, None] = {}
    for n in range(1_000):
        assert first_time(seen, f"o-{n}", most=100)
    assert len(seen) == 100
    assert not first_time(seen, "o-999", most=100)  # still remembered
    assert first_time(seen, "o-0", most=100)  # forgotten long ago: new again
    assert len(seen) == 100
