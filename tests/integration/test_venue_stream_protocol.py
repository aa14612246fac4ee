"""The paper venue's WebSocket API as a protocol (a server in this process, real
sockets): pings, shutdown, whose events are pushed, and hostile frames and requests."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from functools import partial
from urllib.parse import urlsplit

import aiohttp
import pytest

import venue.binance.websocket as ws
from tests.stream_support import WAIT_S, RawStream, in_thread, raw_stream
from venue.binance.server import PaperVenueServer
from venue.book import PaperVenue
from venue.limits import VenueLimiter, VenueLimits

KEY, SECRET = "proto-key", "proto-secret"
BTC = "BTC/USD"


@pytest.fixture
def server() -> Iterator[PaperVenueServer]:
    running = PaperVenueServer(PaperVenue(None), api_key=KEY, secret=SECRET,
                               stream_ping_s=0.2).start()
    yield running
    running.stop()


def run(scenario: Callable[[RawStream], Awaitable[None]], url: str, *,
        autoping: bool = True) -> None:
    async def main() -> None:
        async with raw_stream(url, autoping=autoping) as stream:
            assert (await stream.subscribe(KEY, SECRET))["status"] == 200
            await scenario(stream)
    asyncio.run(main())


def test_the_server_pings_and_answers_pings(server: PaperVenueServer) -> None:
    async def scenario(stream: RawStream) -> None:
        assert (await stream.next_frame()).type == aiohttp.WSMsgType.PING
        await stream.ws.ping(b"are you there")
        while (frame := await stream.next_frame()).type == aiohttp.WSMsgType.PING:
            pass
        assert frame.type == aiohttp.WSMsgType.PONG and frame.data == b"are you there"

    run(scenario, server.url, autoping=False)


def test_stopping_tells_the_client_then_closes(server: PaperVenueServer) -> None:
    async def scenario(stream: RawStream) -> None:
        stopping = asyncio.ensure_future(in_thread(server.stop))
        assert (await stream.next_json())["event"]["e"] == "serverShutdown"
        frame = await stream.next_frame()
        assert frame.type == aiohttp.WSMsgType.CLOSE and frame.data == ws.GOING_AWAY
        await stream.ws.close()
        await asyncio.wait_for(stopping, WAIT_S)
        assert not server.streams

    run(scenario, server.url)


def test_only_the_served_accounts_orders_are_pushed(server: PaperVenueServer) -> None:
    venue = server.venue

    async def scenario(stream: RawStream) -> None:
        await in_thread(venue.create_order, "someone-else", BTC, "limit", "buy",
                        Decimal("0.01"), Decimal(1000))
        ours = await in_thread(venue.create_order, "default", BTC, "limit", "buy",
                               Decimal("0.01"), Decimal(1000))
        report = (await stream.next_report())["event"]
        assert report["i"] == int(ours["id"])

    run(scenario, server.url)


def test_partial_fills_are_pushed_as_binance_reports_them(server: PaperVenueServer) -> None:
    venue = server.venue

    async def scenario(stream: RawStream) -> None:
        order = await in_thread(partial(venue.create_order, client_order_id="partly"),
                                "default", "SOL/USD", "limit", "buy", Decimal(1), Decimal(50))
        await in_thread(venue.trade, "SOL/USD", Decimal(49), Decimal("0.3"))
        await in_thread(venue.trade, "SOL/USD", Decimal(49), Decimal("0.2"))
        await in_thread(venue.cancel_on_venue, order["id"])
        new, first, second, canceled = await stream.reports_of("partly", 4)
        assert (new["x"], new["X"]) == ("NEW", "NEW")
        assert [(r["x"], r["X"], r["l"], r["z"], r["L"], r["Z"], r["n"], r["N"], r["w"])
                for r in (first, second)] == [
            ("TRADE", "PARTIALLY_FILLED", "0.3", "0.3", "50", "15", "0.015", "USD", True),
            ("TRADE", "PARTIALLY_FILLED", "0.2", "0.5", "50", "25", "0.01", "USD", True)]
        assert first["t"] != second["t"] and first["m"] is second["m"] is True
        assert (canceled["x"], canceled["X"], canceled["z"], canceled["t"]) == (
            "CANCELED", "CANCELED", "0.5", -1)

    run(scenario, server.url)


class FrameClient:
    """A bare WebSocket client over a socket, to send what aiohttp never would."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=WAIT_S)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (f"GET /ws-api/v3 HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.rfile = self.sock.makefile("rb")
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += self.rfile.read(1)
        assert head.startswith(b"HTTP/1.1 101 ") and ws.accept_key(key).encode() in head

    def send(self, opcode: int, payload: bytes, *, fin: bool = True) -> None:
        self.sock.sendall(ws.encode_frame(opcode, payload, fin=fin, mask=True))

    def receive(self) -> tuple[int, bytes]:
        """The next frame but pings: (opcode, payload)."""
        while True:
            frame = ws.read_frame(self.rfile, masked=False)
            assert frame is not None, "the connection ended without a close frame"
            if frame[1] != ws.PING:
                return frame[1], frame[2]

    def close(self) -> None:
        self.rfile.close()
        self.sock.close()


@pytest.fixture
def client(server: PaperVenueServer) -> Iterator[FrameClient]:
    bare = FrameClient(server.url)
    yield bare
    bare.close()


@pytest.mark.parametrize(("frame", "code"), [
    (ws.encode_frame(ws.TEXT, b'{"id": 1, "method": "ping"}'), ws.PROTOCOL_ERROR),  # unmasked
    (ws.encode_frame(ws.BINARY, b"\x00\x01", mask=True), ws.UNSUPPORTED),
    (bytes([0xC1]) + ws.encode_frame(ws.TEXT, b"{}", mask=True)[1:], ws.PROTOCOL_ERROR),
    (bytes([0x81, 0xFF]) + struct.pack("!Q", ws.MAX_MESSAGE + 1), ws.TOO_BIG),
    (ws.encode_frame(ws.TEXT, b"\xff\xfe", mask=True), ws.INVALID_DATA),
    (ws.encode_frame(ws.CONTINUATION, b"{}", mask=True), ws.PROTOCOL_ERROR),
], ids=["unmasked", "binary", "reserved-bits", "too-big", "not-utf8", "stray-fragment"])
def test_a_frame_breaking_the_protocol_closes_with_its_code(client: FrameClient,
                                                           frame: bytes, code: int) -> None:
    client.sock.sendall(frame)
    opcode, payload = client.receive()
    assert opcode == ws.CLOSE and struct.unpack("!H", payload[:2])[0] == code


def test_a_closing_client_gets_its_close_answered(client: FrameClient) -> None:
    client.send(ws.CLOSE, ws.close_payload(ws.NORMAL))
    assert client.receive() == (ws.CLOSE, ws.close_payload(ws.NORMAL))


@pytest.mark.parametrize(("sent", "code"), [
    (b"{not json", -1135), (b"[1, 2]", -1135), (b'{"id": 5}', -1102),
    (b'{"id": 5, "method": "order.place", "params": {}}', -1000),
    (b'{"id": 5, "method": "ping", "params": [1]}', -1102),
])
def test_a_bad_request_gets_binances_error(client: FrameClient, sent: bytes,
                                            code: int) -> None:
    client.send(ws.TEXT, sent)
    opcode, payload = client.receive()
    answer = json.loads(payload)
    assert opcode == ws.TEXT and answer["status"] == 400 and answer["error"]["code"] == code
    client.send(ws.TEXT, b'{"id": 6, "method": "ping"}')  # the connection lives on
    assert json.loads(client.receive()[1]) == {"id": 6, "status": 200, "result": {}}


def test_a_fragmented_request_with_a_ping_between_is_served(client: FrameClient) -> None:
    client.send(ws.TEXT, b'{"id": "frag", "met', fin=False)
    client.send(ws.PING, b"between")
    client.send(ws.CONTINUATION, b'hod": "time"}')
    assert client.receive() == (ws.PONG, b"between")
    answer = json.loads(client.receive()[1])
    assert answer["id"] == "frag" and answer["status"] == 200 and "serverTime" in answer["result"]


def test_a_plain_get_is_told_to_upgrade(server: PaperVenueServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(server.url + "/ws-api/v3", timeout=WAIT_S)
    assert caught.value.code == 426 and caught.value.headers["Sec-WebSocket-Version"] == "13"


def test_a_connect_over_the_weight_limit_is_refused() -> None:
    limits = VenueLimiter(VenueLimits(weight_per_minute=1))
    with PaperVenueServer(PaperVenue(None), limiter=limits) as server:
        async def connect() -> None:
            with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
                async with raw_stream(server.url):
                    pass
            assert caught.value.status == 429
            assert caught.value.headers is not None and "Retry-After" in caught.value.headers
        asyncio.run(connect())

