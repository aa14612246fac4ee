"""Client text made inert: one rule for what validation accepts and what output escapes.

Text is acceptable when every character is printable as Python defines it (Unicode
letters, marks, numbers, punctuation, symbols and the ASCII space): that excludes
control characters (newlines, tabs, ESC), format characters (bidi overrides),
lone surrogates, private-use and unassigned code points, and every other space.
Validation refuses anything else; `printable` escapes it wherever text is written
out (systemd's notify socket, logs, alerts), so odd text that did get in from
elsewhere can neither start a new line nor make an encoder raise.
"""

from __future__ import annotations

MARK = "…"
"""Ends text that `printable` shortened."""


def is_printable(text: str) -> bool:
    """True when `text` holds only printable characters (the empty string included)."""
    return text.isprintable()


SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in SHORT_ESCAPES:
        return SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(value: object, limit: int | None = None) -> str:
    """`value` as one line of printable text: every other character as a Python escape
    (`\\n`, `\\ud800`), at most `limit` characters (then ending in `MARK`).

    Never raises, whatever the value: a `str()` that fails gives a placeholder."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = str(value)
        except Exception:  # noqa: BLE001 - a broken __str__ must not break the writer
            text = f"<unprintable {type(value).__name__}>"
    if not text.isprintable():  # the common case costs one C-level scan
        text = "".join(c if c.isprintable() else _escape(c) for c in text)
    if limit is not None and len(text) > limit:
        text = text[:max(0, limit - 1)] + MARK
    return text
