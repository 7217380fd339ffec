"""JSON text in which a `Decimal` is a JSON number with exactly its digits.

The source documents want numbers (``"amount": 1.30``), and the standard ``json`` module can
only write a number through a float, which rounds to ~17 significant digits. `dumps` writes a
Decimal as its own digits instead (``Decimal("12345678.1234567891")`` -> ``12345678.1234567891``,
``Decimal("750.00")`` -> ``750.00``): a reader that parses numbers as doubles gets the same as from
a float, one that parses them as decimals gets the exact amount. Everything else is written as
``json.dumps`` writes it; NaN and infinities are refused (``ValueError``), never written.
"""
from __future__ import annotations

import json
from decimal import Decimal

_encode_scalar = json.JSONEncoder(allow_nan=False, ensure_ascii=True).encode


def dumps(value, indent: int | None = None) -> str:
    """``value`` (dicts with str keys, lists, tuples, str, int, float, bool, None, Decimal) as JSON;
    compact (``,`` and ``:``) without ``indent``, else pretty-printed with it."""
    out: list[str] = []
    _write(value, out, indent, 0)
    return "".join(out)


def _number(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"{value} is not a JSON number")
    return str(value)  # always JSON number syntax for a finite Decimal: 750.00, 1E+30, 1E-7, -0


def _write(value, out: list[str], indent: int | None, level: int) -> None:
    if isinstance(value, Decimal):
        out.append(_number(value))
    elif isinstance(value, dict):
        _container(out, "{", "}", [(json.dumps(str(k)) + (": " if indent is not None else ":"), v)
                                   for k, v in value.items()], indent, level)
    elif isinstance(value, (list, tuple)):
        _container(out, "[", "]", [("", v) for v in value], indent, level)
    else:
        out.append(_encode_scalar(value))


def _container(out: list[str], open_: str, close: str, items: list, indent: int | None, level: int) -> None:
    if not items:
        out.append(open_ + close)
        return
    inner = "" if indent is None else "\n" + " " * (indent * (level + 1))
    out.append(open_)
    for index, (prefix, item) in enumerate(items):
        if index:
            out.append(",")
        out.append(inner + prefix)
        _write(item, out, indent, level + 1)
    out.append("" if indent is None else "\n" + " " * (indent * level))
    out.append(close)
