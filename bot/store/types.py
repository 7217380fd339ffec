"""Column types that keep money exact and time unambiguous on both supported databases.

`Amount`: PostgreSQL NUMERIC (unbounded precision, psycopg returns `Decimal`); on SQLite, whose
NUMERIC affinity would turn values into floats, the decimal's own string in a TEXT column, read
back with `Decimal(text)`. Either way `Decimal("0.30")` comes back as `Decimal("0.30")`. Floats
are refused: they are already inexact when they arrive. Never compare or sum amounts in SQL on
SQLite (they are text there); do it in Python.

`UTCDateTime`: PostgreSQL TIMESTAMP WITH TIME ZONE; on SQLite a fixed-width ISO string in UTC
(``YYYY-MM-DD HH:MM:SS.ffffff+00:00``) so that text order is time order. Naive datetimes are
refused; values come back as aware datetimes in UTC (`datetime.timezone.utc`).

The `sqlite_*` functions are the exact storage format, exposed for bulk loaders (the benchmark).
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import DateTime, Numeric, String, Text
from sqlalchemy.types import TypeDecorator

UTC = timezone.utc


def sqlite_amount(value: Decimal) -> str:
    return str(value)


def sqlite_timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(sep=" ", timespec="microseconds")


def _bind_amount(value) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise ValueError(f"amounts must be Decimal (or int), got {type(value).__name__} {value!r}")
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"amounts must be finite, got {value}")
    return value


def _bind_datetime(value) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"expected a datetime, got {type(value).__name__} {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetimes must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


class Amount(TypeDecorator):
    """An exact decimal amount: NUMERIC on PostgreSQL, decimal text on SQLite."""

    impl = Numeric
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(Numeric(asdecimal=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = _bind_amount(value)
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(value)


class UTCDateTime(TypeDecorator):
    """An instant: TIMESTAMPTZ on PostgreSQL, fixed-width UTC ISO text on SQLite; aware UTC out."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = _bind_datetime(value)
        return sqlite_timestamp(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):
            return datetime.fromisoformat(value)
        return value if value.tzinfo is UTC else value.astimezone(UTC)
