"""The command reference of protocol version 1, as one table.

This is the one place the commands, their arguments and results, the OrderSpec and
Order fields, the statuses and the error codes are described: `python -m
protocol.docs` writes them into docs/protocol.md, and a test keeps the page equal to
this table and the table equal to what the daemon parses (`validation.ARG_PARSERS`),
the statuses it knows (`messages.STATUSES`) and the codes it sends (`errors.RETRYABLE`).
Limits are read from the constants that enforce them, so a page never disagrees with
the code over a number.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.codec import DEFAULT_MAX_REQUEST_BYTES, MAX_FRAMES
from protocol.messages import DEFAULT_TIME_IN_FORCE, ORDER_TYPES, SIDES, TIMES_IN_FORCE
from protocol.validation import (
    CLIENT_ORDER_ID,
    MAX_FRACTION_DIGITS,
    MAX_INTEGER_DIGITS,
    MAX_LIST_LIMIT,
    MAX_SIGNIFICANT_DIGITS,
)


@dataclass(frozen=True)
class Command:
    """One wire command: what a client sends and gets."""

    name: str
    args: str
    """The `args` object, `?` marking optional keys; "none" for `{}`."""
    result: str
    """The `result` object of a successful reply."""
    rules: str
    """What a client relies on beyond the shapes: when it answers, what it refuses."""


def _code(values: tuple[str, ...]) -> str:
    return ", ".join(f"`{value}`" for value in values)


COMMANDS: tuple[Command, ...] = (
    Command(
        "ping", "none", '`{"version", "uptime_s", "state"}`',
        "`version` is a string; `state` is `starting`, `ready`, `halted` or `stopping` "
        "(`starting` also while a supervised actor restarts after a crash)."),
    Command(
        "submit", '`{"order": OrderSpec, "wait"?: "accepted" | "durable"}`',
        '`{"order": Order}`',
        "idempotent by `client_order_id`, and `wait` (default `accepted`) as the "
        "semantics below say. Before anything is recorded it "
        "is refused with `invalid_order` (a spec rule, a params key, an amount or price "
        "off the market's steps), `unknown_exchange`, `unknown_symbol`, `circuit_open`, "
        "`rate_limited`, `risk_rejected`, `exchange_unavailable` (the exchange's markets "
        "are not loaded yet), `starting` or `halted`."),
    Command(
        "status", '`{"client_order_id"}` or `{"order_id"}`', '`{"order": Order}`',
        "exactly one of the two ids (else `bad_request`); `not_found` when no order "
        "has it. An `order_id` is the exchange's, and exchanges number orders each "
        "their own way (binance per market): one that names orders on two exchanges or "
        "markets gets `bad_request` (`details.field` `order_id`), and `status` or "
        "`cancel` by `client_order_id` is then the way. Served while halted."),
    Command(
        "cancel", '`{"client_order_id"}` or `{"order_id"}`', '`{"order": Order}`',
        "the order as it then stands: `canceled` once the exchange confirmed, or "
        "`pending_cancel` while it has not yet (the final state follows as an event). "
        "Cancelling a `canceled` order succeeds and returns it; a `filled`, `rejected` "
        "or `expired` one gets `not_cancelable`; a live one of an exchange no longer "
        "configured gets `unknown_exchange` (`details`: `client_order_id`, `exchange`) "
        "and stays as it is. Served while halted."),
    Command(
        "list",
        '`{"status"?: [status, ...], "symbol"?, "exchange"?, "limit"?, "after"?}`',
        '`{"orders": [Order], "next": cursor or null}`',
        f"oldest first; `limit` is 1 to {MAX_LIST_LIMIT} (default 100); `after` takes "
        "the `next` of the previous page, and `next` is null on the last page. A single "
        "status string is taken as a list of one."),
    Command(
        "stats", "none",
        '`{"orders_by_status", "live_orders", "sends", "retries", "resends", '
        '"submit_latency", "unresolved", "circuits", "threads_cpu_s"}`',
        "execution statistics: counts by status, sends and retries to the exchanges, "
        "submit latency percentiles (`samples`, `p50_ms`, `p90_ms`, `p99_ms`, "
        "`max_ms`), the orders whose outcome is being resolved, each exchange's "
        'circuit (`{exchange: {"state", "errors_per_minute"}}`). Sends, retries and '
        "latencies count from the daemon's start: the order actor that replaces a "
        "crashed one counts on from them. Beyond the "
        "contract's keys: the CPU seconds each kind of the daemon's threads has spent "
        'since it started (`{"OrderActor": 12.3, "ExchangeActor": 40.1, ...}`; threads '
        "named alike but for a trailing number, such as the exchange workers, are "
        "summed; threads outside Python, such as ZeroMQ's, and ended ones are not "
        "counted; empty on systems other than Linux)."),
    Command(
        "reconcile", '`{"exchange"?}`', '`{"report": ReconciliationReport}`',
        "runs one reconciliation of one exchange (all when absent) now, after any run "
        "in progress; replies when it is done."),
    Command(
        "health", "none",
        '`{"state", "actors": {name: {"alive", "restarts", "down_s"?}}, '
        '"circuits": {exchange: {"state", "errors_per_minute"}}, "reason", '
        '"conditions", "refused_clients", "unresolved", "budgets", "streams"}`',
        "`state` as `ping` says it; an actor that is down says for how long "
        "(`down_s`). Beyond the contract's keys: the halt's `reason`, the `conditions` "
        "refusing submits, clients refused by CURVE, the unresolved orders, each "
        "exchange's request budget and user-data stream."),
    Command(
        "halt", '`{"reason"?}`', '`{"state"}`',
        "refuses new submits (`halted`) until `resume`; `cancel`, `cancel_all`, "
        "`status` and the reads still work. Recorded in the ledger before the reply, "
        "so the halt holds across restarts."),
    Command(
        "resume", '`{"reason"?}`', '`{"state"}`',
        "accepts submits again after `halt` (conditions such as an unwritable ledger "
        "end by themselves); recorded before the reply."),
    Command(
        "cancel_all", '`{"exchange"?, "symbol"?}`', '`{"orders": [Order]}`',
        "every live order in scope (none given: every live order) is asked to cancel, "
        "also while halted; the reply comes at once with those orders as recorded "
        "(`pending_cancel`, or already final), and each one's outcome follows as an "
        "event. Orders of an exchange no longer configured are left out (and as they "
        "are): the log says how many, and the metric `orderd_orders_set_aside` counts "
        "them per exchange (the reply has no place for them in this version)."),
    Command(
        "balance", '`{"exchange"?}`',
        '`{"balances": {exchange: {currency: {"free", "used", "total"}}}, "at"}`',
        "the exchange's answer now (all exchanges when none is given), decimal "
        "strings, currencies holding nothing left out; `at` is when it was gathered. "
        "Fetched by the exchange's side worker within the same request budget and "
        "circuit as every other request: `circuit_open`, `rate_limited` or "
        "`exchange_unavailable` when it cannot be."),
)

TEST_ONLY_COMMANDS = {
    "crash": '`{"actor"}`: makes that actor crash as if its state broke; served only '
             "with `[supervisor] fault_commands = true`, else `unknown_command`",
}
"""Commands the daemon parses that are not part of the contract."""

ORDER_SPEC: tuple[tuple[str, str, str], ...] = (
    ("client_order_id", f"string, `{CLIENT_ORDER_ID.pattern}`",
     "optional; the daemon makes one when absent. The idempotency key."),
    ("exchange", "string", "optional; defaults to the first configured exchange"),
    ("symbol", "string `BASE/QUOTE`", "must be a market of that exchange"),
    ("side", " or ".join(f"`{side}`" for side in SIDES), ""),
    ("type", " or ".join(f"`{kind}`" for kind in ORDER_TYPES), ""),
    ("amount", "decimal > 0",
     f"finite, at most {MAX_SIGNIFICANT_DIGITS} significant digits and "
     f"{MAX_FRACTION_DIGITS} after the decimal point, less than 10^{MAX_INTEGER_DIGITS}; "
     "NaN, infinities and booleans are `invalid_order`"),
    ("price", "decimal > 0",
     "required for `limit`; rejected for `market`; the same bounds as `amount`"),
    ("time_in_force", _code(TIMES_IN_FORCE),
     f"optional, limit only (default `{DEFAULT_TIME_IN_FORCE}`)"),
    ("params", "object",
     "optional: exchange options orderd does not own, from an allowlist per driver "
     "(see Exchange params below); a key that would change symbol, side, type, amount, "
     "price or a client order id, or any unlisted key, is `invalid_order` naming it "
     "(`details.field` `params.<key>`)"),
)
"""OrderSpec's fields: name, type, rule. Any other field is `invalid_order` naming it."""

ORDER_DESCRIPTION = (
    "`client_order_id`, `order_id` (the exchange's id, or null before the exchange "
    "acknowledged), `exchange`, `symbol`, `side`, `type`, `amount`, `price`, "
    "`time_in_force` (or null), `status`, "
    "`filled`, `remaining`, `average_price`, `fee` (`{\"currency\", \"cost\"}` or null), "
    "`created_at`, `updated_at`, `attempts` (sends to the exchange), `last_error` "
    "(`{\"code\", \"message\"}` or null)."
)

STATUSES: tuple[tuple[str, str], ...] = (
    ("pending_submit", "durably recorded, not yet acknowledged by the exchange"),
    ("unknown", "sent, outcome ambiguous (timeout, dropped connection, 5xx); being "
     "resolved by lookup, never by guessing"),
    ("open", "live on the exchange"),
    ("partially_filled", "live on the exchange, part of it filled"),
    ("pending_cancel", "cancel requested, not yet confirmed"),
    ("filled", "terminal"),
    ("canceled", "terminal"),
    ("rejected", "terminal; `last_error` says why (e.g. `insufficient_funds`)"),
    ("expired", "terminal"),
)
"""Order statuses and what each means, in the order of the contract's table."""

ERRORS: dict[str, str] = {
    "bad_request": "not JSON, not an object, an envelope field missing or of the wrong "
                   "type, an argument outside OrderSpec that breaks its command's rule "
                   f"(`details.field`), more than {MAX_FRAMES} frames",
    "unsupported_version": "`v` is an integer other than 1",
    "unknown_command": "`cmd` is none of the commands above",
    "request_too_large": "the whole message, envelope frames included, is over "
                         f"`max_request_bytes` (default {DEFAULT_MAX_REQUEST_BYTES})",
    "invalid_order": "an OrderSpec rule broken; `details.field` names the field",
    "unknown_exchange": "the exchange is not configured (also `cancel` of an order of "
                        "an exchange no longer configured)",
    "unknown_symbol": "the symbol is not a market of that exchange",
    "duplicate_client_order_id": "same id, different spec",
    "not_found": "no order with that id",
    "not_cancelable": "`cancel` of a `filled`, `rejected` or `expired` order",
    "risk_rejected": "a configured risk limit (notional, open orders, symbol allowlist)",
    "unauthorized": "authentication required and missing or refused (a CURVE client "
                    "key removed by a reload)",
    "halted": "the daemon is halted (by an operator or automatically) or stopping",
    "starting": "the daemon is still recovering orders after a start; `retry_after_s` set",
    "circuit_open": "the exchange's circuit breaker is open; `retry_after_s` set",
    "rate_limited": "a client or exchange rate limit; `retry_after_s` set",
    "exchange_unavailable": "the exchange cannot be reached, or its markets are not "
                            "loaded yet",
    "timeout": "the exchange did not answer in time",
    "internal": "a bug, or an actor restarting; the daemon logs it and keeps serving",
}
"""Error code -> when it is sent; whether it is retryable is `errors.RETRYABLE`'s."""
