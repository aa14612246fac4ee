"""The ccxt-style interface an ExchangeActor talks through, and translation of
ccxt's order structure into our terms."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from actors.messages import OrderView


class ExchangeClient(Protocol):
    """The subset of the sync `ccxt.Exchange` API orderd uses (the paper venue too)."""

    def load_markets(self, reload: bool = False) -> dict[str, Any]: ...

    def create_order(self, symbol: str, type: str, side: str, amount: Any,
                     price: Any = None, params: dict[str, Any] | None = None) -> Any: ...

    def fetch_order(self, id: str | None, symbol: str | None = None,
                    params: dict[str, Any] | None = None) -> Any: ...

    def cancel_order(self, id: str | None, symbol: str | None = None,
                     params: dict[str, Any] | None = None) -> Any: ...

    def fetch_open_orders(self, symbol: str | None = None, since: int | None = None,
                          limit: int | None = None,
                          params: dict[str, Any] | None = None) -> Any: ...

    def fetch_my_trades(self, symbol: str | None = None, since: int | None = None,
                        limit: int | None = None, params: dict[str, Any] | None = None) -> Any: ...

    def fetch_balance(self, params: dict[str, Any] | None = None) -> Any: ...

    def fetch_ticker(self, symbol: str, params: dict[str, Any] | None = None) -> Any: ...


CCXT_STATUS = {"closed": "filled", "canceled": "canceled", "cancelled": "canceled",
               "expired": "expired", "rejected": "rejected"}


def to_decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def view_of(raw: dict[str, Any]) -> OrderView:
    """Our view of a ccxt order structure."""
    filled = to_decimal(raw.get("filled")) or Decimal(0)
    status = CCXT_STATUS.get(str(raw.get("status")), "open")
    if status == "open" and filled > 0:
        status = "partially_filled"
    fee = raw.get("fee") or {}
    return OrderView(
        order_id=str(raw["id"]),
        status=status,
        filled=filled,
        average_price=to_decimal(raw.get("average")) if filled > 0 else None,
        fee_currency=fee.get("currency"),
        fee_cost=to_decimal(fee.get("cost")),
    )
