"""The state of one account: a small immutable value shared freely between threads.

Money is `Decimal`; unknown is `None`, never 0. ``fetched_at`` is the wall-clock time
(``time.time()``) of the last successful read; a state that failed to refresh keeps the last
good holdings and value and says why (``stale``), or has value ``None`` (``error``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import Enum
from typing import Mapping


class Status(str, Enum):
    OK = "ok"
    STALE = "stale"
    ERROR = "error"
    NOT_CONFIGURED = "not_configured"


@dataclass(frozen=True, slots=True)
class Holding:
    """One asset of an account: the amount, its price in the base currency and the value (None if unpriced)."""

    amount: Decimal
    price: Decimal | None
    value: Decimal | None


@dataclass(frozen=True, slots=True)
class AccountState:
    account_id: str
    owner: str
    broker: str
    exchange: str
    status: Status
    value: Decimal | None = None
    holdings: Mapping[str, Holding] = field(default_factory=dict)
    unpriced: tuple[str, ...] = ()
    fetched_at: float | None = None
    error: str | None = None
    read_seconds: float | None = None  # how long the read that produced this state took (retries included)

    @property
    def known(self) -> bool:
        return self.value is not None

    def age_seconds(self, now: float | None = None) -> float | None:
        if self.fetched_at is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.fetched_at)

    def failed(self, error: str) -> AccountState:
        """The state after a failed read: the last good value kept (stale), or none (error)."""
        if self.fetched_at is not None and self.value is not None:
            return replace(self, status=Status.STALE, error=error)
        return replace(self, status=Status.ERROR, value=None, holdings={}, unpriced=(), error=error)


def sum_known(states) -> Decimal | None:
    """Sum of the known values; None when no state has a known value."""
    total = None
    for state in states:
        if state.value is not None:
            total = state.value if total is None else total + state.value
    return total
