"""`orderctl`: the command-line client of orderd.

Tables for people by default, `--json` for scripts. Exit status: 0 ok, 1 the
daemon answered with an error, 2 bad usage, 3 no answer within the timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import zmq.auth

from protocol.client import DEFAULT_ENDPOINT, NoAnswer, OrderdClient
from protocol.errors import ProtocolError

EXIT_ERROR, EXIT_NO_ANSWER = 1, 3
ORDER_COLUMNS = ("client_order_id", "order_id", "exchange", "symbol", "side", "type",
                 "amount", "price", "status", "filled", "average_price")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orderctl", description="Talk to a running orderd.")
    parser.add_argument("--endpoint", default=os.environ.get("ORDERD_ENDPOINT", DEFAULT_ENDPOINT),
                        help=f"command socket (default {DEFAULT_ENDPOINT} or $ORDERD_ENDPOINT)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait (default 5)")
    parser.add_argument("--json", action="store_true", help="print the raw JSON result")
    parser.add_argument("--client-key", default=os.environ.get("ORDERD_CLIENT_KEY"),
                        help="our CURVE secret certificate (or $ORDERD_CLIENT_KEY)")
    parser.add_argument("--server-key", default=os.environ.get("ORDERD_SERVER_KEY"),
                        help="the daemon's CURVE public certificate (or $ORDERD_SERVER_KEY)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ping", help="is the daemon there?")
    sub.add_parser("health", help="actors and circuits")
    sub.add_parser("stats", help="execution statistics")
    submit = sub.add_parser("submit", help="place an order")
    submit.add_argument("symbol")
    submit.add_argument("side", choices=("buy", "sell"))
    submit.add_argument("type", choices=("limit", "market"))
    submit.add_argument("amount")
    submit.add_argument("price", nargs="?")
    submit.add_argument("--client-order-id")
    submit.add_argument("--exchange")
    submit.add_argument("--time-in-force", choices=("GTC", "IOC", "FOK"))
    submit.add_argument("--wait", choices=("accepted", "durable"), default="accepted")
    for name in ("status", "cancel"):
        cmd = sub.add_parser(name, help=f"{name} of one order")
        cmd.add_argument("client_order_id", nargs="?")
        cmd.add_argument("--order-id", help="the exchange's order id instead")
    listing = sub.add_parser("list", help="orders, oldest first")
    listing.add_argument("--status", action="append", help="repeat for several")
    listing.add_argument("--symbol")
    listing.add_argument("--exchange")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--after", help="cursor from a previous page")
    reconcile = sub.add_parser("reconcile", help="run one reconciliation now")
    reconcile.add_argument("--exchange")
    for name in ("halt", "resume"):
        cmd = sub.add_parser(name, help=f"{name} new submits")
        cmd.add_argument("--reason")
    keygen = sub.add_parser("keygen", help="write a CURVE key pair (no daemon needed)")
    keygen.add_argument("dir", nargs="?", default=".", help="where (default: here)")
    keygen.add_argument("--name", default="client", help="file name stem (default client)")
    return parser


def keygen(directory: str, name: str) -> int:
    """Write NAME.key (public: give it to the daemon) and NAME.key_secret (keep it)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    old = os.umask(0o077)  # the secret is never readable by others, not even briefly
    try:
        public, secret = zmq.auth.create_certificates(path, name)
    finally:
        os.umask(old)
    os.chmod(public, 0o644)
    print(f"public key:  {public}\nsecret key:  {secret}")
    return 0


def _request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    if args.command == "submit":
        order = {"symbol": args.symbol, "side": args.side, "type": args.type,
                 "amount": args.amount, "price": args.price,
                 "client_order_id": args.client_order_id, "exchange": args.exchange,
                 "time_in_force": args.time_in_force}
        return "submit", {"order": {k: v for k, v in order.items() if v is not None},
                          "wait": args.wait}
    if args.command in ("status", "cancel"):
        if (args.client_order_id is None) == (args.order_id is None):
            raise SystemExit("orderctl: give a client order id or --order-id, not both")
        ref = ({"client_order_id": args.client_order_id} if args.client_order_id
               else {"order_id": args.order_id})
        return args.command, ref
    if args.command == "list":
        filters = {"status": args.status, "symbol": args.symbol, "exchange": args.exchange,
                   "limit": args.limit, "after": args.after}
        return "list", {k: v for k, v in filters.items() if v is not None}
    if args.command == "reconcile":
        return "reconcile", {"exchange": args.exchange} if args.exchange else {}
    if args.command in ("halt", "resume"):
        return args.command, {"reason": args.reason} if args.reason else {}
    return args.command, {}


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _pairs(value: dict[str, Any], indent: str = "") -> str:
    lines = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            lines.append(f"{indent}{key}:")
            lines.append(_pairs(item, indent + "  "))
        else:
            lines.append(f"{indent}{key}: {'' if item is None else item}")
    return "\n".join(lines)


def render(command: str, result: dict[str, Any]) -> str:
    """The human form of a result."""
    if "orders" in result:
        text = _table(result["orders"], ORDER_COLUMNS)
        return text + (f"\nnext page: --after {result['next']}" if result.get("next") else "")
    if "order" in result:
        return _pairs(result["order"])
    return _pairs(result)


def _number(value: Any) -> Any:
    """JSON numbers are read as exact decimals; they are printed as numbers again."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "keygen":
        return keygen(args.dir, args.name)
    cmd, cmd_args = _request(args)
    try:
        with OrderdClient(args.endpoint, timeout_s=args.timeout, client_key_file=args.client_key,
                          server_key_file=args.server_key) as client:
            result = client.call(cmd, cmd_args)
    except (ValueError, OSError) as exc:
        print(f"orderctl: CURVE keys: {exc}", file=sys.stderr)
        return 2
    except NoAnswer:
        print(f"orderctl: no answer from {args.endpoint} within {args.timeout:g} s "
              "(is orderd running?)", file=sys.stderr)
        return EXIT_NO_ANSWER
    except ProtocolError as exc:
        if args.json:
            print(json.dumps({"error": exc.to_wire()}, default=_number))
        else:
            print(f"orderctl: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(result, indent=2, default=_number) if args.json else render(cmd, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
