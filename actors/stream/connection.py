"""What a StreamActor needs of a driver's user-data stream: one connection at a time,
used on the stream's event loop only.

binance's comes from ccxt.pro (actors/stream/pro_driver.py), the in-process paper
venue's from its listeners (actors/stream/paper_stream.py). Either one hands each raw
event to the callback it was built with, on the stream's loop, and reads it on request
as a StreamItem; the actor does the rest (sequence, health, catch-up, delivery).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from actors.order.messages import ExchangeReport

OnEvent = Callable[[Any], None]
"""Called on the stream's loop with each raw event, in order."""


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One raw event, read."""

    number: int | None
    """The venue's event number (one more for each event), None where it has none."""
    at_ms: int
    """When it happened (exchange time, ms)."""
    report: ExchangeReport | None
    """The event as a lookup's report; None for an event naming no order."""


class StreamConnection(Protocol):
    """One connection of an exchange's user-data stream."""

    async def open(self, markets: Mapping[str, Any] | None) -> None:
        """Connect and subscribe: every event after this returns is handed on.
        `markets`: those the exchange's workers loaded (None: load them)."""

    def check(self) -> None:
        """Raise what ended the connection, if it ended."""

    async def ended(self) -> None:
        """Return once the connection has ended (`check` then raises): it may end
        with no event to tell of it."""

    def last_frame(self) -> float:
        """Wall time of the last frame received (event, answer or ping)."""

    async def heartbeat(self) -> None:
        """Ask for a frame, so a quiet connection shows it is alive."""

    def read(self, event: Any) -> StreamItem:
        """One raw event as a StreamItem; raises for one that cannot be read."""

    async def close(self) -> None:
        """Unsubscribe and disconnect; no event is handed on afterwards."""


BuildConnection = Callable[[OnEvent], StreamConnection]
"""Makes a new connection telling the callback of each raw event."""
