"""binance's `GET /api/v3/rateLimit/order` on the paper venue (USER_DATA: signed, weight
40): the account's current unfilled order count in each ORDERS window whose limit is on,
as binance's rest-api.md ("Query Unfilled Order Count") shows them. A client whose
orders filled learns here that it may place more before the window ends."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from venue.limits import VenueLimiter
from venue.weights import UNFILLED_ORDER_COUNT, UNITS

SECONDS = {name: size for name, _, size in UNITS}


def unfilled_order_count(limiter: VenueLimiter, account: str) -> list[dict[str, Any]]:
    """One row per order window with a limit, its `count` the account's now."""
    counts = limiter.order_counts(account)
    rows = []
    for row in limiter.rate_limits():
        seconds = SECONDS[row["interval"]] * row["intervalNum"]
        if row["rateLimitType"] == "ORDERS" and seconds in counts:
            rows.append({**row, "count": counts[seconds]})
    return rows


def count_routes(limiter: VenueLimiter,
                 account: str) -> dict[tuple[str, str], Callable[[dict[str, str]], Any]]:
    """The route, for the dialect's table (it is not public: the server checks the key
    and the signature before it)."""
    return {UNFILLED_ORDER_COUNT: lambda _params: unfilled_order_count(limiter, account)}
