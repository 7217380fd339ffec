"""What an exchange's answer says about its limits: usage headers and "slow down" signals.

`classify(status, headers, payload)` names a refusal by a rate limit, with the server's
Retry-After in seconds when it gave one: HTTP 429 (``http_429``), 418 (``ban_418``: an IP ban),
Kraken's HTTP-200 ``EAPI:Rate limit exceeded`` (``key_counter``) and ``EGeneral:Too many
requests`` (``too_many_requests``), OKX ``50011`` (``okx_50011``), Bybit ``10006``
(``bybit_10006``). Pure functions of the response; ``headers`` is any case-insensitive mapping.
"""
from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Mapping, NamedTuple


class Signal(NamedTuple):
    reason: str
    retry_after: float | None  # seconds, as the server said; None: not said
    ban: bool = False


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: a number (fractions allowed) or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _errors(payload) -> list:
    if isinstance(payload, Mapping):
        errors = payload.get("error")
        return errors if isinstance(errors, list) else []
    return []


def classify(status: int, headers: Mapping[str, str], payload) -> Signal | None:
    """The rate-limit refusal this response is, or None."""
    retry_after = retry_after_seconds(headers.get("Retry-After"))
    if status == 418:
        return Signal("ban_418", retry_after, ban=True)
    if status == 429:
        return Signal("http_429", retry_after)
    for error in _errors(payload):
        text = str(error)
        if text.startswith("EAPI:Rate limit exceeded"):
            return Signal("key_counter", retry_after)
        if text.startswith("EGeneral:Too many requests"):
            return Signal("too_many_requests", retry_after)
    if isinstance(payload, Mapping):
        if str(payload.get("code")) == "50011":
            return Signal("okx_50011", retry_after)
        if str(payload.get("retCode")) == "10006":
            return Signal("bybit_10006", retry_after)
    return None


def used_weight(headers: Mapping[str, str], header: str) -> float | None:
    """The address's used weight from ``header`` (Binance's X-MBX-USED-WEIGHT-1M), else None."""
    try:
        return float(headers[header])
    except (KeyError, TypeError, ValueError):
        return None


def bybit_exhausted_until(headers: Mapping[str, str]) -> float | None:
    """Bybit: when ``X-Bapi-Limit-Status`` (requests left) is at most 1, the reset instant
    (``X-Bapi-Limit-Reset-Timestamp``, ms) in seconds; else None."""
    try:
        left = float(headers["X-Bapi-Limit-Status"])
        reset_ms = float(headers["X-Bapi-Limit-Reset-Timestamp"])
    except (KeyError, TypeError, ValueError):
        return None
    return reset_ms / 1000.0 if left <= 1 else None
