"""The ledger's records of what each exchange entry talks to (its place) and where its
orders were placed; actors.order.placement keeps them and sets aside at load the live
orders placed where their entry no longer points. Here is only their format, which the
ledger's readers (the reconciler's) need too.

A place is a JSON object (see daemon.wiring.placement); two places are the same when they
agree on every key both have, so a key a later version adds (an account id) does not set
aside the orders recorded without it.
"""

from __future__ import annotations

import json

ENTRY_KEY = "placed_on:"
"""+ entry name: what the entry's live orders were placed on (but those in ORDER_KEY)."""
ORDER_KEY = "placed_on_order:"
"""+ client order id: what an order set aside for it was placed on ("": none, managed)."""
ROWS_KEY = "placed_from_row:"
"""+ entry name: JSON [[first ledger row, place], ...], from each time the entry was
pointed elsewhere (none: never): each venue numbers its orders on its own, so an order
id of one names another order on the other, and only the rows of the place the entry
points to now may be taken for what it lists (see `rows_placed_here`)."""


def same_place(recorded: str, now: str) -> bool:
    """Whether an entry recorded at `recorded` still talks to it (see the module)."""
    before, after = json.loads(recorded), json.loads(now)
    return all(before[key] == after[key] for key in before.keys() & after.keys())


def rows_placed_here(rows: str | None) -> list[tuple[int, int | None]] | None:
    """The ledger rows [first, end) of an entry's orders placed on what it talks to now,
    from its ROWS_KEY record (None: it never moved, every row)."""
    if not rows:
        return None
    spans = json.loads(rows)
    now = spans[-1][1]
    ends: list[int | None] = [first for first, _ in spans[1:]]
    return [(first, end) for (first, place), end in zip(spans, [*ends, None], strict=True)
            if same_place(place, now)]
