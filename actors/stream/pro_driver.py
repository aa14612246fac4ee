"""ccxt.pro clients for user-data streams, and which drivers have one.

The stream client is ccxt.pro's own (asyncio, aiohttp), used on one event loop only.
It is moved to a local venue as the REST client is: every REST host and binance's spot
WebSocket API derive from `api_url`, so a stream needs no setting of its own. Every
`executionReport` frame is handed to a callback as it arrives: ccxt.pro's caches keep
one entry per order between two watches, and the stream's sequence (gaps, duplicates)
and every fill are read from the frames themselves.

binance's WebSocket API spends the address's request weight, as REST does: each
connection attempt and each request goes through the exchange's request budget (a
Meter, as a REST client's requests do), and each answer, a refusal (429, 418) above all,
goes back to it, so a ban the stream meets stops every request of the exchange. So do
its REST requests (the markets, when no worker could share them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import ccxt.pro
from aiohttp import WSServerHandshakeError
from ccxt.base.errors import NetworkError

from actors.exchange.budget import NotSent, RequestBudget
from actors.exchange.drivers.ccxt_driver import DriverSettings
from actors.exchange.metering import STREAM_OP, WEIGHT_PER_COST, Meter, hook_ccxt
from actors.stream.connection import StreamItem
from actors.stream.events import EventReader
from venue.model import EVENTS_NUMBERED

log = logging.getLogger(__name__)

HEARTBEAT_ID_PREFIX = "hb-"
"""The ids of the stream's own heartbeat requests, whose answers ccxt must not see."""
WS_API_PATH = "/ws-api/v3"
"""binance's WebSocket API path, on a local venue's REST address too."""
CONNECT_WEIGHT = 2
"""The request weight binance counts for each connection attempt (web-socket-api.md)."""
WEIGHTS = {"ping": 1, "userDataStream.subscribe.signature": 2,
           "userDataStream.unsubscribe": 2}
"""binance's request weight of each WebSocket API method the stream sends."""

Event = dict[str, Any]
"""One raw `executionReport` (binance field names)."""


def stream_url(api_url: str) -> str:
    """The WebSocket API address of a venue whose REST base is `api_url`."""
    return "ws" + api_url.rstrip("/").removeprefix("http") + WS_API_PATH


class StreamBinance(ccxt.pro.binance):  # type: ignore[misc]
    """ccxt.pro's binance, handing every executionReport to `on_event` instead of its
    own caches; ccxt keeps the connection, the subscription and the other answers."""

    def __init__(self, config: dict[str, Any], on_event: Callable[[Event], None],
                 meter: Meter) -> None:
        super().__init__(config)
        self._on_event = on_event
        self.meter = meter
        """The stream's requests through its exchange's request budget (this loop only)."""
        self._asked: str | None = None
        """The id of the request that went out last, whose answer the meter awaits."""
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
        # from the class, not the client: a client met again is not wrapped twice
        client.create_connection = partial(self._connect, client,
                                           type(client).create_connection)
        client.send = partial(self._send, client, type(client).send)
        return client

    async def _connect(self, client: Any, create: Callable[[Any, Any], Any],
                       session: Any) -> Any:
        """The WebSocket upgrade, through the budget: binance counts every attempt, and
        refuses one (429, 418) with Retry-After as it does a REST request."""
        self.meter.sending(f"GET {WS_API_PATH}", CONNECT_WEIGHT, "GET")
        try:
            connection = await create(client, session)
        except WSServerHandshakeError as refused:
            self.meter.answered(refused.status, refused.headers)
            raise
        self.meter.answered(101, None)
        return connection

    async def _send(self, client: Any, send: Callable[[Any, Any], Any], message: Any) -> Any:
        """A request, through the budget (NotSent keeps it from going out)."""
        if isinstance(message, dict) and isinstance(message.get("method"), str):
            method = message["method"]
            self.meter.sending(f"WS {method}", WEIGHTS.get(method, 1), "WS")
            self._asked = str(message.get("id"))
        return await send(client, message)

    def handle_message(self, client: Any, message: Any) -> None:
        if not isinstance(message, dict):
            super().handle_message(client, message)
            return
        self._answered(message)
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

    def _answered(self, message: Mapping[str, Any]) -> None:
        """Tell the budget the answer to the request that went out last, if this is it."""
        status = message.get("status")
        if self._asked is None or str(message.get("id")) != self._asked \
                or not isinstance(status, int):
            return
        self._asked = None
        self.meter.answered(status, refusal_headers(message, self.milliseconds()))


def refusal_headers(message: Mapping[str, Any], now_ms: int) -> dict[str, str] | None:
    """A WebSocket API refusal's wait as the Retry-After header a REST refusal carries:
    binance gives it as `error.data.retryAfter`, a time (ms) on the exchange's clock,
    which `data.serverTime` (else our clock) turns into seconds. None: no wait given."""
    error = message.get("error")
    data = error.get("data") if isinstance(error, dict) else None
    if not isinstance(data, dict):
        return None
    until, now = data.get("retryAfter"), data.get("serverTime", now_ms)
    if not isinstance(until, int | float) or not isinstance(now, int | float):
        return None
    return {"Retry-After": f"{max(0.0, (until - now) / 1000):.3f}"}


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
        try:
            await self._client.send({"id": f"{HEARTBEAT_ID_PREFIX}{self.pro.milliseconds()}",
                                     "method": "ping"})
        except NotSent as held:
            # the budget held it back (the exchange asked us to wait, or its share of the
            # weight is spent): not sent, so nothing to answer; the next beat tries again
            log.info("stream heartbeat not sent: %s", held)

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


def build_binance_pro(settings: DriverSettings, on_event: Callable[[Event], None],
                      budget: RequestBudget | None = None) -> ProConnection:
    """A ccxt.pro binance spot stream of `settings`' account, its requests through
    `budget` (the exchange entry's; a stream used alone gets one of its own)."""
    meter = Meter(budget or RequestBudget("stream"))
    meter.start(STREAM_OP)
    client = StreamBinance({
        "apiKey": settings.api_key,
        "secret": settings.secret,
        "timeout": settings.timeout_ms,
        "verbose": False,
        "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]},
                    "fetchCurrencies": False, "fetchMargins": False,
                    "recvWindow": settings.recv_window_ms},
    }, on_event, meter)
    client.options["maxRetriesOnFailure"] = 0
    if settings.api_url is not None:
        base = settings.api_url.rstrip("/")
        for name, real in list(client.urls["api"].items()):
            if isinstance(real, str):
                client.urls["api"][name] = base + urlsplit(real).path
        client.urls["api"]["ws"]["ws-api"]["spot"] = stream_url(settings.api_url)
    # its REST requests too: the markets, when no worker shared them (see `open`)
    hook_ccxt(client, meter, WEIGHT_PER_COST["binance"])
    return ProConnection(client)
