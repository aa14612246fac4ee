"""The client order ids the daemon makes: valid for the protocol and binance whatever
the prefix, unique, and in the order they were made (so the ledger's indexes by client
order id take each new one at their end, not on a page of its own)."""

from __future__ import annotations

import random

from actors.order.admission import make_client_order_id
from protocol.validation import CLIENT_ORDER_ID

LONGEST_PREFIX = "abcdefg-"  # [orders] client_id_prefix takes up to 8 characters
NOW = 1_765_000_000.123456


def test_an_id_with_the_longest_prefix_is_a_valid_client_order_id() -> None:
    made = make_client_order_id(LONGEST_PREFIX, NOW, random.Random(1))
    assert made.startswith(LONGEST_PREFIX)
    assert CLIENT_ORDER_ID.fullmatch(made), made  # at most 36 of [A-Za-z0-9_-]


def test_ids_made_later_sort_later() -> None:
    rng = random.Random(2)
    made = [make_client_order_id("od-", NOW + i * 1e-5, rng) for i in range(1000)]
    assert made == sorted(made)


def test_ids_made_at_one_instant_differ() -> None:
    rng = random.Random(3)
    made = {make_client_order_id("od-", NOW, rng) for _ in range(10_000)}
    assert len(made) == 10_000
