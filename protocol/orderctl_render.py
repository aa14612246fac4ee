"""How `orderctl` shows results to people: tables for lists of orders, indented
`key: value` lines for everything else, never a Python repr."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from protocol.errors import ProtocolError

ORDER_COLUMNS = ("client_order_id", "order_id", "exchange", "symbol", "side", "type",
                 "amount", "price", "status", "filled", "average_price")
EVENT_COLUMNS = ("client_order_id", "symbol", "side", "type", "amount", "price", "filled")


def scalar(value: Any) -> str:
    """One value as text: JSON's spelling for true, false and null (shown empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _inline(value: dict[str, Any]) -> str:
    """A small object on one line: `step=ack source=create`."""
    return " ".join(f"{key}={_flat(item)}" for key, item in value.items())


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + _inline(value) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flat(item) for item in value) + "]"
    return scalar(value)


def _entry(value: Any) -> str:
    return _inline(value) if isinstance(value, dict) else _flat(value)


def pairs(value: dict[str, Any], indent: str = "") -> list[str]:
    """Nested objects indented below their key; a list of objects one `- ` line each."""
    lines: list[str] = []
    for key, item in value.items():
        if isinstance(item, dict) and item:
            lines.append(f"{indent}{key}:")
            lines += pairs(item, indent + "  ")
        elif isinstance(item, list) and item:
            lines.append(f"{indent}{key}:")
            lines += [f"{indent}  - {_entry(entry)}" for entry in item]
        elif isinstance(item, (dict, list)):
            lines.append(f"{indent}{key}:")
        else:
            lines.append(f"{indent}{key}: {scalar(item)}".rstrip())
    return lines


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[scalar(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def render(result: dict[str, Any]) -> str:
    """The human form of a command's result."""
    if isinstance(result.get("orders"), list):
        text = table(result["orders"], ORDER_COLUMNS)
        return text + (f"\nnext page: --after {result['next']}" if result.get("next") else "")
    if isinstance(result.get("order"), dict):
        return "\n".join(pairs(result["order"]))
    return "\n".join(pairs(result))


def render_event(topic: str, event: dict[str, Any]) -> str:
    """One order event on one line: sequence number, status, then the order's terms."""
    order = event.get("order") or {}
    terms = " ".join(scalar(order.get(c)) for c in EVENT_COLUMNS)
    return f"{scalar(event.get('seq'))} {topic.removeprefix('order.')} {terms}".rstrip()


def render_error(error: ProtocolError) -> str:
    """`code: message`, then what the daemon added: when to retry, which field."""
    text = f"{error.code}: {error.message}"
    if error.retry_after_s is not None:
        text += f" (retry after {error.retry_after_s:g} s)"
    if error.details:
        text += " [" + _inline(error.details) + "]"
    return text


def json_number(value: Any) -> Any:
    """JSON numbers are read as exact decimals; they are printed as numbers again."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: Any, indent: int | None = 2) -> str:
    return json.dumps(value, indent=indent, default=json_number)
