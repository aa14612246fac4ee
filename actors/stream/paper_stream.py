"""The in-process paper venue's user-data stream, as a StreamConnection.

The venue tells each listener of every committed change to an order (a VenueEvent) on
the thread of the operation that made it. A connection hands its account's events to the
stream's event loop with `call_soon_threadsafe`, so the venue never waits on the stream,
and reads each as the report a lookup through PaperExchange would give, numbered one by
one as handed on (the venue's own numbers count every account's events, so they would
show another account's as gaps). The entry's outage fault takes the
stream down with the venue's requests: no connect, and a connected stream ends, while it
lasts.

A change that the answer of the request making it shows (`VenueEvent.answered`: a
create's own order and fills, a cancel's order) is not asked for, so the venue does not
even note it. binance sends those too, and the daemon finds them duplicates of the
answer; across a network the answer can be lost while the event arrives, in process by
the simulated `ambiguous_rate` fault or a failed write of the venue's database (an error
of unknown outcome), and such a create is resolved by lookup as with the stream down.
Handing them on cost the accept path about a fifth of its throughput (bench submit64:
66 µs of CPU an order, most of it waking the stream's loop), which is why the paper
stream can be on by default: it still tells what happens between requests, a resting
order filled by the market and an operator's cancel.

The venue's prices move only when it is asked (each operation first catches the walk up
with the clock). Tracking, which asked often, waits out its safety interval while the
stream is live, so the connection asks instead, every second: the market moves as before.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ccxt.base.errors import ExchangeNotAvailable

from actors.exchange.client import trade_of, view_of
from actors.exchange.drivers.paper import PaperExchange
from actors.order.messages import ExchangeReport
from actors.stream.connection import OnEvent, StreamItem
from actors.stream.events import SOURCE
from venue.model import Order, VenueEvent, trade_to_ccxt

MAX_BEHIND = 10_000
"""Events handed to the loop and not yet taken, beyond which the connection ends (the
catch-up after the reconnect reads what it missed): a loop that cannot keep up never
makes the venue's events pile up in memory."""
MARKET_TICK_S = 1.0
"""How often a connection catches the venue's prices up (the walk steps by the second)."""


class PaperStream:
    """One subscription to the events of a PaperExchange's venue and account, down while
    that client's outage fault holds."""

    def __init__(self, client: PaperExchange, on_event: OnEvent, *,
                 max_behind: int = MAX_BEHIND) -> None:
        self.client = client
        self.max_behind = max_behind
        self.venue = client.venue
        self.account = client.account
        self._on_event = on_event
        self._loop: asyncio.AbstractEventLoop | None = None
        self._markets: Mapping[str, Any] = {}
        self._last_frame = 0.0
        self._handed = 0  # by the venue's threads, one at a time (it publishes in order)
        self._ended: Exception | None = None
        self._closed = False
        self._ticker: asyncio.Future[None] | None = None
        self._pending: deque[VenueEvent] = deque()  # handed on, not yet taken by the loop
        self._waking = False  # a call to take them is scheduled on the loop

    async def open(self, markets: Mapping[str, Any] | None) -> None:
        self.check()
        self._markets = markets or self.venue.markets()
        self._loop = asyncio.get_running_loop()
        self._last_frame = time.time()
        self.venue.add_listener(self._heard, answered=False)
        self._ticker = asyncio.ensure_future(self._tick())

    def check(self) -> None:
        self._check_outage()
        if self._ended is not None:
            raise self._ended
        if self._ticker is not None and self._ticker.done():
            self._ticker.result()  # raises what ended it (the venue closed)

    async def ended(self) -> None:
        assert self._ticker is not None, "opened first"
        await asyncio.wait({self._ticker})  # ends only with the connection

    def last_frame(self) -> float:
        return self._last_frame

    async def heartbeat(self) -> None:
        """In process, a venue that is not out answers at once."""
        self._last_frame = time.time()

    def read(self, event: VenueEvent) -> StreamItem:
        return StreamItem(event.seq, event.at_ms, self._report(event))

    async def close(self) -> None:
        self._closed = True  # a publication already under way hands nothing on either
        self.venue.remove_listener(self._heard)
        ticker = self._ticker
        if ticker is not None:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)

    async def _tick(self) -> None:
        """The market's clock while connected; a frame each second the venue answers.
        It ends with the connection (an outage, the venue closed or left behind)."""
        while not self._check_outage() and self._ended is None:
            await asyncio.sleep(MARKET_TICK_S)
            await asyncio.to_thread(self.venue.advance)  # it may wait for its disk
            self._last_frame = time.time()

    def _heard(self, event: VenueEvent) -> None:
        """The venue's listener, on the thread of the operation: never blocks."""
        if self._closed or self._ended is not None or event.account != self.account:
            return
        if self._check_outage():
            return
        loop = self._loop
        if loop is None:
            return
        if len(self._pending) >= self.max_behind:
            self._ended = ConnectionError(f"the stream fell {self.max_behind} events behind")
            return
        self._handed += 1
        self._pending.append(replace(event, seq=self._handed))
        if self._waking:
            return  # the loop takes this one with those before it
        self._waking = True
        try:
            loop.call_soon_threadsafe(self._arrived)
        except RuntimeError:  # the loop is closed: so is this connection
            self._closed = True

    def _arrived(self) -> None:
        """On the loop: every event handed on so far is received (one wake-up for many
        while the venue is busy)."""
        self._waking = False  # first: an event handed on from now on wakes the loop again
        pending = self._pending
        while pending:
            event = pending.popleft()
            if not self._closed:
                self._last_frame = time.time()
                self._on_event(event)

    def _check_outage(self) -> bool:
        """Whether the entry's outage has ended the connection (it is then ended)."""
        if self._ended is None and self.client.in_outage():
            self._ended = ExchangeNotAvailable("venue outage (simulated)")
        return isinstance(self._ended, ExchangeNotAvailable)

    def _report(self, event: VenueEvent) -> ExchangeReport | None:
        record = event.order
        client_order_id = record.get("clientOrderId")
        if not client_order_id:
            return None
        view = view_of(Order.from_record(record).to_ccxt(), self._markets.get(record["symbol"]))
        trades = () if event.trade is None else (trade_of(trade_to_ccxt(event.trade)),)
        return ExchangeReport(client_order_id, "fetch", "ok", view, trades=trades,
                              source=SOURCE, trades_source=SOURCE)
