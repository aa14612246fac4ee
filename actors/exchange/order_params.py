"""The exchange options an order may carry in `params`: an allowlist per driver.

ccxt merges an order's params over the request it builds (binance's create_order
copies every key it does not read itself into the request), so an unchecked key
would change what is sent after the risk check and the ledger saw the order:
`quantity`, `side` or `symbol` would trade something else, and `clientAlgoId` would
send a client order id other than ours, which a lookup by ours never finds. Only
the keys listed here pass, each with its value checked; symbol, side, type,
amount, price, time in force and the client order id always come from the order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ccxt.base.errors import InvalidOrder

from actors.exchange.drivers.ccxt_driver import client_id_params
from protocol.errors import ProtocolError


class Terms(Protocol):
    """What an option's check may depend on: an OrderSpec, an Order or an OrderTicket."""

    @property
    def type(self) -> str: ...

    @property
    def time_in_force(self) -> str | None: ...

    @property
    def params(self) -> dict[str, Any]: ...


Check = Callable[[Any, Terms], str | None]
"""Why the value is refused with these terms, or None when it is fine."""


def _post_only(value: Any, terms: Terms) -> str | None:
    """Rest on the book or be refused, never take: it only ever keeps an order from
    trading. binance spot gets it as type LIMIT_MAKER, which takes no timeInForce."""
    if not isinstance(value, bool):
        return "must be true or false"
    if value and terms.type != "limit":
        return "is for limit orders only"
    if value and terms.time_in_force not in (None, "GTC"):
        return "rests until canceled: it cannot have time_in_force IOC or FOK"
    return None


ALLOWED: dict[str, dict[str, Check]] = {
    # the paper venue honours postOnly too (it refuses a post-only order that would take)
    "paper": {"postOnly": _post_only},
    "binance": {"postOnly": _post_only},
}
"""Driver (the client's ccxt id) -> option -> its check. Any other key is refused."""


class ParamRefused(InvalidOrder):  # type: ignore[misc]
    """An order's param outside its driver's allowlist: the order is not sent."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"params.{key} {why}")
        self.field = f"params.{key}"


def refusal(driver: str, params: Mapping[Any, Any], terms: Terms) -> ParamRefused | None:
    """The first of `params` (in key order) that `driver` does not take, or None."""
    allowed = ALLOWED.get(driver, {})
    for key in sorted(params, key=str):
        check = allowed.get(key)
        if check is None:
            names = ", ".join(sorted(allowed)) or "none"
            return ParamRefused(str(key), f"is not an exchange option of the {driver} driver "
                                f"(allowed: {names}); symbol, side, type, amount, price, "
                                "time in force and the client order id come from the order")
        why = check(params[key], terms)
        if why is not None:
            return ParamRefused(str(key), why)
    return None


def check_params(driver: str, spec: Terms) -> None:
    """`invalid_order` naming the first refused key (`params.<key>`); called before an
    order is recorded."""
    refused = refusal(driver, spec.params, spec)
    if refused is not None:
        raise ProtocolError("invalid_order", str(refused), field=refused.field)


def create_params(driver: str, client_order_id: str, order: Terms) -> dict[str, Any]:
    """The params of the order's create request. Checked again here, so an order
    recorded with params this version refuses (before the allowlist, or by another
    version) raises ParamRefused rather than being sent; orderd's own params go in
    last, so they win."""
    refused = refusal(driver, order.params, order)
    if refused is not None:
        raise refused
    params = dict(order.params)
    params.update(client_id_params(driver, client_order_id))
    if order.time_in_force is not None and params.get("postOnly") is not True:
        params["timeInForce"] = order.time_in_force
    return params
