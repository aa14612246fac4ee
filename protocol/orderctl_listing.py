"""`orderctl list`: one page as the daemon serves it (oldest first), or, with
`--newest` or `--since`, every page read and the orders picked here."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from protocol.client import OrderdClient

PAGE = 1000
DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def add_list_arguments(listing: argparse.ArgumentParser) -> None:
    listing.add_argument("--status", action="append", help="repeat for several")
    listing.add_argument("--symbol")
    listing.add_argument("--exchange")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--after", help="cursor from a previous page (oldest-first pages)")
    listing.add_argument("--newest", action="store_true", help="newest first")
    listing.add_argument("--since", help="only orders created at or after this: an RFC 3339 "
                         "time (2026-12-06T09:00:00Z) or a duration back from now (90s, 10m, "
                         "2h, 1d)")


def parse_since(text: str, now: datetime) -> datetime:
    """A point in time from an RFC 3339 time or a duration back from `now`."""
    duration = DURATION.fullmatch(text.strip())
    if duration is not None:
        try:
            return now - timedelta(seconds=float(duration.group(1)) * UNITS[duration.group(2)])
        except OverflowError:  # before year 1 (or no timedelta at all)
            raise ValueError(f"{text!r} reaches back too far") from None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither an RFC 3339 time (2026-12-06T09:00:00Z) "
                         "nor a duration back from now (90s, 10m, 2h, 1d)") from None
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone (add Z for UTC)")
    return moment


def list_orders(client: OrderdClient, args: argparse.Namespace,
                usage: Callable[[str], Any]) -> dict[str, Any]:
    """The `list` result the options ask for."""
    filters = {"status": args.status, "symbol": args.symbol, "exchange": args.exchange}
    filters = {k: v for k, v in filters.items() if v is not None}
    if not args.newest and args.since is None:
        return client.list(**filters, limit=args.limit, after=args.after)
    if args.after is not None:
        usage("--after pages oldest-first lists; it does not go with --newest or --since")
    if args.limit < 1:  # a slice here: -1 would drop the last order, 0 print none
        usage(f"--limit must be at least 1, not {args.limit}")
    since = None
    if args.since is not None:
        try:
            since = parse_since(args.since, datetime.now(UTC))
        except ValueError as exc:
            usage(f"--since: {exc}")
    orders = [order for order in _every_order(client, filters)
              if since is None or _created(order) >= since]
    if args.newest:
        orders.reverse()
    return {"orders": orders[:args.limit], "next": None}


def _every_order(client: OrderdClient, filters: dict[str, Any]) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = []
    after = None
    while True:
        page = client.list(**filters, limit=PAGE, after=after)
        orders += page["orders"]
        after = page.get("next")
        if not after:
            return orders


def _created(order: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(order["created_at"]))
