"""What the user-data stream tests share: real ccxt.pro pointed at a venue, a raw
WebSocket client (aiohttp's), and binance's signing written out independently."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import queue
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import ccxt.pro

from actors.order.core import NAME as ORDER_ACTOR
from actors.order.messages import StreamConnected, StreamEvents
from actors.supervisor import Registry, SupervisedActor

WAIT_S = 10.0
"""The deadline of anything a test waits for."""


class Orders(SupervisedActor):
    """Stands in for OrderActor: keeps what the stream tells it."""

    def __init__(self, registry: Registry, told: queue.Queue[Any]) -> None:
        super().__init__(registry, ORDER_ACTOR)
        self._handlers = {StreamConnected: told.put, StreamEvents: told.put}


def stream_url(api_url: str) -> str:
    """The WebSocket API of a venue, from its REST base URL (no setting of its own)."""
    return "ws" + api_url.rstrip("/").removeprefix("http") + "/ws-api/v3"


def pro_client(api_url: str, key: str, secret: str) -> Any:
    """Real ccxt.pro binance with every REST host and the spot ws-api moved to the venue."""
    client = ccxt.pro.binance({
        "apiKey": key, "secret": secret,
        "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]},
                    "fetchCurrencies": False, "fetchMargins": False},
    })
    base = api_url.rstrip("/")
    for name, real in list(client.urls["api"].items()):
        if isinstance(real, str):
            client.urls["api"][name] = base + urlsplit(real).path
    client.urls["api"]["ws"]["ws-api"]["spot"] = stream_url(api_url)
    return client


def subscribe_request(key: str, secret: str, request_id: Any = "sub-1", *,
                      timestamp_ms: int | None = None) -> dict[str, Any]:
    """`userDataStream.subscribe.signature`, signed as web-socket-api.md says: the params
    but `signature` sorted by name, name=value joined by '&', HMAC-SHA256 in hex."""
    params: dict[str, Any] = {"apiKey": key, "timestamp": timestamp_ms or int(time.time() * 1000)}
    payload = "&".join(f"{name}={params[name]}" for name in sorted(params))
    params["signature"] = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return {"id": request_id, "method": "userDataStream.subscribe.signature", "params": params}


class RawStream:
    """One WebSocket connection to a venue, read frame by frame."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send a request, return its answer (the next text frame)."""
        await self.ws.send_str(json.dumps(body))
        return await self.next_json()

    async def subscribe(self, key: str, secret: str) -> dict[str, Any]:
        return await self.request(subscribe_request(key, secret))

    async def next_frame(self, timeout: float = WAIT_S) -> aiohttp.WSMessage:
        return await asyncio.wait_for(self.ws.receive(), timeout)

    async def next_json(self, timeout: float = WAIT_S) -> dict[str, Any]:
        message = await self.next_frame(timeout)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        body: dict[str, Any] = json.loads(message.data)
        return body

    async def next_report(self, timeout: float = WAIT_S) -> dict[str, Any]:
        """The next executionReport (other frames skipped)."""
        while True:
            body = await self.next_json(timeout)
            event = body.get("event", {})
            if event.get("e") == "executionReport":
                return body

    async def reports_of(self, client_order_id: str, count: int) -> list[dict[str, Any]]:
        """The next `count` executionReports of one order (by its client id)."""
        found: list[dict[str, Any]] = []
        while len(found) < count:
            event = (await self.next_report())["event"]
            if client_order_id in (event["c"], event["C"]):
                found.append(event)
        return found


@asynccontextmanager
async def raw_stream(api_url: str, *, autoping: bool = True) -> AsyncIterator[RawStream]:
    async with aiohttp.ClientSession() as http, http.ws_connect(
            stream_url(api_url), autoping=autoping, autoclose=False) as ws:
        yield RawStream(ws)


async def in_thread(call: Callable[..., Any], *args: Any) -> Any:
    """A blocking call (sync ccxt, the venue's operator routes) off the event loop."""
    return await asyncio.to_thread(call, *args)


class Collector:
    """Everything a ccxt.pro watch method returns, collected in the background.

    ccxt.pro resolves a watch only with a message that arrives while the watch waits
    (one in between waits in its cache for the next), so a watch is always pending."""

    def __init__(self, watch: Callable[[], Awaitable[list[dict[str, Any]]]]) -> None:
        self.items: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self._task = asyncio.ensure_future(self._run(watch))

    @classmethod
    async def start(cls, watch: Callable[[], Awaitable[list[dict[str, Any]]]]) -> Collector:
        """A collector whose watch is pending. With markets loaded and the stream
        subscribed, a watch gets to its pending future without waiting on anything,
        so one turn of the loop is enough."""
        collector = cls(watch)
        await asyncio.sleep(0)
        return collector

    async def _run(self, watch: Callable[[], Awaitable[list[dict[str, Any]]]]) -> None:
        try:
            while True:
                self.items.extend(dict(item) for item in await watch())
                self._changed.set()
        except Exception as exc:  # noqa: BLE001 - kept for the test to look at
            self.error = exc
            self._changed.set()

    async def until(self, condition: Callable[[list[dict[str, Any]]], bool],
                    what: str) -> list[dict[str, Any]]:
        """The items once `condition` holds for them (deadline WAIT_S)."""
        async def wait() -> None:
            while not condition(self.items):
                if self.error is not None:
                    raise AssertionError(f"{what}: the watch failed: {self.error!r}")
                self._changed.clear()
                await self._changed.wait()
        try:
            await asyncio.wait_for(wait(), WAIT_S)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}: {self.items}") from None
        return self.items

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def operator(api_url: str, path: str, body: Any = None) -> Any:
    """A venue's operator route (`/_venue/...`): GET, or POST with a JSON body."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(api_url + path, data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=WAIT_S) as answer:
        return json.loads(answer.read())
