"""The binance spot REST dialect of the paper venue: requests in, JSON bodies out.

Pure translation, no sockets: `BinanceDialect.handle` takes a method, a path
and the request's parameters and returns an HTTP status and a JSON-able body,
turning the venue's ccxt-style dicts into binance's field names and its ccxt
exceptions into binance's error codes (which real ccxt maps back).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from ccxt.base.errors import (
    ArgumentsRequired,
    BadSymbol,
    DuplicateOrderId,
    InsufficientFunds,
    InvalidOrder,
    OrderImmediatelyFillable,
    OrderNotFound,
)

from protocol.codec import format_decimal
from venue.book import PaperVenue
from venue.model import MAKER_FEE, MARKETS, TAKER_FEE

BY_ID = {spec.base + spec.quote: spec for spec in MARKETS.values()}
STATUS = {"open": "NEW", "closed": "FILLED", "canceled": "CANCELED",
          "expired": "EXPIRED", "rejected": "REJECTED"}
DEFAULT_RECV_WINDOW_MS = 5000
DEFAULT_TRADES_PAGE = 500
MAX_TRADES_PAGE = 1000
"""binance's myTrades `limit`: 500 unless asked, at most 1000."""


def status_of(rec: dict[str, Any]) -> str:
    """binance's status of an order record: an open order with something filled is
    PARTIALLY_FILLED (the venue's status word stays ccxt's `open` for both)."""
    status = STATUS.get(rec["status"], "NEW")
    if status == "NEW" and Decimal(rec["filled"]) > 0:
        return "PARTIALLY_FILLED"
    return status


class BinanceError(Exception):
    """A binance error answer: HTTP status, code and message."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


def bad_param(msg: str) -> BinanceError:
    return BinanceError(400, -1102, msg)


def missing(name: str) -> BinanceError:
    return bad_param(f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal(name: str) -> BinanceError:
    return BinanceError(400, -1100, f"Illegal characters found in parameter '{name}'.")


INSUFFICIENT = "Account has insufficient balance for requested action."
DUPLICATE = "Duplicate order sent."
WOULD_TAKE = "Order would immediately match and take."


def error_of(exc: Exception, method: str) -> BinanceError:
    """The binance answer real binance gives for what the venue raised."""
    text = str(exc)
    if isinstance(exc, InsufficientFunds):
        return BinanceError(400, -2010, INSUFFICIENT)
    if isinstance(exc, DuplicateOrderId):
        return BinanceError(400, -2010, DUPLICATE)
    if isinstance(exc, OrderImmediatelyFillable):
        return BinanceError(400, -2010, WOULD_TAKE)
    if isinstance(exc, BadSymbol):
        return BinanceError(400, -1121, "Invalid symbol.")
    if isinstance(exc, OrderNotFound) or (isinstance(exc, InvalidOrder) and method == "DELETE"):
        # binance: -2013 when fetching, -2011 when canceling (also a closed order)
        if method == "DELETE":
            return BinanceError(400, -2011, "Unknown order sent.")
        return BinanceError(400, -2013, "Order does not exist.")
    if isinstance(exc, ArgumentsRequired):
        return bad_param(
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
    if isinstance(exc, InvalidOrder):
        return BinanceError(400, -1013, _filter_failure(text))
    raise exc


def _filter_failure(text: str) -> str:
    """The binance filter a venue refusal corresponds to (its message names the rule)."""
    for words, name in ((("cost",), "NOTIONAL"), (("tick", "price must"), "PRICE_FILTER"),
                        (("amount",), "LOT_SIZE")):
        if any(word in text for word in words):
            return f"Filter failure: {name}"
    return "Invalid order: " + text.removeprefix("paper: ")


def signature_of(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signed_payload(query: str, body: str) -> tuple[str, str | None]:
    """binance signs the query string followed by the body; `signature` is left out."""
    signature = None
    parts = []
    for raw in (query, body):
        kept = []
        for item in raw.split("&") if raw else []:
            if item.startswith("signature="):
                signature = item[len("signature="):]
            else:
                kept.append(item)
        parts.append("&".join(kept))
    return "".join(parts), signature


def _num(value: Decimal | str | None) -> str:
    return "0" if value is None else format_decimal(Decimal(value))


def order_body(order: dict[str, Any], *, with_fills: bool = False) -> dict[str, Any]:
    """A venue order as binance shows it (GET/DELETE /api/v3/order, openOrders, allOrders)."""
    rec = order["info"]
    spec = MARKETS[rec["symbol"]]
    updated = rec["lastTradeTimestamp"] or rec["timestamp"]
    body: dict[str, Any] = {
        "symbol": spec.base + spec.quote,
        "orderId": int(rec["id"]),
        "orderListId": -1,
        "clientOrderId": rec["clientOrderId"],
        "price": _num(rec["price"]),
        "origQty": _num(rec["amount"]),
        "executedQty": _num(rec["filled"]),
        "cummulativeQuoteQty": _num(rec["cost"]),
        "status": status_of(rec),
        "timeInForce": rec["timeInForce"],
        "type": rec["type"].upper(),
        "side": rec["side"].upper(),
        "stopPrice": "0",
        "icebergQty": "0",
        "time": rec["timestamp"],
        "updateTime": updated,
        "transactTime": updated,
        "workingTime": rec["timestamp"],
        "isWorking": rec["status"] == "open",
        "origQuoteOrderQty": "0",
        "selfTradePreventionMode": "NONE",
    }
    if with_fills:
        body["fills"] = [_fill(trade["info"]) for trade in order.get("trades") or ()]
    return body


def _fill(rec: dict[str, Any]) -> dict[str, Any]:
    """One of the trades an order got at once, as a FULL create answer lists it."""
    return {"price": _num(rec["price"]), "qty": _num(rec["amount"]),
            "commission": _num(rec["feeCost"]), "commissionAsset": rec["feeCurrency"],
            "tradeId": int(rec["id"])}


def trade_body(trade: dict[str, Any]) -> dict[str, Any]:
    rec = trade["info"]
    spec = MARKETS[rec["symbol"]]
    return {
        "symbol": spec.base + spec.quote,
        "id": int(rec["id"]),
        "orderId": int(rec["orderId"]),
        "orderListId": -1,
        "price": _num(rec["price"]),
        "qty": _num(rec["amount"]),
        "quoteQty": _num(rec["cost"]),
        "commission": _num(rec["feeCost"]),
        "commissionAsset": rec["feeCurrency"],
        "time": rec["timestamp"],
        "isBuyer": rec["side"] == "buy",
        "isMaker": rec["takerOrMaker"] == "maker",
        "isBestMatch": True,
    }


def exchange_info(now_ms: int, rate_limits: list[dict[str, Any]] | None = None
                  ) -> dict[str, Any]:
    """GET /api/v3/exchangeInfo: the venue's markets with filters matching its rules."""
    symbols = []
    for spec in MARKETS.values():
        step, tick = format_decimal(spec.amount_step), format_decimal(spec.price_step)
        symbols.append({
            "symbol": spec.base + spec.quote, "status": "TRADING",
            "baseAsset": spec.base, "baseAssetPrecision": 8,
            "quoteAsset": spec.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"],
            "icebergAllowed": False, "ocoAllowed": False,
            "quoteOrderQtyMarketAllowed": False, "allowTrailingStop": False,
            "cancelReplaceAllowed": False, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False, "permissions": [], "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "NONE", "allowedSelfTradePreventionModes": ["NONE"],
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "10000000",
                 "tickSize": tick},
                {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000",
                 "stepSize": step},
                {"filterType": "NOTIONAL", "minNotional": format_decimal(spec.min_cost),
                 "applyMinToMarket": True, "maxNotional": "9000000000",
                 "applyMaxToMarket": False, "avgPriceMins": 5},
            ],
        })
    return {"timezone": "UTC", "serverTime": now_ms, "rateLimits": rate_limits or [],
            "exchangeFilters": [], "symbols": symbols}


def _decimal(params: dict[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise illegal(name) from None
    if not value.is_finite():
        raise illegal(name)
    return value


def _int(params: dict[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise illegal(name) from None


def _symbol(params: dict[str, str], required: bool = True) -> str | None:
    market_id = params.get("symbol")
    if market_id is None:
        if required:
            raise missing("symbol")
        return None
    spec = BY_ID.get(market_id)
    if spec is None:
        raise BinanceError(400, -1121, "Invalid symbol.")
    return spec.symbol


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise missing(name)
    return value


Handler = Callable[[dict[str, str]], Any]


class BinanceDialect:
    """binance spot REST on top of one PaperVenue account."""

    PUBLIC = frozenset({("GET", "/api/v3/exchangeInfo"), ("GET", "/api/v3/ping"),
                        ("GET", "/api/v3/time")})

    def __init__(self, venue: PaperVenue, account: str = "default",
                 clock: Callable[[], float] = time.time, *,
                 trades_page: int = MAX_TRADES_PAGE) -> None:
        if trades_page < 1:
            raise ValueError(f"a page of trades holds at least one, not {trades_page}")
        self.venue = venue
        self.account = account
        self.clock = clock
        self.trades_page = trades_page
        """The most trades a myTrades answer lists, whatever `limit` asks: binance's 1000,
        or fewer so that a client reading them must page."""
        self.rate_limits: Callable[[], list[dict[str, Any]]] = list
        """The limits exchangeInfo publishes (the HTTP server sets its limiter's)."""
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "/api/v3/exchangeInfo"):
                lambda _p: exchange_info(self.now_ms(), self.rate_limits()),
            ("GET", "/api/v3/ping"): lambda _p: {},
            ("GET", "/api/v3/time"): lambda _p: {"serverTime": self.now_ms()},
            ("POST", "/api/v3/order"): self.create,
            ("GET", "/api/v3/order"): self.fetch,
            ("DELETE", "/api/v3/order"): self.cancel,
            ("GET", "/api/v3/openOrders"): self.open_orders,
            ("GET", "/api/v3/allOrders"): self.all_orders,
            ("GET", "/api/v3/myTrades"): self.my_trades,
            ("GET", "/api/v3/account"): self.balances,
        }

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def handle(self, method: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
        route = self.routes[(method, path)]  # the server answers any other route 404
        try:
            return 200, route(params)
        except BinanceError as exc:
            return exc.status, exc.body()
        except (InvalidOrder, BadSymbol, OrderNotFound, ArgumentsRequired,
                InsufficientFunds) as exc:
            error = error_of(exc, method)
            return error.status, error.body()

    # -- endpoints -----------------------------------------------------------------

    def create(self, params: dict[str, str]) -> dict[str, Any]:
        symbol = _symbol(params)
        assert symbol is not None
        if "quoteOrderQty" in params:
            raise BinanceError(400, -1106, "Parameter 'quoteOrderQty' sent when not required.")
        amount = _decimal(params, "quantity")
        if amount is None:
            raise missing("quantity")
        kind = _required(params, "type").upper()
        # LIMIT_MAKER (what ccxt sends for postOnly): a limit refused if it would take,
        # resting until canceled; binance refuses a timeInForce with it. The venue keeps
        # it as a limit order (binance shows type LIMIT_MAKER, which ccxt reads as limit).
        post_only = kind == "LIMIT_MAKER"
        if post_only and "timeInForce" in params:
            raise BinanceError(400, -1106, "Parameter 'timeInForce' sent when not required.")
        order = self.venue.create_order(
            self.account, symbol, "limit" if post_only else kind.lower(),
            _required(params, "side").lower(), amount, _decimal(params, "price"),
            client_order_id=params.get("newClientOrderId"),
            time_in_force=params.get("timeInForce", "GTC").upper(), post_only=post_only)
        return order_body(order, with_fills=True)

    def _lookup(self, params: dict[str, str]) -> tuple[str, str | None, str | None]:
        symbol = _symbol(params)
        assert symbol is not None
        return symbol, params.get("orderId"), params.get("origClientOrderId")

    def fetch(self, params: dict[str, str]) -> dict[str, Any]:
        symbol, order_id, client_id = self._lookup(params)
        return order_body(self.venue.fetch_order(
            self.account, order_id, client_order_id=client_id, symbol=symbol))

    def cancel(self, params: dict[str, str]) -> dict[str, Any]:
        symbol, order_id, client_id = self._lookup(params)
        return order_body(self.venue.cancel_order(
            self.account, order_id, client_order_id=client_id, symbol=symbol))

    def open_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        orders = self.venue.open_orders(self.account, _symbol(params, required=False))
        return [order_body(o) for o in orders]

    def all_orders(self, params: dict[str, str]) -> list[dict[str, Any]]:
        orders = self.venue.orders(self.account, _symbol(params), _int(params, "startTime"),
                                   _int(params, "limit") or 500)
        return [order_body(o) for o in orders]

    def my_trades(self, params: dict[str, str]) -> list[dict[str, Any]]:
        order_id, limit = _int(params, "orderId"), self._trades_limit(params)
        since, from_id = _int(params, "startTime"), _int(params, "fromId")
        if from_id is not None and (since is not None or "endTime" in params):
            raise BinanceError(400, -1128, "Combination of optional parameters invalid.")
        if order_id is not None:  # one order's fills, as ccxt's fetch_order_trades asks
            trades = self.venue.order_trades(self.account, order_id)
            if from_id is None:  # binance's default: the most recent page
                return [trade_body(t) for t in trades[-limit:]]
            return [trade_body(t) for t in trades if int(t["id"]) >= from_id][:limit]
        trades = self.venue.my_trades(self.account, _symbol(params), since, limit,
                                      from_id=from_id)
        return [trade_body(t) for t in trades]

    def _trades_limit(self, params: dict[str, str]) -> int:
        """How many trades a myTrades answer may list: what `limit` asks (binance's
        default unless it does), within the page the venue serves."""
        limit = _int(params, "limit") or DEFAULT_TRADES_PAGE
        return max(1, min(limit, MAX_TRADES_PAGE, self.trades_page))

    def balances(self, _params: dict[str, str]) -> dict[str, Any]:
        balance = self.venue.balance(self.account)
        return {
            "makerCommission": int(MAKER_FEE * 10000), "takerCommission": int(TAKER_FEE * 10000),
            "buyerCommission": 0, "sellerCommission": 0,
            "canTrade": True, "canWithdraw": False, "canDeposit": False, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": balance["timestamp"], "accountType": "SPOT", "permissions": ["SPOT"],
            "balances": [{"asset": cur, "free": _num(f), "locked": _num(u)}
                         for cur, (f, u) in sorted(balance["info"].items())],
        }
