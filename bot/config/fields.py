"""Typed access to the fields of one JSON configuration object, with errors naming file and field.

`ConfigError` is the one error of the configuration layer; its message names the file and the
field path (``users/alice.json: field 'brokers.kraken.exchange': ...``). `Fields` wraps one
object of one file; `read_json` reads a file as a JSON object (exact decimals, no floats).
"""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file and the field."""


def read_json(path: Path) -> dict:
    """The JSON object in ``path`` (numbers with a fraction as Decimal). Raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read file ({exc.strerror})") from None
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    return data


class Fields:
    """The fields of one JSON object of ``path``; ``prefix`` is its path in the file ("web.")."""

    def __init__(self, path: Path, data: dict, prefix: str = ""):
        self.path, self.data, self.prefix = path, data, prefix

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: field '{self.prefix}{name}': {problem}")

    def check_known(self, allowed: set[str]) -> None:
        for name in self.data:
            if name not in allowed:
                raise self.error(name, f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def get(self, name: str, kind: type | tuple, default: Any = None, required: bool = False) -> Any:
        if name not in self.data:
            if required:
                raise self.error(name, "is required")
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(name, f"must be {kind_name(kinds)}, not a boolean")
        if not isinstance(value, kinds):
            raise self.error(name, f"must be {kind_name(kinds)}, not {type(value).__name__}")
        return value

    def text(self, name: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.get(name, str, default, required)
        if value is not None and not value.strip():
            raise self.error(name, "must not be empty")
        return value

    def number(self, name: str, default: float, minimum: float = 0, above: bool = False) -> float:
        value = self.get(name, (int, Decimal), default)
        if value < minimum or (above and value == minimum):
            raise self.error(name, f"must be {'>' if above else '>='} {minimum}, got {value}")
        return float(value)

    def obj(self, name: str) -> Fields:
        value = self.get(name, dict, {})
        return Fields(self.path, value, f"{self.prefix}{name}.")


def kind_name(kinds: tuple) -> str:
    names = {str: "a string", bool: "true or false", int: "a number", Decimal: "a number", dict: "an object", list: "a list"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))
