"""The state of one account: a small immutable value shared freely between threads.

Money is `Decimal`; unknown is `None`, never 0. ``fetched_at`` is the wall-clock time
(``time.time()``) of the last successful read; a state that failed to refresh keeps the last
good holdings and value and says why (``stale``), or has value ``None`` (``error``). ``error``
is the human text ("RequestTimeout: kraken GET ... timed out"); ``error_class`` names the
failure for programs (the exception class: "RequestTimeout", "AuthenticationError",
"MalformedResponse"), None when the state is not a failure or the cause has no class.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import Enum
from typing import Iterable, Mapping

from bot.core.money import sum_money


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
    error_class: str | None = None
    read_seconds: float | None = None  # how long the read that produced this state took (retries included)

    @property
    def known(self) -> bool:
        return self.value is not None

    def age_seconds(self, now: float | None = None) -> float | None:
        if self.fetched_at is None:
            return None
        return max(0.0, (time.time() if now is None else now) - self.fetched_at)

    def failed(self, error: str, error_class: str | None) -> AccountState:
        """The state after a failed read: the last good value kept (stale), or none (error)."""
        if self.fetched_at is not None and self.value is not None:
            return replace(self, status=Status.STALE, error=error, error_class=error_class)
        return replace(self, status=Status.ERROR, value=None, holdings={}, unpriced=(), error=error,
                       error_class=error_class)


def sum_known(states: Iterable[AccountState]) -> Decimal | None:
    """Sum of the known values (in `bot.core.money.MONEY`); None when no state has a known value."""
    return sum_money(state.value for state in states)
