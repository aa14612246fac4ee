"""`orderctl`: the command-line client of orderd.

Readable text for people by default, `--json` for scripts. Exit status: 0 ok,
1 the daemon answered with an error, 2 bad usage, 3 no answer within the timeout,
4 the order ended `rejected` or `expired`, 141 stdout was closed (e.g. `| head`).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import zmq
import zmq.auth

from protocol.client import DEFAULT_ENDPOINT, DEFAULT_EVENTS_ENDPOINT, NoAnswer, OrderdClient
from protocol.errors import ProtocolError
from protocol.messages import OrderStatus, OrderType, Side, TimeInForce, Wait, words
from protocol.orderctl_listing import add_list_arguments, list_orders
from protocol.orderctl_render import render, render_error, to_json
from protocol.orderctl_watch import add_watch_arguments, watch

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NO_ANSWER, EXIT_ORDER_FAILED = 0, 1, 2, 3, 4
EXIT_CLOSED_PIPE = 141
"""What a shell reports for a program ended by SIGPIPE: `orderctl list | head`."""
FAILED_STATUSES = frozenset({OrderStatus.REJECTED, OrderStatus.EXPIRED})


def _version() -> str:
    try:
        return metadata.version("orderd")
    except metadata.PackageNotFoundError:
        return "unknown"


def _seconds(text: str) -> float:
    """A --timeout: a positive, finite number of seconds (a negative one waited for ever)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def _global_options(for_subcommand: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after its name. After it they are
    only set when given, so they never undo what was given before it."""
    options = argparse.ArgumentParser(add_help=False)

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if for_subcommand else value

    options.add_argument("--endpoint",
                         default=default(os.environ.get("ORDERD_ENDPOINT", DEFAULT_ENDPOINT)),
                         help=f"command socket (default {DEFAULT_ENDPOINT} or $ORDERD_ENDPOINT)")
    options.add_argument("--events", default=default(
        os.environ.get("ORDERD_EVENTS_ENDPOINT", DEFAULT_EVENTS_ENDPOINT)),
        help=f"event socket, for watch (default {DEFAULT_EVENTS_ENDPOINT} or "
             "$ORDERD_EVENTS_ENDPOINT)")
    options.add_argument("--timeout", type=_seconds, default=default(5.0),
                         help="seconds to wait for an answer (default 5)")
    options.add_argument("--json", action="store_true", default=default(False),
                         help="print the raw JSON result")
    options.add_argument("--client-key", default=default(os.environ.get("ORDERD_CLIENT_KEY")),
                         help="our CURVE secret certificate (or $ORDERD_CLIENT_KEY)")
    options.add_argument("--server-key", default=default(os.environ.get("ORDERD_SERVER_KEY")),
                         help="the daemon's CURVE public certificate (or $ORDERD_SERVER_KEY)")
    return options


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orderctl", description="Talk to a running orderd.",
                                     parents=[_global_options(False)])
    parser.add_argument("--version", action="version", version=f"orderctl {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = [_global_options(True)]

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, parents=common)

    command("ping", "is the daemon there?")
    command("health", "actors, circuits and exchange budgets")
    command("stats", "execution statistics")
    submit = command("submit", "place an order (prints its client order id first)")
    submit.add_argument("symbol")
    submit.add_argument("side", choices=words(Side))
    submit.add_argument("type", choices=words(OrderType))
    submit.add_argument("amount")
    submit.add_argument("price", nargs="?")
    submit.add_argument("--client-order-id", help="the idempotency key (default: a new one)")
    submit.add_argument("--exchange")
    submit.add_argument("--time-in-force", choices=words(TimeInForce))
    submit.add_argument("--wait", choices=words(Wait), default=Wait.ACCEPTED.value)
    for name in ("status", "cancel"):
        cmd = command(name, f"{name} of one order")
        cmd.add_argument("client_order_id", nargs="?")
        cmd.add_argument("--order-id", help="the exchange's order id instead")
    add_list_arguments(command("list", "orders, oldest first (--newest: newest first)"))
    command("reconcile", "run one reconciliation now").add_argument("--exchange")
    cancel_all = command("cancel-all", "cancel every live order (of an exchange, a symbol)")
    cancel_all.add_argument("--exchange")
    cancel_all.add_argument("--symbol")
    command("balance", "the exchanges' balances").add_argument("--exchange")
    for name in ("halt", "resume"):
        command(name, f"{name} new submits").add_argument("--reason")
    add_watch_arguments(command("watch", "print order events as they happen"))
    keygen = command("keygen", "write a CURVE key pair (no daemon needed)")
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
    return EXIT_OK


def _submit_args(args: argparse.Namespace) -> dict[str, Any]:
    order = {"symbol": args.symbol, "side": args.side, "type": args.type,
             "amount": args.amount, "price": args.price,
             "client_order_id": args.client_order_id, "exchange": args.exchange,
             "time_in_force": args.time_in_force}
    return {"order": {k: v for k, v in order.items() if v is not None}, "wait": args.wait}


def _request(args: argparse.Namespace, usage: Callable[[str], Any]) -> tuple[str, dict[str, Any]]:
    if args.command == "submit":
        return "submit", _submit_args(args)
    if args.command in ("status", "cancel"):
        if (args.client_order_id is None) == (args.order_id is None):
            usage("give a client order id or --order-id, not both")
        ref = ({"client_order_id": args.client_order_id} if args.client_order_id
               else {"order_id": args.order_id})
        return args.command, ref
    if args.command in ("reconcile", "balance"):
        return args.command, {"exchange": args.exchange} if args.exchange else {}
    if args.command == "cancel-all":
        scope = {"exchange": args.exchange, "symbol": args.symbol}
        return "cancel_all", {k: v for k, v in scope.items() if v is not None}
    if args.command in ("halt", "resume"):
        return args.command, {"reason": args.reason} if args.reason else {}
    return args.command, {}


def _outcome_unknown(args: argparse.Namespace) -> str:
    """What a script must do after a submit or cancel went unanswered."""
    cid = getattr(args, "client_order_id", None)
    if args.command in ("submit", "cancel") and cid:
        return f"; the outcome is unknown: run `orderctl status {cid}`"
    return " (is orderd running?)"


def _call(args: argparse.Namespace, usage: Callable[[str], Any]) -> int:
    if args.command == "submit" and args.client_order_id is None:
        args.client_order_id = f"ctl-{uuid.uuid4().hex}"
    cmd, cmd_args = ("list", {}) if args.command == "list" else _request(args, usage)
    if args.command == "submit":  # before sending: a timeout must not hide the order's id
        print(f"orderctl: client order id {args.client_order_id}", file=sys.stderr, flush=True)
    try:
        with OrderdClient(args.endpoint, timeout_s=args.timeout, client_key_file=args.client_key,
                          server_key_file=args.server_key) as client:
            result = (list_orders(client, args, usage) if args.command == "list"
                      else client.call(cmd, cmd_args))
    except NoAnswer:
        print(f"orderctl: no answer from {args.endpoint} within {args.timeout:g} s"
              f"{_outcome_unknown(args)}", file=sys.stderr)
        return EXIT_NO_ANSWER
    except ProtocolError as exc:
        if args.json:
            print(to_json({"error": exc.to_wire()}, indent=None))
        else:
            print(f"orderctl: {render_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    print(to_json(result) if args.json else render(result))
    order = result.get("order")
    if isinstance(order, dict) and order.get("status") in FAILED_STATUSES:
        return EXIT_ORDER_FAILED
    return EXIT_OK


def _run(argv: Sequence[str] | None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "keygen":
        try:
            return keygen(args.dir, args.name)
        except OSError as exc:  # a folder that cannot be made or written
            print(f"orderctl: keygen: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        if args.command == "watch":
            return watch(args)
        return _call(args, parser.error)
    except BrokenPipeError:
        raise
    except (ValueError, OSError) as exc:  # unreadable CURVE key files
        print(f"orderctl: CURVE keys: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except zmq.ZMQError as exc:
        endpoint = args.events if args.command == "watch" else args.endpoint
        print(f"orderctl: cannot use endpoint {endpoint!r}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(argv)
    except BrokenPipeError:
        # the reader left (`| head`): say nothing more, and let Python's exit flush nothing
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_CLOSED_PIPE


if __name__ == "__main__":
    sys.exit(main())
