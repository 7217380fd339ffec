"""Typed access to the fields of one JSON configuration object, with errors naming file and field.

`ConfigError` is the one error of the configuration layer; its message names the file and the
field path (``users/alice.json: field 'brokers.kraken.exchange': ...``). `Fields` wraps one
object of one file; `read_json` reads a file as a JSON object (kind and size checked, exact
decimals, no floats; see `bot.config.files`). Numbers are checked against their range in
`bot.config.ranges.NUMBER_RANGES`.
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.config.files import ConfigError, read_json_object
from bot.config.ranges import NUMBER_RANGES, Range, shown_number

__all__ = ["ConfigError", "Fields", "kind_name", "read_json"]


def read_json(path: Path) -> dict:
    """The JSON object in ``path`` (numbers with a fraction as Decimal). Raises ConfigError."""
    return read_json_object(path)


class Fields:
    """The fields of one JSON object of ``path``; ``prefix`` is its path in the file ("web.").

    ``section`` is the prefix under which its numbers are found in `NUMBER_RANGES` (the prefix,
    unless set: "rate_limits.*." for every exchange's entry)."""

    def __init__(self, path: Path, data: dict, prefix: str = "", section: str | None = None):
        self.path, self.data, self.prefix = path, data, prefix
        self.section = prefix if section is None else section

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

    def checked(self, name: str, value: str | None, problem) -> str | None:
        """``value`` unless ``problem(value)`` names a problem (then ConfigError); None passes."""
        if value is not None:
            found = problem(value)
            if found is not None:
                raise self.error(name, found)
        return value

    def _ranged(self, name: str) -> int | Decimal:
        limits: Range = NUMBER_RANGES[self.section + name]
        value = self.get(name, (int, Decimal))
        if limits.whole and isinstance(value, Decimal) and value.is_finite() and value != value.to_integral_value():
            raise self.error(name, f"must be a whole number, got {shown_number(value)} (allowed: {limits.describe()})")
        found = limits.problem(value)
        if found is not None:
            raise self.error(name, found)
        return value

    def number(self, name: str, default: float | None) -> float | None:
        """The field (absent: ``default``) as a float within its range."""
        return default if name not in self.data else float(self._ranged(name))

    def decimal(self, name: str, default: Decimal | None) -> Decimal | None:
        """The field (absent: ``default``) as an exact Decimal within its range."""
        return default if name not in self.data else Decimal(self._ranged(name))

    def whole(self, name: str, default: int) -> int:
        """The field (absent: ``default``) as an integer within its range (``2.0`` and ``1e3`` count)."""
        return default if name not in self.data else int(self._ranged(name))

    def obj(self, name: str) -> Fields:
        value = self.get(name, dict, {})
        return Fields(self.path, value, f"{self.prefix}{name}.")


def kind_name(kinds: tuple) -> str:
    names = {str: "a string", bool: "true or false", int: "a number", Decimal: "a number", dict: "an object", list: "a list"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))
