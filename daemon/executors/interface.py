"""What every order executor of the library offers (the original module's interface)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from daemon.config import Config

ConfigDict = Mapping[str, Any] | Config
"""The library's dict (see `daemon.executor_config`) or a loaded Config."""


class OrderExecutionInterface(ABC):
    """Async order execution. Orders and results are the wire protocol's dicts:
    an order is an OrderSpec (`symbol`, `side`, `type`, `amount`, `price`, ...),
    a result the Order object; failures raise `protocol.errors.ProtocolError`
    with the protocol's error codes."""

    @abstractmethod
    async def configure(self, config: ConfigDict | None = None) -> None:
        """Take `config` (or the one given at construction) and get ready to trade;
        configuring again starts over with the new settings."""

    @abstractmethod
    async def execute_order(self, order: Mapping[str, Any],
                            wait: str = "accepted") -> dict[str, Any]:
        """Place `order` (idempotent by its `client_order_id`); the Order as it stands
        once the exchange's answer is known (`accepted`) or once recorded (`durable`)."""

    @abstractmethod
    async def get_order_status(self, client_order_id: str | None = None,
                               order_id: str | None = None) -> dict[str, Any]:
        """One order, by exactly one of its ids."""

    @abstractmethod
    async def cancel_order(self, client_order_id: str | None = None,
                           order_id: str | None = None) -> dict[str, Any]:
        """Cancel one order; the Order once the exchange answered."""

    @abstractmethod
    async def get_execution_stats(self) -> dict[str, Any]:
        """Counts by status, sends and retries, submit latency percentiles."""

    @abstractmethod
    async def reconcile_orders(self, exchange: str | None = None) -> dict[str, Any]:
        """Compare what this executor knows with the exchange; the report."""

    @abstractmethod
    async def close(self) -> None:
        """Release everything the executor holds; it may be configured again later."""

    async def __aenter__(self) -> Self:
        await self.configure()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()
