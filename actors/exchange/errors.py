"""What to do about an exchange error: one explicit table, not scattered excepts.

Actions:
- retry:   the request did not take effect; safe to send again after a delay.
- resolve: the outcome is unknown (it may have taken effect); look it up first.
- reject:  permanent; the exchange refused this request.
- halt:    the account cannot trade (credentials, permissions); stop submitting.

Lookup walks the exception's class hierarchy, so the most specific row wins: a
`DuplicateOrderId` (an `InvalidOrder`) resolves rather than rejects, because after
a retry it means the first attempt landed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """What to do about an exchange error (see the module's docstring)."""

    RETRY = "retry"
    RESOLVE = "resolve"
    REJECT = "reject"
    HALT = "halt"


# the short names the table below and its readers use
RETRY, RESOLVE, REJECT, HALT = Action.RETRY, Action.RESOLVE, Action.REJECT, Action.HALT


@dataclass(frozen=True)
class Rule:
    """One row of the table."""

    action: Action
    """retry, resolve, reject or halt."""
    code: str
    """The error code stored on the order's last_error."""
    transient: bool
    """Counts as an exchange failure for the circuit breaker."""


ERROR_TABLE: dict[str, Rule] = {
    # transient, request known not to have been processed
    "RateLimitExceeded": Rule(RETRY, "rate_limited", True),
    "DDoSProtection": Rule(RETRY, "rate_limited", True),
    "InvalidNonce": Rule(RETRY, "invalid_nonce", True),
    "OnMaintenance": Rule(RETRY, "exchange_unavailable", True),
    # transient, outcome unknown: the request may have reached the book
    "RequestTimeout": Rule(RESOLVE, "timeout", True),
    "ExchangeNotAvailable": Rule(RESOLVE, "exchange_unavailable", True),
    "NetworkError": Rule(RESOLVE, "network_error", True),
    "BadResponse": Rule(RESOLVE, "bad_response", True),
    "OperationFailed": Rule(RESOLVE, "exchange_unavailable", True),
    "DuplicateOrderId": Rule(RESOLVE, "duplicate_order", False),
    # permanent
    "InsufficientFunds": Rule(REJECT, "insufficient_funds", False),
    "OrderNotFound": Rule(REJECT, "order_not_found", False),
    "InvalidOrder": Rule(REJECT, "invalid_order", False),
    "BadSymbol": Rule(REJECT, "bad_symbol", False),
    "BadRequest": Rule(REJECT, "bad_request", False),
    "ExchangeError": Rule(REJECT, "exchange_error", False),
    # the account cannot trade
    "AuthenticationError": Rule(HALT, "authentication_failed", False),
    "PermissionDenied": Rule(HALT, "permission_denied", False),
    "AccountSuspended": Rule(HALT, "account_suspended", False),
}
UNCLASSIFIED = Rule(RESOLVE, "exchange_error", True)
"""An exception outside ccxt's hierarchy: treat the outcome as unknown."""


def classify(error: BaseException, table: dict[str, Rule] | None = None) -> Rule:
    """The rule of the most specific class of `error` that the table names."""
    rows = ERROR_TABLE if table is None else table
    for cls in type(error).__mro__:
        rule = rows.get(cls.__name__)
        if rule is not None:
            return rule
    return UNCLASSIFIED


URL_QUERY = re.compile(r"(https?://[^\s?#]*)\?[^\s'\"\\]*")
"""A URL and its query, which ends at a quote or a backslash too: the log's JSON lines
are redacted once encoded, where a quote after the query is `\\"` and a line break `\\n`."""


def without_queries(text: str) -> str:
    """`text` with each URL's query left out: ccxt names a failed request's URL, and a
    signed one carries its signature (and, on some exchanges, the API key) there."""
    return URL_QUERY.sub(r"\1?…", text)


def describe(error: BaseException) -> str:
    """A short message for the order's last_error: class and first line, bounded."""
    text = without_queries(str(error).splitlines()[0]) if str(error) else ""
    return f"{type(error).__name__}: {text}"[:300]
