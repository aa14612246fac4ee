"""Error codes of the wire protocol and the exception that carries them."""

from __future__ import annotations

from typing import Any

# code -> retryable, exactly as the wire contract lists them.
RETRYABLE: dict[str, bool] = {
    "bad_request": False,
    "unsupported_version": False,
    "unknown_command": False,
    "request_too_large": False,
    "invalid_order": False,
    "unknown_exchange": False,
    "unknown_symbol": False,
    "duplicate_client_order_id": False,
    "not_found": False,
    "not_cancelable": False,
    "risk_rejected": False,
    "unauthorized": False,
    "halted": True,
    "starting": True,
    "circuit_open": True,
    "rate_limited": True,
    "exchange_unavailable": True,
    "timeout": True,
    "internal": True,
}


class ProtocolError(Exception):
    """A request failed with one of the protocol's error codes."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        retry_after_s: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        if code not in RETRYABLE:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s
        self.details: dict[str, Any] = dict(details or {})
        if field is not None:
            self.details["field"] = field

    @property
    def retryable(self) -> bool:
        return RETRYABLE[self.code]

    def to_wire(self) -> dict[str, Any]:
        """The `error` object of a reply."""
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
        }
        if self.details:
            error["details"] = self.details
        if self.retry_after_s is not None and self.retryable:
            error["retry_after_s"] = round(self.retry_after_s, 3)
        return error

    @classmethod
    def from_wire(cls, error: dict[str, Any]) -> ProtocolError:
        """Rebuild the exception a reply describes (used by clients)."""
        code = error.get("code")
        exc = cls(
            code if isinstance(code, str) and code in RETRYABLE else "internal",
            str(error.get("message", "")),
            retry_after_s=error.get("retry_after_s"),
            details=error.get("details") if isinstance(error.get("details"), dict) else None,
        )
        exc.code = str(code)
        return exc
