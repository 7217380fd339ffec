"""Plain values that cross the store's boundary: what callers write and what queries return.

All are frozen dataclasses, safe to share between threads. Money is `Decimal`; unknown is
`None`, never 0. Datetimes are timezone-aware (queries return them in UTC); a naive datetime is
refused with `ValueError`, as are unknown sources, states and sides. Input values (`SnapshotIn`,
`DailyRow`, `TradeIn`, `AlertIn`) validate themselves on construction, so a bad value fails where
it is made rather than inside a transaction.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from bot.core.money import MONEY
from bot.core.sources import HOLDINGS, SOURCES

# Every source a query may filter by: the written ones plus the snapshot API's "holdings_sync"
# (captured by a per-asset holdings sync), which this store never writes: a filter by it matches
# nothing. Writing it would need a migration of the ck_snapshots_source constraint.
FILTER_SOURCES = SOURCES + (HOLDINGS,)
DAY_STATES = ("provisional", "final", "carried")
ACCOUNT_STATUSES = ("ok", "stale")
STATE_STATUSES = ("ok", "stale", "error", "not_configured")  # bot.core.state.Status values
TRADE_SIDES = ("buy", "sell")

NAME_MAX = 255      # user ids, account ids, owners, brokers, symbols, alert types
CODE_MAX = 32       # currencies, assets, sources, states, levels
SESSION_ID_MAX = 64  # revoked browser-session ids (web.sessions)


def check_name(field: str, value: object, max_len: int = NAME_MAX) -> str:
    """A non-empty string of at most `max_len` characters, or ValueError naming `field`."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty string, got {value!r}")
    if len(value) > max_len:
        raise ValueError(f"{field} is longer than {max_len} characters: {value[:40]!r}...")
    return value


def check_choice(field: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{field} must be one of {', '.join(choices)}; got {value!r}")
    return value  # type: ignore[return-value]


def check_source(source: object) -> str:
    """A snapshot source (one of `SOURCES`), or ValueError."""
    return check_choice("source", source, SOURCES)


def check_filter_source(source: object) -> str:
    """A source to filter snapshots by (one of `FILTER_SOURCES`), or ValueError."""
    return check_choice("source", source, FILTER_SOURCES)


def check_aware(field: str, value: object) -> datetime:
    """A timezone-aware datetime, or ValueError (naive datetimes are ambiguous and refused)."""
    if not isinstance(value, datetime):
        raise ValueError(f"{field} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{field} must be timezone-aware, got naive {value.isoformat()}")
    return value


def check_day(field: str, value: object) -> date:
    """A calendar `date` (a `datetime` is refused: it would silently lose its time and zone)."""
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValueError(f"{field} must be a datetime.date, got {type(value).__name__}")
    return value


def check_amount(field: str, value: object, optional: bool = False) -> Decimal | None:
    """A finite `Decimal` (None allowed when `optional`); floats are refused as inexact."""
    if value is None and optional:
        return None
    if not isinstance(value, Decimal):
        raise ValueError(f"{field} must be a Decimal, got {type(value).__name__} {value!r}")
    if not value.is_finite():
        raise ValueError(f"{field} must be finite, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class AssetRow:
    """One asset of a snapshot: amount held, price in the snapshot's currency and value (None if unpriced)."""

    asset: str
    amount: Decimal
    price: Decimal | None
    value: Decimal | None

    def __post_init__(self) -> None:
        check_name("asset", self.asset, CODE_MAX)
        check_amount(f"{self.asset} amount", self.amount)
        check_amount(f"{self.asset} price", self.price, optional=True)
        check_amount(f"{self.asset} value", self.value, optional=True)


@dataclass(frozen=True, slots=True)
class SnapshotIn:
    """A snapshot to write: one account's value after a successful read, with per-asset detail."""

    account_id: str
    owner: str
    broker: str
    balance: Decimal
    currency: str
    source: str
    captured_at: datetime
    assets: tuple[AssetRow, ...] = ()

    def __post_init__(self) -> None:
        check_name("account_id", self.account_id)
        check_name("owner", self.owner)
        check_name("broker", self.broker)
        check_amount("balance", self.balance)
        check_name("currency", self.currency, CODE_MAX)
        check_source(self.source)
        check_aware("captured_at", self.captured_at)
        if not isinstance(self.assets, tuple) or not all(isinstance(a, AssetRow) for a in self.assets):
            raise ValueError("assets must be a tuple of AssetRow")
        if len({a.asset for a in self.assets}) != len(self.assets):
            raise ValueError(f"assets of {self.account_id} name an asset twice")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A stored snapshot with its change versus the previous snapshot of the same account.

    `change_amount` is None for an account's first snapshot (or when the currency changed);
    `change_percent` (a float, 2.5 meaning +2.5 %) is also None when the previous balance is 0.
    "Previous" follows the same source filter as the query that returned the snapshot.
    """

    id: int
    account_id: str
    balance: Decimal
    currency: str
    source: str
    captured_at: datetime
    created_at: datetime
    change_amount: Decimal | None
    change_percent: float | None


# The slot setters of Snapshot, in field order. `timeline._chain` builds the thousands of
# snapshots of a history with ``object.__new__`` and these, about twice as fast as the frozen
# dataclass's ``__init__`` (which sets each field through ``object.__setattr__`` by name); the
# result is the same value, which a test checks.
SNAPSHOT_SLOTS = tuple(Snapshot.__dict__[name].__set__ for name in Snapshot.__slots__)


@dataclass(frozen=True, slots=True)
class DailyRow:
    """One account's holding of one asset in a user's daily close, valued in `base_currency`."""

    account_id: str
    asset: str
    amount: Decimal
    price: Decimal | None
    value: Decimal | None
    base_currency: str
    account_status: str  # "ok" | "stale" (a failed account's last good value carried)

    def __post_init__(self) -> None:
        check_name("account_id", self.account_id)
        check_name("asset", self.asset, CODE_MAX)
        check_amount("amount", self.amount)
        check_amount("price", self.price, optional=True)
        check_amount("value", self.value, optional=True)
        check_name("base_currency", self.base_currency, CODE_MAX)
        check_choice("account_status", self.account_status, ACCOUNT_STATUSES)


@dataclass(frozen=True, slots=True)
class DailyClose:
    """A user's close for one day.

    `state` is "provisional" (today's, still overwritten), "final" (closed at midnight) or
    "carried" (finalised from the last provisional rows after a midnight the process missed).
    """

    user_id: str
    day: date
    state: str
    rows: tuple[DailyRow, ...]
    updated_at: datetime

    @property
    def total(self) -> Decimal | None:
        """Sum of the known row values; None if no row has a value."""
        total = None
        for row in self.rows:
            if row.value is not None:
                total = row.value if total is None else MONEY.add(total, row.value)
        return total


@dataclass(frozen=True, slots=True)
class TradeIn:
    """A trade to journal: `side` is "buy" or "sell"; `pnl` and `fee` None when unknown."""

    user_id: str
    broker: str
    symbol: str
    side: str
    amount: Decimal
    price: Decimal
    pnl: Decimal | None
    fee: Decimal | None
    executed_at: datetime

    def __post_init__(self) -> None:
        check_name("user_id", self.user_id)
        check_name("broker", self.broker)
        check_name("symbol", self.symbol)
        check_choice("side", self.side, TRADE_SIDES)
        check_amount("amount", self.amount)
        check_amount("price", self.price)
        check_amount("pnl", self.pnl, optional=True)
        check_amount("fee", self.fee, optional=True)
        check_aware("executed_at", self.executed_at)


@dataclass(frozen=True, slots=True)
class Trade:
    id: int
    user_id: str
    broker: str
    symbol: str
    side: str
    amount: Decimal
    price: Decimal
    pnl: Decimal | None
    fee: Decimal | None
    executed_at: datetime


@dataclass(frozen=True, slots=True)
class AlertIn:
    """An alert event to log (e.g. type "BALANCE_LOW", state "firing"/"resolved", level "warning")."""

    type: str
    state: str
    level: str
    user_id: str
    broker: str | None
    value: Decimal | None
    threshold: Decimal | None
    message: str
    created_at: datetime

    def __post_init__(self) -> None:
        check_name("type", self.type, 64)
        check_name("state", self.state, CODE_MAX)
        check_name("level", self.level, CODE_MAX)
        check_name("user_id", self.user_id)
        if self.broker is not None:
            check_name("broker", self.broker)
        check_amount("value", self.value, optional=True)
        check_amount("threshold", self.threshold, optional=True)
        if not isinstance(self.message, str):
            raise ValueError(f"message must be a string, got {type(self.message).__name__}")
        check_aware("created_at", self.created_at)


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    type: str
    state: str
    level: str
    user_id: str
    broker: str | None
    value: Decimal | None
    threshold: Decimal | None
    message: str
    created_at: datetime
