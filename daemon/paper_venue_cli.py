"""`orderd paper-venue`: serve a paper venue over HTTP in the binance spot dialect."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from daemon.state_lock import StateDirInUse, StateDirLock
from venue.binance.faults import VenueFaults
from venue.binance.rest import MAX_TRADES_PAGE
from venue.binance.server import DEFAULT_API_KEY, DEFAULT_SECRET, PaperVenueServer
from venue.book import PaperVenue
from venue.limits import VenueLimiter, VenueLimits

STATE_FILE = "paper-venue.sqlite"


def add_parser(commands: Any) -> None:
    """Add the `paper-venue` subcommand to orderd's subparsers."""
    venue = commands.add_parser(
        "paper-venue", help="serve the paper venue over HTTP (binance spot REST dialect)",
        description="Serve the paper venue over HTTP in the binance spot REST dialect, so "
        "real ccxt (and orderd's binance driver) can trade against it. GET /_venue/orders "
        "lists every order; POST /_venue/faults, /_venue/price and /_venue/cancel script "
        "faults, set prices and cancel exchange-side. It keeps binance's request limits "
        "(429, then 418 bans); GET /_venue/usage shows what was used, POST /_venue/limits "
        "changes them. Bind it to a local address only.")
    venue.add_argument("--listen", default="127.0.0.1:8765", metavar="HOST:PORT",
                       help="address to serve on (default %(default)s; port 0 picks one)")
    venue.add_argument("--state", type=Path, metavar="DIR",
                       help=f"folder for the venue's database ({STATE_FILE}), owned by this "
                       "process alone (a second owner exits with status 2); without it the "
                       "venue lives in memory")
    venue.add_argument("--api-key", default=DEFAULT_API_KEY,
                       help="the API key it accepts (default %(default)s)")
    venue.add_argument("--secret", default=DEFAULT_SECRET,
                       help="the HMAC secret it checks signatures with (default %(default)s)")
    venue.add_argument("--account", default="default", help="the venue account it serves")
    venue.add_argument("--latency-ms", type=float, default=0.0,
                       help="delay before each API request")
    venue.add_argument("--error-rate", type=float, default=0.0,
                       help="chance of a transient error before the book "
                       "(503, -1001, dropped connection, 429 in turn)")
    venue.add_argument("--ambiguous-rate", type=float, default=0.0,
                       help="chance a create is booked but answered ambiguously "
                       "(dropped connection or -1007 in turn)")
    venue.add_argument("--ambiguous-delay-s", type=float, default=0.0,
                       help="if above 0, ambiguous creates may also answer this late")
    venue.add_argument("--reject-rate", type=float, default=0.0,
                       help="chance a create is refused with -2010 unbooked")
    venue.add_argument("--seed", type=int, default=0,
                       help="seed of the fault RNG and of a fresh venue's prices")
    binance = VenueLimits()
    venue.add_argument("--weight-limit", type=int, default=binance.weight_per_minute,
                       help="request weight per client address per minute, or per "
                       "--weight-window-s (default %(default)s, binance's; 0: no limit)")
    venue.add_argument("--orders-per-10s", type=int, default=binance.orders_per_10s,
                       help="new orders per account per 10 s, or per --orders-window-s "
                       "(default %(default)s; 0: no limit)")
    venue.add_argument("--orders-per-day", type=int, default=binance.orders_per_day,
                       help="new orders per account per UTC day (default %(default)s; "
                       "0: no limit)")
    venue.add_argument("--raw-requests-per-5m", type=int, default=binance.raw_requests_per_5m,
                       help="requests per client address per 5 minutes "
                       "(default %(default)s; 0: no limit)")
    venue.add_argument("--weight-window-s", type=int, default=binance.weight_window_s,
                       help="length of the calendar window --weight-limit counts in, "
                       "announced in exchangeInfo and the weight header as binance would "
                       "(default %(default)s, binance's minute)")
    venue.add_argument("--orders-window-s", type=int, default=binance.orders_window_s,
                       help="length of the calendar window --orders-per-10s counts in, "
                       "announced in exchangeInfo and the order count header as binance "
                       "would (default %(default)s, binance's 10 s)")
    venue.add_argument("--trades-page", type=int, default=MAX_TRADES_PAGE, metavar="N",
                       help="the most trades one myTrades answer lists, whatever its limit "
                       "asks (default %(default)s, binance's most); fewer make clients page")


def _address(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--listen: {listen!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


LIMIT_FLAGS = {"weight_per_minute": "weight_limit", "orders_per_10s": "orders_per_10s",
               "orders_per_day": "orders_per_day", "raw_requests_per_5m": "raw_requests_per_5m",
               "weight_window_s": "weight_window_s", "orders_window_s": "orders_window_s"}
"""VenueLimits field -> the attribute of its flag."""


def _limits(args: argparse.Namespace) -> VenueLimits:
    """The limits of the flags; ValueError names the flag that is wrong."""
    try:
        return VenueLimits(**{name: getattr(args, flag) for name, flag in LIMIT_FLAGS.items()})
    except ValueError as exc:
        name, _, why = str(exc).partition(": ")
        flag = "--" + LIMIT_FLAGS.get(name, name).replace("_", "-")
        raise ValueError(f"{flag}: {why}") from None


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        address = _address(args.listen)
        faults = VenueFaults(latency_ms=args.latency_ms, error_rate=args.error_rate,
                             ambiguous_rate=args.ambiguous_rate, reject_rate=args.reject_rate,
                             ambiguous_delay_s=args.ambiguous_delay_s, seed=args.seed)
        limits = _limits(args)
        if not 1 <= args.trades_page <= MAX_TRADES_PAGE:
            raise ValueError(f"--trades-page: from 1 to {MAX_TRADES_PAGE}, not {args.trades_page}")
    except ValueError as exc:
        print(f"orderd paper-venue: {exc}", file=sys.stderr)
        return 2
    lock = None if args.state is None else StateDirLock(args.state)
    if lock is not None:
        try:
            lock.acquire()
        except StateDirInUse as exc:
            print(f"orderd paper-venue: {exc}", file=sys.stderr)
            return 2
    venue = PaperVenue(None if args.state is None else args.state / STATE_FILE, seed=args.seed)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = PaperVenueServer(venue, address, api_key=args.api_key, secret=args.secret,
                              faults=faults, account=args.account,
                              limiter=VenueLimiter(limits),
                              trades_page=args.trades_page).start()
    print(f"paper-venue listening on {server.url}", flush=True)
    stop.wait()
    server.stop()
    venue.close()
    if lock is not None:
        lock.release()
    logging.getLogger("orderd").info("paper-venue stopped")
    return 0
