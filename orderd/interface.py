"""What every order executor of the library offers (the original module's interface)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal, Self, overload

from daemon.config import Config
from protocol.errors import ProtocolError
from protocol.messages import TERMINAL_STATUSES

ConfigDict = Mapping[str, Any] | Config
"""The library's dict (see `orderd.config`) or a loaded Config."""

NOT_CANCELABLE = frozenset({"not_found", "not_cancelable"})
"""Cancel errors that mean "this order cannot be canceled": cancel_order says False."""


class OrderExecutionInterface(ABC):
    """Async order execution. Orders are the wire protocol's OrderSpec dicts (`symbol`,
    `side`, `type`, `amount`, `price`, ...; numbers as strings, decimals, ints or
    floats); an order's record is the protocol's Order dict. An order is named by its
    client order id everywhere: `execute_order` returns it, the other calls take it
    as their first argument. Failures raise `protocol.errors.ProtocolError` with the
    protocol's error codes.

    An implementation provides `place` and `cancel` (both answer with the Order
    dict), `configure`, `get_order_status`, `get_execution_stats`, `reconcile_orders`
    and `close`.
    """

    @abstractmethod
    async def configure(self, config: ConfigDict | None = None) -> None:
        """Take `config` (or the one given at construction) and get ready to trade;
        configuring again starts over with the new settings."""

    @abstractmethod
    async def place(self, order: Mapping[str, Any], wait: str = "accepted") -> dict[str, Any]:
        """Place `order` (idempotent by its `client_order_id`); the Order as it stands
        once the exchange's answer is known (`accepted`) or once recorded (`durable`)."""

    @abstractmethod
    async def cancel(self, client_order_id: str | None = None,
                     order_id: str | None = None) -> dict[str, Any]:
        """Cancel one order; the Order once the exchange answered (`not_found` or
        `not_cancelable` raised when there is nothing to cancel)."""

    @overload
    async def execute_order(self, order: Mapping[str, Any], wait: str = ...,
                            *, return_order: Literal[False] = ...) -> str: ...

    @overload
    async def execute_order(self, order: Mapping[str, Any], wait: str = ...,
                            *, return_order: Literal[True]) -> dict[str, Any]: ...

    async def execute_order(self, order: Mapping[str, Any], wait: str = "accepted",
                            *, return_order: bool = False) -> str | dict[str, Any]:
        """Place `order`; its client order id (made up when the order has none), or
        with `return_order=True` the whole Order. An order the exchange refused is
        placed all the same: its status says `rejected`, its `last_error` why. Raises
        ProtocolError when the order is refused before anything is recorded
        (`invalid_order`, `unknown_symbol`, `duplicate_client_order_id`, ...) or the
        outcome cannot be waited for (`timeout`, `exchange_unavailable`, ...)."""
        placed = await self.place(order, wait)
        return placed if return_order else str(placed["client_order_id"])

    @abstractmethod
    async def get_order_status(self, client_order_id: str | None = None,
                               order_id: str | None = None) -> dict[str, Any]:
        """The Order record of one order, by its client order id (or, by keyword, the
        exchange's `order_id`); `not_found` when there is none."""

    @overload
    async def cancel_order(self, client_order_id: str | None = None,
                           order_id: str | None = None,
                           *, return_order: Literal[False] = ...) -> bool: ...

    @overload
    async def cancel_order(self, client_order_id: str | None = None,
                           order_id: str | None = None,
                           *, return_order: Literal[True]) -> dict[str, Any]: ...

    async def cancel_order(self, client_order_id: str | None = None,
                           order_id: str | None = None,
                           *, return_order: bool = False) -> bool | dict[str, Any]:
        """Cancel one order: True once it is canceled (or already was), False when it
        cannot be (filled, rejected, expired, or no such order). Raises ProtocolError
        only when the answer cannot be had (`timeout`: the cancel is sent but not
        confirmed yet, `exchange_unavailable`, `halted`), for a malformed id
        (`bad_request`) or for an order of an exchange no longer configured
        (`unknown_exchange`: nothing can cancel it). With `return_order=True`: the Order,
        and errors raised."""
        if return_order:
            return await self.cancel(client_order_id, order_id)
        try:
            order = await self.cancel(client_order_id, order_id)
        except ProtocolError as error:
            if error.code in NOT_CANCELABLE:
                return False
            raise
        if order["status"] == "canceled":
            return True
        if order["status"] in TERMINAL_STATUSES:  # filled, rejected or expired meanwhile
            return False
        raise ProtocolError("timeout", f"the cancel of {order['client_order_id']} is not "
                            f"confirmed yet (the order is {order['status']}); "
                            "get_order_status tells how it ends", retry_after_s=1.0)

    @abstractmethod
    async def get_execution_stats(self) -> dict[str, Any]:
        """Counts by status, sends and retries, submit latency percentiles."""

    @abstractmethod
    async def reconcile_orders(self, exchange: str | None = None) -> dict[str, Any]:
        """Compare what this executor knows with the exchange; the report."""

    @abstractmethod
    async def cancel_all(self, exchange: str | None = None,
                         symbol: str | None = None) -> list[dict[str, Any]]:
        """Ask every live order of an exchange, a symbol or all to cancel; the orders as
        they then stand (the wire's `cancel_all`)."""

    @abstractmethod
    async def get_balance(self, exchange: str | None = None) -> dict[str, Any]:
        """`{"balances": {exchange: {currency: {"free", "used", "total"}}}, "at"}`, decimal
        strings as the exchange tells them now (the wire's `balance`)."""

    @abstractmethod
    async def close(self) -> None:
        """Release everything the executor holds; it may be configured again later."""

    async def __aenter__(self) -> Self:
        await self.configure()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()
