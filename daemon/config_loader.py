"""Strict TOML-to-dataclass loading: every key known, every type checked.

A schema is a tree of frozen dataclasses whose fields have defaults, each defined in
the package that reads it. A table's key that is not a field, or a value of the wrong
type, is a `ConfigError` naming the key by its dotted path. A section refuses a value
itself by raising `ValueError("field: why")` from `__post_init__` or `check()`, naming
the field as the section knows it (sections live in packages that must not depend on
this one, and do not know where they sit in the file); the loader puts the section's
path in front, so every error the user sees is a `ConfigError` with the full key.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
CREDENTIALS = re.compile(r"^(\$CREDENTIALS_DIRECTORY|\$\{CREDENTIALS_DIRECTORY\})(?=/|$)")
"""A path may start with systemd's credentials folder (`LoadCredential=`), which differs
per unit and instance, so a file cannot name it; nothing else is expanded."""


FIELD = re.compile(r"([A-Za-z_][A-Za-z0-9_.\[\]]*): (.*)", re.DOTALL)
"""A section's refusal: `field: why`."""


class ConfigError(Exception):
    """A configuration value is wrong: `key` is its dotted path, `why` says how;
    printed as `key: why`."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"{key}: {why}")
        self.key = key
        self.why = why


def refused(key: str, error: ValueError) -> ConfigError:
    """The ConfigError for a section at `key` that refused a value with `error`."""
    match = FIELD.fullmatch(str(error))
    if match is None:  # not "field: why": the section as a whole
        return ConfigError(key or "config", str(error))
    return ConfigError(_join(key, match.group(1)), match.group(2))


def build(cls: type[T], table: Any, key: str, base_dir: Path) -> T:
    """An instance of dataclass `cls` from a TOML table at dotted path `key`."""
    if not isinstance(table, dict):
        raise ConfigError(key or "config", "expected a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for name in table:
        if name not in fields:
            raise ConfigError(_join(key, name), "unknown key")
    values = {name: _convert(hints[name], value, _join(key, name), base_dir)
              for name, value in table.items()}
    try:
        instance = cls(**values)
        check = getattr(instance, "check", None)
        if check is not None:
            check()
    except ValueError as exc:
        raise refused(key, exc) from None
    return instance


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _convert(hint: Any, value: Any, key: str, base_dir: Path) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(options) == 1:
            return _convert(options[0], value, key, base_dir)
        for option in options:  # the first that takes the value
            try:
                return _convert(option, value, key, base_dir)
            except ConfigError:
                continue
        expected = " or ".join(_name(option) for option in options)
        raise ConfigError(key, f"expected {expected}, got {type(value).__name__}")
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, list):
            raise ConfigError(key, "expected a list")
        return tuple(_convert(item, v, f"{key}[{i}]", base_dir) for i, v in enumerate(value))
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key, base_dir)  # type: ignore[arg-type]
    return _scalar(hint, value, key, base_dir)


def _scalar(hint: Any, value: Any, key: str, base_dir: Path) -> Any:
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(key, "expected a path string")
        path = Path(_credentials(value, key)).expanduser()
        return path if path.is_absolute() else (base_dir / path)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, float) and not math.isfinite(value):
        # TOML's inf and nan: no setting means anything by them, and they pass
        # every range check that compares (nan) or only bounds one side (inf)
        raise ConfigError(key, "expected a finite number")
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(key, "expected true or false")
    if hint is int and isinstance(value, bool):
        raise ConfigError(key, "expected an integer")
    if not isinstance(value, hint):
        raise ConfigError(key, f"expected {_name(hint)}, got {type(value).__name__}")
    return value


def _credentials(value: str, key: str) -> str:
    if not CREDENTIALS.match(value):
        return value
    folder = os.environ.get("CREDENTIALS_DIRECTORY")
    if not folder:
        raise ConfigError(key, "$CREDENTIALS_DIRECTORY is not set (systemd sets it for a "
                               "service with LoadCredential=)")
    return CREDENTIALS.sub(lambda _match: folder, value)


def _name(hint: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))
