"""A failed exchange request as it travels on from where its error entered (the guarded
call in `link`, the library's direct calls): the error with the rule it was classified
by there, once. Whoever acts on it later reads the rule; nobody classifies again."""

from __future__ import annotations

from actors.exchange.errors import REJECT, UNCLASSIFIED, Rule, describe
from actors.exchange.messages import ErrorInfo

REFUSED = Rule(REJECT, "invalid_order", False)
"""A create whose params its driver does not take: not sent, and never will be."""


class CallFailed(Exception):
    """An exchange request failed for good (after any retries)."""

    def __init__(self, error: BaseException, rule: Rule, sends: int, retries: int,
                 retry_after_s: float | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.rule = rule
        self.sends = sends
        self.retries = retries
        self.retry_after_s = retry_after_s


def error_info(failure: BaseException) -> ErrorInfo:
    """What a failed request comes to: the rule a CallFailed carries, the exchange's own
    message and Retry-After. Anything else (an open circuit, an answer that cannot be
    read, an ask that timed out) was raised on our side: unclassified, outcome unknown."""
    if isinstance(failure, CallFailed):
        rule = failure.rule
        return ErrorInfo(rule.code, describe(failure.error), rule.action, failure.retry_after_s)
    return ErrorInfo(UNCLASSIFIED.code, describe(failure), UNCLASSIFIED.action)
