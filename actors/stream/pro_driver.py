"""ccxt.pro clients for user-data streams, and which drivers have one.

The stream client is ccxt.pro's own (asyncio, aiohttp), used on one event loop only.
It is moved to a local venue as the REST client is: every REST host and binance's spot
WebSocket API derive from `api_url`, so a stream needs no setting of its own. Every
`executionReport` frame is handed to a callback as it arrives: ccxt.pro's caches keep
one entry per order between two watches, and the stream's sequence (gaps, duplicates)
and every fill are read from the frames themselves.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import ccxt.pro
from ccxt.base.errors import NetworkError

from actors.exchange.drivers.ccxt_driver import DriverSettings
from actors.stream.connection import StreamItem
from actors.stream.events import EventReader
from venue.model import EVENTS_NUMBERED

HEARTBEAT_ID_PREFIX = "hb-"
"""The ids of the stream's own heartbeat requests, whose answers ccxt must not see."""
WS_API_PATH = "/ws-api/v3"
"""binance's WebSocket API path, on a local venue's REST address too."""

Event = dict[str, Any]
"""One raw `executionReport` (binance field names)."""


def stream_url(api_url: str) -> str:
    """The WebSocket API address of a venue whose REST base is `api_url`."""
    return "ws" + api_url.rstrip("/").removeprefix("http") + WS_API_PATH


class StreamBinance(ccxt.pro.binance):  # type: ignore[misc]
    """ccxt.pro's binance, handing every executionReport to `on_event` instead of its
    own caches; ccxt keeps the connection, the subscription and the other answers."""

    def __init__(self, config: dict[str, Any], on_event: Callable[[Event], None]) -> None:
        super().__init__(config)
        self._on_event = on_event
        self.events_numbered = False
        """Whether the venue said its events are numbered one by one (see `read`)."""
        self.readers: list[asyncio.Task[None]] = []
        """The tasks reading the connections' frames (see `client`)."""

    def client(self, url: str) -> Any:
        client = super().client(url)
        # ccxt's own receive loop takes a new task and some four turns of the event loop
        # for every frame; one task reading frame after frame takes one. ccxt starts it
        # when the connection opens, so setting it again on a client met again is moot.
        client.receive_loop = lambda: self.readers.append(
            client.asyncio_loop.create_task(_read_frames(client)))
        return client

    def handle_message(self, client: Any, message: Any) -> None:
        if not isinstance(message, dict):
            super().handle_message(client, message)
            return
        result = message.get("result")
        if isinstance(result, dict) and "subscriptionId" in result:
            self.events_numbered = result.get(EVENTS_NUMBERED) is True
        request_id = message.get("id")
        if isinstance(request_id, str) and request_id.startswith(HEARTBEAT_ID_PREFIX):
            # ccxt takes an answer it did not ask for as a subscription's status and
            # raises, and its reading stops until the connection is given up as stale
            return
        event = message.get("event")
        if isinstance(event, dict) and event.get("e") == "executionReport":
            # ours alone: ccxt parsing and caching it again would cost the daemon's CPU
            # for a watch whose results nobody reads
            self._on_event(event)
            return
        super().handle_message(client, message)


class ProConnection:
    """A StreamConnection over one ccxt.pro client (binance's WebSocket API)."""

    def __init__(self, pro: Any) -> None:
        self.pro = pro
        self._reader = EventReader(pro)
        self._client: Any = None
        self._watch: asyncio.Future[None] | None = None

    async def open(self, markets: Mapping[str, Any] | None) -> None:
        if markets:
            self.pro.set_markets(list(markets.values()))
        else:
            await self.pro.load_markets()
        await self.pro.authenticate()  # subscribed: every later change is pushed
        self._client = self.pro.clients[self.pro.urls["api"]["ws"]["ws-api"]["spot"]]
        self._watch = asyncio.ensure_future(_keep_watching(self.pro))

    def check(self) -> None:
        watch = self._watch
        if watch is not None and watch.done():
            watch.result()  # raises what ended the watch
            raise ConnectionError("the watch ended")

    async def ended(self) -> None:
        assert self._watch is not None, "opened first"
        await asyncio.wait({self._watch})  # ends only with the connection

    def last_frame(self) -> float:
        return float(self._client.last_message_at or 0) / 1000

    async def heartbeat(self) -> None:
        await self._client.send({"id": f"{HEARTBEAT_ID_PREFIX}{self.pro.milliseconds()}",
                                 "method": "ping"})

    def read(self, event: Event) -> StreamItem:
        # binance's `I` is an execution id across all accounts: jumps are normal, so only
        # a venue that numbers an account's events shows gaps and duplicates by it
        number = _number(event.get("I")) if self.pro.events_numbered else None
        return StreamItem(number, int(event.get("E") or 0),
                          self._reader.report(event))

    async def close(self) -> None:
        watch = self._watch
        if watch is not None:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        try:
            await self.pro.close()
        finally:
            for reader in self.pro.readers:
                reader.cancel()
            await asyncio.gather(*self.pro.readers, return_exceptions=True)


async def _keep_watching(pro: Any) -> None:
    """A watch is always pending, so the subscription's failures surface; its results
    are not used (every event was taken from the frames already)."""
    while True:
        await pro.watch_orders()


async def _read_frames(client: Any) -> None:
    """Hand every frame to ccxt's handling as it comes, until the connection closes. As
    with ccxt's own loop, what waits on the client then fails: on a close, and on a
    frame that could not be read or handled, which also closes the connection (nobody
    would read it any more)."""
    try:
        while not client.closed():
            client.handle_message(await client.receive())
    except Exception as exc:  # noqa: BLE001 - handed to everything waiting on the client
        client.on_error(NetworkError(f"reading the stream failed: {exc}"))
        return
    client.on_close(1006)  # ccxt's code for a connection closed without a close frame


def _number(value: Any) -> int | None:
    """The venue's event number (`I`); binance's own `I` is not one (see Sequence)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def build_binance_pro(settings: DriverSettings,
                      on_event: Callable[[Event], None]) -> ProConnection:
    """A ccxt.pro binance spot stream of `settings`' account."""
    client = StreamBinance({
        "apiKey": settings.api_key,
        "secret": settings.secret,
        "timeout": settings.timeout_ms,
        "verbose": False,
        "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]},
                    "fetchCurrencies": False, "fetchMargins": False,
                    "recvWindow": settings.recv_window_ms},
    }, on_event)
    client.options["maxRetriesOnFailure"] = 0
    if settings.api_url is not None:
        base = settings.api_url.rstrip("/")
        for name, real in list(client.urls["api"].items()):
            if isinstance(real, str):
                client.urls["api"][name] = base + urlsplit(real).path
        client.urls["api"]["ws"]["ws-api"]["spot"] = stream_url(settings.api_url)
    return ProConnection(client)
