"""Validation of command arguments into typed records.

Each parser raises `ProtocolError`: `invalid_order` for a broken OrderSpec rule,
`bad_request` for any other argument, both with `details.field`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from protocol.codec import format_decimal
from protocol.errors import ProtocolError
from protocol.messages import (
    STATUSES,
    ActorArg,
    CancelAllArgs,
    ExchangeArg,
    ListArgs,
    NoArgs,
    OrderRef,
    OrderSpec,
    OrderStatus,
    OrderType,
    ReasonArg,
    Side,
    SubmitArgs,
    TimeInForce,
    Vocabulary,
    Wait,
    member,
)
from protocol.text import is_printable

CLIENT_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,36}")
SYMBOL = re.compile(r"[A-Za-z0-9]{1,20}/[A-Za-z0-9]{1,20}")
ORDER_FIELDS = frozenset(
    {"client_order_id", "exchange", "symbol", "side", "type", "amount", "price",
     "time_in_force", "params"}
)
CURSOR = re.compile(r"[0-9]{1,18}")
"""A list cursor: ASCII digits that fit a 64-bit row number."""
MAX_LIST_LIMIT = 1000
MAX_TEXT = 256
MAX_SIGNIFICANT_DIGITS = 15
"""Digits of an amount or price: drivers hand ccxt floats, which hold 15 exactly."""
MAX_FRACTION_DIGITS = 18
"""Digits after the point: the smallest unit of any token (10^-18)."""
DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
"""A decimal string as every language writes one: ASCII digits, a point, an exponent.
Python's own reading also takes `1_000`, other scripts' digits and blanks around the
number, which a client in another language could not predict."""
MAX_PARAMS_DEPTH = 8
"""Levels of objects and arrays in an order's `params`, `params` itself the first."""
MAX_INTEGER_DIGITS = 15
"""Digits before the point: values below 10^15; a notional (amount times price) stays
far inside the range a decimal context can compute."""


def _invalid(field: str, message: str) -> ProtocolError:
    return ProtocolError("invalid_order", message, field=field)


def _bad(field: str, message: str) -> ProtocolError:
    return ProtocolError("bad_request", message, field=field)


def parse_decimal(value: Any, field: str) -> Decimal:
    """A finite decimal > 0 within the documented bounds, from a JSON string or number
    (never a boolean)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise _invalid(field, f"{field} must be a decimal string or number")
    if isinstance(value, str) and not DECIMAL_TEXT.match(value):
        raise _invalid(field, f"{field} is not a decimal number")
    try:
        number = Decimal(value if isinstance(value, str) else str(value))
    except (InvalidOperation, ValueError):
        raise _invalid(field, f"{field} is not a decimal number") from None
    if not number.is_finite():
        raise _invalid(field, f"{field} must be finite")
    if number <= 0:
        raise _invalid(field, f"{field} must be greater than 0")
    _check_bounds(number, field, from_float=isinstance(value, float))
    return number


def _check_bounds(number: Decimal, field: str, from_float: bool = False) -> None:
    """Refuse what the ledger, the codec or a driver could not hold exactly.

    Read from the digits themselves, not through a decimal context: formatting a
    value beyond the context's range raises after the order would be staged. A float
    (from the Python library; the wire's numbers are decimals) is taken as its `repr`,
    which a driver's float holds exactly by construction: only its size is bounded,
    and the market's step check says whether its digits are meant."""
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)  # finite
    end = len(digits)
    while end > 1 and digits[end - 1] == 0:  # trailing zeros say nothing
        end -= 1
        exponent += 1
    significant = end  # a decimal's digits have no leading zeros
    if exponent + significant > MAX_INTEGER_DIGITS:
        raise _invalid(field, f"{field} must be less than 10^{MAX_INTEGER_DIGITS}")
    if from_float:
        return
    if significant > MAX_SIGNIFICANT_DIGITS:
        raise _invalid(field, f"{field} has more than {MAX_SIGNIFICANT_DIGITS} "
                       "significant digits")
    if exponent < -MAX_FRACTION_DIGITS:
        raise _invalid(field, f"{field} has more than {MAX_FRACTION_DIGITS} digits "
                       "after the decimal point")


def _choice(spec: dict[str, Any], field: str, kind: type[Vocabulary]) -> Vocabulary:
    found = member(kind, spec.get(field))
    if found is None:
        raise _invalid(field, f"{field} must be one of {', '.join(kind)}")
    return found


def _optional_text(spec: dict[str, Any], field: str, invalid: bool) -> str | None:
    value = spec.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT:
        error = _invalid if invalid else _bad
        raise error(field, f"{field} must be a non-empty string")
    if not is_printable(value):
        error = _invalid if invalid else _bad
        # text that reaches logs, alerts and systemd must not carry line breaks,
        # escapes or lone surrogates (which no UTF-8 encoder accepts)
        raise error(field, f"{field} must be printable text: no control characters, "
                    "line breaks or invalid Unicode")
    return value


def parse_order_spec(spec: Any) -> OrderSpec:
    """An OrderSpec from the `order` argument of `submit`."""
    if not isinstance(spec, dict):
        raise _invalid("order", "order must be an object")
    unknown = sorted(set(spec) - ORDER_FIELDS)
    if unknown:
        raise _invalid(unknown[0], f"unknown order field {unknown[0]!r}")
    client_order_id = spec.get("client_order_id")
    if client_order_id is not None and (
        not isinstance(client_order_id, str) or not CLIENT_ORDER_ID.fullmatch(client_order_id)
    ):
        raise _invalid("client_order_id", "client_order_id must match [A-Za-z0-9_-]{1,36}")
    symbol = spec.get("symbol")
    if not isinstance(symbol, str) or not SYMBOL.fullmatch(symbol):
        raise _invalid("symbol", "symbol must be a string BASE/QUOTE")
    side = _choice(spec, "side", Side)
    order_type = _choice(spec, "type", OrderType)
    amount = parse_decimal(spec.get("amount"), "amount")
    price = _parse_price(spec, order_type)
    tif = None
    if spec.get("time_in_force") is not None:
        if order_type != OrderType.LIMIT:
            raise _invalid("time_in_force", "time_in_force is for limit orders only")
        tif = _choice(spec, "time_in_force", TimeInForce)
    params = _given(spec, "params", {})
    if not isinstance(params, dict):
        raise _invalid("params", "params must be an object")
    params = {key: _plain(item, f"params.{key}", 2) for key, item in params.items()}
    return OrderSpec(
        symbol=symbol,
        side=side,
        type=order_type,
        amount=amount,
        price=price,
        client_order_id=client_order_id,
        exchange=_optional_text(spec, "exchange", invalid=True),
        time_in_force=tif,
        params=params,
    )


def _plain(value: Any, field: str, depth: int) -> Any:
    """Exact decimals inside params become decimal strings: stored, compared and sent
    to the exchange the same way before and after a restart. A value nested deeper
    than MAX_PARAMS_DEPTH is refused here, naming its key: no driver takes one, and
    walking what the JSON parser allows (hundreds of levels) would end in a
    RecursionError, answered `internal` with a traceback of thousands of lines. A number
    is bounded as an amount is: one beyond a decimal's range (read as an infinity) or
    one too large to write out would be stored as "Infinity" or fail the writing."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _invalid(field, f"{field} must be finite")
        _check_bounds(value, field)
        return format_decimal(value)
    if isinstance(value, (dict, list)) and depth > MAX_PARAMS_DEPTH:
        raise _invalid(field, f"{field} is nested more than {MAX_PARAMS_DEPTH} levels deep")
    if isinstance(value, dict):
        return {key: _plain(item, field, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item, field, depth + 1) for item in value]
    return value


def _parse_price(spec: dict[str, Any], order_type: OrderType) -> Decimal | None:
    price = spec.get("price")
    if order_type == OrderType.MARKET:
        if price is not None:
            raise _invalid("price", "price is not allowed for market orders")
        return None
    if price is None:
        raise _invalid("price", "price is required for limit orders")
    return parse_decimal(price, "price")


def parse_submit(args: dict[str, Any]) -> SubmitArgs:
    """`{"order": OrderSpec, "wait"?: "accepted" | "durable"}`."""
    if "order" not in args:
        raise _bad("order", "order is required")
    wait = member(Wait, _given(args, "wait", Wait.ACCEPTED))
    if wait is None:
        raise _bad("wait", "wait must be accepted or durable")
    return SubmitArgs(order=parse_order_spec(args["order"]), wait=wait)


def parse_order_ref(args: dict[str, Any]) -> OrderRef:
    """`{"client_order_id"}` or `{"order_id"}`, exactly one."""
    client_order_id = _optional_text(args, "client_order_id", invalid=False)
    order_id = _optional_text(args, "order_id", invalid=False)
    if (client_order_id is None) == (order_id is None):
        raise _bad("client_order_id", "give exactly one of client_order_id or order_id")
    return OrderRef(client_order_id=client_order_id, order_id=order_id)


def parse_list(args: dict[str, Any]) -> ListArgs:
    """`{"status"?: [..], "symbol"?, "exchange"?, "limit"?, "after"?}`."""
    statuses = _statuses(args.get("status"))
    limit = _given(args, "limit", 100)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST_LIMIT:
        raise _bad("limit", f"limit must be an integer from 1 to {MAX_LIST_LIMIT}")
    after = _optional_text(args, "after", invalid=False)
    if after is not None and not CURSOR.fullmatch(after):
        raise _bad("after", "after must be a cursor returned by list")
    return ListArgs(
        statuses=statuses,
        symbol=_optional_text(args, "symbol", invalid=False),
        exchange=_optional_text(args, "exchange", invalid=False),
        limit=limit,
        after=after,
    )


def _given(fields: dict[str, Any], name: str, default: Any) -> Any:
    """An optional field's value, `default` when it is absent or null: serializers that
    write every optional field (serde's default, for one) send null for an unset one."""
    value = fields.get(name)
    return default if value is None else value


def _statuses(value: Any) -> tuple[OrderStatus, ...] | None:
    """The `status` filter of `list`: one status or a list of them."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    found = tuple(member(OrderStatus, item) for item in items) if isinstance(items, list) else ()
    if not isinstance(items, list) or None in found:
        raise _bad("status", f"status must be a list of: {', '.join(STATUSES)}")
    return tuple(status for status in found if status is not None)


def parse_exchange_arg(args: dict[str, Any]) -> ExchangeArg:
    """`{"exchange"?}`."""
    return ExchangeArg(exchange=_optional_text(args, "exchange", invalid=False))


def parse_cancel_all(args: dict[str, Any]) -> CancelAllArgs:
    """`{"exchange"?, "symbol"?}`."""
    symbol = _optional_text(args, "symbol", invalid=False)
    if symbol is not None and not SYMBOL.fullmatch(symbol):
        raise _bad("symbol", "symbol must be a string BASE/QUOTE")
    return CancelAllArgs(exchange=_optional_text(args, "exchange", invalid=False),
                         symbol=symbol)


def parse_reason(args: dict[str, Any]) -> ReasonArg:
    """`{"reason"?}`."""
    return ReasonArg(reason=_optional_text(args, "reason", invalid=False))


def parse_actor_arg(args: dict[str, Any]) -> ActorArg:
    """`{"actor"}` of the test-only `crash` command, checked by its handler: a daemon
    that does not serve it answers unknown_command whatever the arguments."""
    actor = args.get("actor")
    return ActorArg(actor=actor if isinstance(actor, str) else "")


def parse_no_args(args: dict[str, Any]) -> NoArgs:
    """No arguments."""
    return NoArgs()


ARG_PARSERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "ping": parse_no_args,
    "submit": parse_submit,
    "status": parse_order_ref,
    "cancel": parse_order_ref,
    "list": parse_list,
    "stats": parse_no_args,
    "reconcile": parse_exchange_arg,
    "health": parse_no_args,
    "halt": parse_reason,
    "resume": parse_reason,
    "cancel_all": parse_cancel_all,
    "balance": parse_exchange_arg,
    "crash": parse_actor_arg,
}


def parse_args(cmd: str, args: dict[str, Any]) -> Any:
    """The typed arguments of `cmd`; `unknown_command` when there is no such command."""
    parser = ARG_PARSERS.get(cmd)
    if parser is None:
        raise ProtocolError("unknown_command", f"unknown command {cmd!r}")
    return parser(args)
