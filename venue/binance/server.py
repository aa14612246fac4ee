"""The paper venue over HTTP, in the binance spot REST dialect.

Real `ccxt.binance` can trade against it: requests are signed and checked,
answers and errors are binance's, and faults (latency, transient errors,
ambiguous creates, 429 with Retry-After, 503, dropped connections) are
injected by chance or by a script. `/_venue/...` routes are for tests and
operators and take no credentials: bind the server to a local address.
binance's WebSocket API for user data (`ccxt.pro`'s `watch_orders`) is served
on the same address at `/ws-api/v3` (paper_user_stream.py).
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from venue.binance.counts import count_routes
from venue.binance.faults import Fault, FaultPlan, VenueFaults
from venue.binance.market import MARKET_DATA, market_routes
from venue.binance.rest import (
    BY_ID,
    DEFAULT_RECV_WINDOW_MS,
    MAX_TRADES_PAGE,
    BinanceDialect,
    BinanceError,
    order_body,
    signature_of,
    signed_payload,
    trade_body,
)
from venue.binance.user_stream import CLOSE_WAIT_S, DEFAULT_PING_S, WS_PATH, UserStream
from venue.binance.websocket import WebSocket, accept_key, handshake_error
from venue.book import PaperVenue
from venue.limits import LIMIT_ROUTES, VenueLimiter, limits_route
from venue.weights import request_params, weight_of

log = logging.getLogger(__name__)

DEFAULT_API_KEY = "paper-key"
DEFAULT_SECRET = "paper-secret"
MAX_BODY = 1 << 20
PUBLIC = BinanceDialect.PUBLIC | MARKET_DATA
"""The routes binance serves without a key."""
NOT_FOUND_HTML = "<html><body><h2>404 Not found</h2></body></html>"
"""binance's body of a 404 for a client that accepts text/html (otherwise none)."""
JsonAnswer = tuple[int, Any]


class PaperVenueServer(ThreadingHTTPServer):
    """An HTTP server for one PaperVenue account; `start()` serves in a thread."""

    daemon_threads = True

    def __init__(self, venue: PaperVenue, address: tuple[str, int] = ("127.0.0.1", 0), *,
                 api_key: str = DEFAULT_API_KEY, secret: str = DEFAULT_SECRET,
                 faults: VenueFaults | None = None, account: str = "default",
                 clock: Callable[[], float] = time.time,
                 limiter: VenueLimiter | None = None,
                 stream_ping_s: float = DEFAULT_PING_S,
                 trades_page: int = MAX_TRADES_PAGE) -> None:
        """`limiter`: binance's limits (its own values unless given); `stream_ping_s`:
        how often a user-data stream pings its client; `trades_page`: the most trades
        one `myTrades` answer lists."""
        super().__init__(address, _Handler)
        self.venue = venue
        self.dialect = BinanceDialect(venue, account, clock, trades_page=trades_page)
        self.limiter = limiter or VenueLimiter(clock=clock)
        self.dialect.routes.update({**market_routes(venue), **count_routes(self.limiter, account)})
        self.dialect.rate_limits = self.limiter.rate_limits
        venue.on_first_fill = self.limiter.filled  # binance's unfilled order count
        self.plan = FaultPlan(faults or VenueFaults())
        self.api_key, self._secret = api_key, secret
        self.clock = clock
        self.weighed: deque[tuple[str, str, int]] = deque(maxlen=10000)
        """(method, path, binance's weight) of the API requests received, newest last
        (`GET /_venue/requests`); a WebSocket API request's method is `WS`."""
        self.stopping = threading.Event()
        self.stream_ping_s = stream_ping_s
        self.streams: set[UserStream] = set()  # the open WebSocket connections
        self._thread: threading.Thread | None = None

    def record(self, method: str, path: str, params: dict[str, str] | None = None) -> None:
        """One API request received, with its weight."""
        self.weighed.append((method, path, weight_of(method, path, params or {})))

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> PaperVenueServer:
        # a short poll keeps stop() quick
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,),
                                        name="paper-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests held back by a timeout or hold fault end at once, streams
        are told (serverShutdown) and closed."""
        self.stopping.set()
        self.plan.release()
        if self._thread is not None:
            self.shutdown()
            self._thread.join()
        streams = list(self.streams)
        for stream in streams:
            stream.shutdown()
        for stream in streams:  # each ends once its client answers the close, or soon after
            stream.ended.wait(2 * CLOSE_WAIT_S)
        self.server_close()

    def __enter__(self) -> PaperVenueServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- the API -------------------------------------------------------------------

    def check_auth(self, method: str, path: str, params: dict[str, str], api_key: str | None,
                   payload: str, signature: str | None) -> None:
        """Refuse a private request as binance would: -2015 key, -1022 signature, -1021 time."""
        if (method, path) in PUBLIC:
            return
        if api_key is None or not hmac.compare_digest(api_key, self.api_key):
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if signature is None:
            raise BinanceError(400, -1102, "Mandatory parameter 'signature' was not sent, "
                                           "was empty/null, or malformed.")
        if not hmac.compare_digest(signature, signature_of(self._secret, payload)):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        try:
            stamp = int(params["timestamp"])
            window = int(params.get("recvWindow", DEFAULT_RECV_WINDOW_MS))
        except (KeyError, ValueError):
            raise BinanceError(400, -1102, "Mandatory parameter 'timestamp' was not sent, "
                                           "was empty/null, or malformed.") from None
        if abs(self.clock() * 1000 - stamp) > window:
            raise BinanceError(400, -1021, "Timestamp for this request is outside of the "
                                           "recvWindow.")

    # -- operator routes -------------------------------------------------------------

    def operator(self, method: str, path: str, body: Any) -> JsonAnswer:
        if path in LIMIT_ROUTES:
            return limits_route(self.limiter, method, path, body)
        if (method, path) == ("GET", "/_venue/orders"):
            orders = [{**order_body(o), "account": o["info"]["account"]}
                      for o in self.venue.all_orders()]
            return 200, {"orders": orders}
        if (method, path) == ("GET", "/_venue/requests"):
            seen = list(self.weighed)
            return 200, {"requests": [[method, path] for method, path, _ in seen],
                         "weights": [weight for _, _, weight in seen]}
        if (method, path) == ("GET", "/_venue/faults"):
            return 200, {"script": self.plan.pending(), "held": self.plan.held()}
        if (method, path) == ("POST", "/_venue/release"):
            return 200, {"released": self.plan.release()}
        if method != "POST" or not isinstance(body, dict):
            return 404, {"error": f"no route {method} {path} (POST routes take a JSON object)"}
        try:
            if path == "/_venue/faults":
                self.plan.script(body.get("script", []))
                return 200, {"script": self.plan.pending()}
            if path == "/_venue/price":
                symbol = _unified(str(body.get("symbol")))
                self.venue.set_price(symbol, Decimal(str(body.get("price"))))
                return 200, {"symbol": symbol, "price": str(self.venue.price(symbol))}
            if path == "/_venue/cancel":
                return 200, order_body(self.venue.cancel_on_venue(str(body.get("orderId"))))
            if path == "/_venue/trade":
                return 200, self._trade(body)
        except (ValueError, InvalidOperation, KeyError) as exc:
            return 400, {"error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a ccxt error of the venue, shown to the operator
            return 400, {"error": f"{type(exc).__name__}: {exc}"}
        return 404, {"error": f"no route {method} {path}"}

    def _trade(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /_venue/trade: a taker's trade filling the resting orders it crosses."""
        symbol = _unified(str(body.get("symbol")))
        trades = self.venue.trade(symbol, Decimal(str(body.get("price"))),
                                  Decimal(str(body.get("amount"))))
        return {"symbol": symbol, "trades": [trade_body(t) for t in trades]}


TRADE_COPY_OFFSET = 1_000_000_000
"""Added to a trade's id for its copy (duplicate_trades)."""


def duplicate_trades(data: Any) -> Any:
    """Every trade of an answer listed twice, the copy under another id, as a venue bug
    would: the fills of a create's FULL answer, or a list of trades."""
    if isinstance(data, dict) and isinstance(data.get("fills"), list):
        fills = data["fills"]
        return {**data, "fills": fills + [{**f, "tradeId": f["tradeId"] + TRADE_COPY_OFFSET}
                                          for f in fills]}
    if isinstance(data, list):
        return data + [{**t, "id": t["id"] + TRADE_COPY_OFFSET} for t in data
                       if isinstance(t, dict) and isinstance(t.get("id"), int)]
    return data


def _unified(symbol: str) -> str:
    spec = BY_ID.get(symbol)
    return spec.symbol if spec is not None else symbol


class _Handler(BaseHTTPRequestHandler):
    server: PaperVenueServer
    protocol_version = "HTTP/1.1"  # keep-alive, as ccxt's session expects
    disable_nagle_algorithm = True  # else each small answer waits ~40 ms for an ACK
    server_version = "paper-venue"
    limit_headers: dict[str, str]
    """The limits' headers of the API request being answered (set for each request)."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, MAX_BODY)).decode("utf-8", "replace")
        self.limit_headers = {}
        if parts.path == WS_PATH:
            self._websocket()
            return
        if parts.path.startswith("/_venue/"):
            try:
                data = json.loads(body) if body else {}
            except ValueError:
                data = None
            self._answer(*self.server.operator(self.command, parts.path, data))
            return
        self._api(parts.path, parts.query, body)

    def _api(self, path: str, query: str, body: str) -> None:
        server = self.server
        params = request_params(query, body)
        server.record(self.command, path, params)
        if server.plan.faults.latency_ms > 0:
            server.stopping.wait(server.plan.faults.latency_ms / 1000)
        verdict = server.limiter.admit(self.client_address[0], server.dialect.account,
                                       (self.command, path), params)
        self.limit_headers = verdict.headers
        if verdict.refusal is not None:
            self._answer(verdict.refusal.status, verdict.refusal.body())
            return
        if (self.command, path) not in server.dialect.routes:
            self._not_found()
            return
        fault = server.plan.next(self.command, path)
        if fault is not None and fault.before_booking:
            self._before(fault)
            return
        if fault is not None and fault.fault == "late_booking":
            server.stopping.wait(fault.delay_s)  # in transit: the recvWindow is checked after
        answer = self._call(path, query, body)
        if fault is None or fault.fault == "late_booking":
            self._answer(*answer)
        else:
            self._after(fault, answer)

    def _websocket(self) -> None:
        """The WebSocket API: upgrade the connection, then serve it until it ends."""
        server = self.server
        server.record(self.command, WS_PATH)
        headers = {name.lower(): value for name, value in self.headers.items()}
        refused = handshake_error(self.command, headers)
        if refused is not None:
            status, why = refused
            self._answer(status, {"code": -1000, "msg": why},
                         headers={"Sec-WebSocket-Version": "13"} if status == 426 else None)
            return
        verdict = server.limiter.admit(self.client_address[0], server.dialect.account,
                                       (self.command, WS_PATH))
        self.limit_headers = verdict.headers
        if verdict.refusal is not None:
            self._answer(verdict.refusal.status, verdict.refusal.body())
            return
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(headers["sec-websocket-key"]))
        self.end_headers()
        self.close_connection = True  # whatever follows the WebSocket is not HTTP
        stream = UserStream(server, WebSocket(self.connection, self.rfile),
                            self.client_address[0])
        server.streams.add(stream)
        stream.run()

    def _after(self, fault: Fault, answer: JsonAnswer) -> None:
        """The answer to a request the book handled, spoilt by `fault`."""
        name, (status, data) = fault.fault, answer
        if name == "drop_after_booking":
            self._drop()
        elif name == "code_1007":
            self._answer(500, {"code": -1007, "msg": "Timeout waiting for response from "
                               "backend server. Send status unknown; execution status unknown."})
        elif name == "garbage_after_booking":
            self._answer(status, None, text='{"symbol": "BTCUSD", "orderId": ')
        elif name == "no_id_after_booking":
            kept = ({k: v for k, v in data.items() if k not in ("orderId", "clientOrderId")}
                    if isinstance(data, dict) else data)
            self._answer(status, kept)
        elif name == "duplicate_trades":
            self._answer(status, duplicate_trades(data))
        elif name == "hold_answer":
            self.server.plan.hold(self.server.stopping)
            self._answer(*answer)
        else:  # timeout_after_booking: the answer comes after the client gave up
            self.server.stopping.wait(fault.delay_s)
            self._answer(*answer)

    def _call(self, path: str, query: str, body: str) -> JsonAnswer:
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        params.pop("signature", None)
        payload, signature = signed_payload(query, body)
        try:
            self.server.check_auth(self.command, path, params, self.headers.get("X-MBX-APIKEY"),
                                   payload, signature)
        except BinanceError as exc:
            return exc.status, exc.body()
        return self.server.dialect.handle(self.command, path, params)

    def _before(self, fault: Fault) -> None:
        name = fault.fault
        if name == "timeout_before_booking":
            self.server.stopping.wait(fault.delay_s)
            self._drop()
        elif name == "drop_before_booking":
            self._drop()
        elif name == "http_503":
            self._answer(503, None, text="Service Unavailable")
        elif name == "http_429":
            self._answer(429, {"code": -1003, "msg": "Too many requests; current limit is "
                               "exceeded. Please use the websocket for live updates."},
                         headers={"Retry-After": str(fault.retry_after_s)})
        elif name == "code_1001":
            self._answer(500, {"code": -1001, "msg": "Internal error; unable to process your "
                               "request. Please try again."})
        elif name == "lagging_not_found":
            # a lookup served by a replica that has not seen the order yet
            self._answer(400, {"code": -2013, "msg": "Order does not exist."})
        else:  # reject
            self._answer(400, {"code": -2010, "msg": "New order rejected (simulated)."})

    def _not_found(self) -> None:
        """binance's answer to an endpoint it does not have, before it looks for a key (a
        401 would read as a refused key): 404 without a body, an HTML page only for a
        client that accepts one (binance's change of 2023-12-04)."""
        if "text/html" in (self.headers.get("Accept") or ""):
            self._answer(404, None, text=NOT_FOUND_HTML, content_type="text/html")
        else:
            self._answer(404, None, text="")

    def _drop(self) -> None:
        """Close the connection without an answer, as a dying proxy would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _answer(self, status: int, data: Any, *, text: str | None = None,
                headers: dict[str, str] | None = None, content_type: str = "text/plain"
                ) -> None:
        """`data` as JSON, or `text` (of `content_type`) when given."""
        raw = (text if text is not None else json.dumps(data)).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type",
                             content_type if text is not None else "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in {**self.limit_headers, **(headers or {})}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)
        except OSError:  # the client gave up (after a timeout fault): nothing to tell
            self.close_connection = True
