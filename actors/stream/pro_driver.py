"""ccxt.pro clients for user-data streams, and which drivers have one.

The stream client is ccxt.pro's own (asyncio, aiohttp), used on one event loop only.
It is moved to a local venue as the REST client is: every REST host and binance's spot
WebSocket API derive from `api_url`, so a stream needs no setting of its own. Every
`executionReport` frame is handed to a callback as it arrives: ccxt.pro's caches keep
one entry per order between two watches, and the stream's sequence (gaps, duplicates)
and every fill are read from the frames themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import ccxt.pro

from actors.exchange.drivers.ccxt_driver import DriverSettings

STREAM_DRIVERS = frozenset({"binance"})
"""Drivers whose exchange pushes order events on a user-data stream orderd reads."""
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

    def handle_message(self, client: Any, message: Any) -> None:
        if not isinstance(message, dict):
            super().handle_message(client, message)
            return
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


def build_binance_pro(settings: DriverSettings, on_event: Callable[[Event], None]) -> Any:
    """A ccxt.pro binance spot client for the user-data stream of `settings`' account."""
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
    return client
