"""A failed signed request is described, and logged, without its signature: ccxt names
the request's URL in its errors, and a signed GET or DELETE (a lookup, a cancel) carries
the signature in its query. The description reaches an order's last_error (status
replies, events, the ledger), reports, alerts and the log."""

from __future__ import annotations

import io
import json
import logging

from actors.exchange.drivers.ccxt_driver import DriverSettings, build_binance
from actors.exchange.errors import describe
from daemon.logs import JsonFormatter, Redactor, SafeHandler, formatter


def refused_lookup() -> Exception:
    """What ccxt raises for a signed lookup nobody answers."""
    client = build_binance(DriverSettings("key-of-test", "secret-of-test",
                                          api_url="http://127.0.0.1:9"))
    try:
        client.privateGetOrder({"symbol": "BTCUSDT", "orderId": 1})
    except Exception as exc:  # noqa: BLE001 - whatever ccxt raises
        return exc
    raise AssertionError("port 9 answered")


def test_a_failed_signed_request_is_described_without_its_query() -> None:
    error = refused_lookup()
    assert "signature=" in str(error)  # else this test proves nothing
    text = describe(error)
    assert "signature=" not in text and "timestamp=" not in text, text
    assert "/api/v3/order?…" in text  # which request failed is still said


def test_a_logged_traceback_carries_no_signature() -> None:
    stream = io.StringIO()
    handler = SafeHandler(stream, Redactor())  # as the daemon's log is written
    handler.setFormatter(formatter("text", stream))
    log = logging.getLogger("orderd.test.error_text")
    log.addHandler(handler)
    try:
        raise refused_lookup()
    except Exception:
        log.exception("lookup failed")
    finally:
        log.removeHandler(handler)
    logged = stream.getvalue()
    assert "lookup failed" in logged and "/api/v3/order?…" in logged
    assert "signature=" not in logged, logged


def json_lines(*messages: str) -> list[str]:
    out = io.StringIO()
    handler = SafeHandler(out, Redactor(["sekret"]))
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("orderd.test.json_lines")
    log.addHandler(handler)
    log.propagate = False
    try:
        for message in messages:
            log.warning("%s", message)
    finally:
        log.removeHandler(handler)
    return out.getvalue().splitlines()


def test_a_url_query_followed_by_a_quote_leaves_the_json_line_valid() -> None:
    """Redactor strips queries from the JSON text the formatter made: a `"` right after
    a query is JSON-escaped as `\\"`, and the regex eats the backslash."""
    for line in json_lines('answer: {"next": "https://x.example/a?page=2"}',
                           '<a href="https://x.example/a?b=c">link</a>'):
        json.loads(line)  # json.JSONDecodeError before a fix
