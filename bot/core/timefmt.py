"""Time helpers shared by every view: UTC datetimes from Unix times, ISO-8601 text, short ages.

``fetched_at`` and the like are Unix times (``time.time()``); the store's datetimes are aware.
Every helper passes ``None`` through (``format_age`` shows it as "never read").
"""
from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc


def utc_from_timestamp(timestamp: float) -> dt.datetime:
    """The aware UTC datetime of a Unix time."""
    return dt.datetime.fromtimestamp(timestamp, UTC)


def iso_utc(timestamp: float | None) -> str | None:
    """A Unix time as ``2026-01-21T16:00:00Z`` (whole seconds); None stays None."""
    if timestamp is None:
        return None
    return utc_from_timestamp(timestamp).isoformat(timespec="seconds").replace("+00:00", "Z")


def iso(value: dt.datetime | None) -> str | None:
    """An aware datetime in ISO-8601, UTC written as ``Z`` (microseconds kept); None stays None."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def format_age(seconds: float | None) -> str:
    """``42s``, ``6m``, ``3h``, ``2d`` (truncated); "never read" for None."""
    if seconds is None:
        return "never read"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
