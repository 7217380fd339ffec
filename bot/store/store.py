"""`BalanceStore`: the history of balances in SQLite (default) or PostgreSQL.

Thread-safety: one store per process, shared by every thread. It owns one SQLAlchemy engine
(thread-safe; a pool of connections, none shared between threads) and no other mutable state;
each method is one short transaction on a connection borrowed for that call. Several processes
(the bot and the web server) may open the same database: see `bot.store.migrate` for opening,
`bot.store.engine` for SQLite's write lock and `bot.store.daily` for the PostgreSQL row lock
that serialises replacing a day.

Inputs are checked before any transaction: unknown sources or states, naive datetimes, a
`datetime` where a `date` is expected, reversed ranges and out-of-range limits raise ValueError.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Iterable, Mapping, Sequence

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from bot.store import carry, daily, journal, sessions, snapshots, timeline
from bot.store.engine import (StoreOpenError, check_database, create_store_engine, default_database_url, open_error,
                              writer)  # StoreOpenError: re-exported
from bot.store.migrate import upgrade_to_head
from bot.store.records import (
    DAY_STATES, SESSION_ID_MAX, Alert, AlertIn, AssetRow, DailyClose, DailyRow, Snapshot, SnapshotIn, Trade,
    TradeIn, check_aware, check_choice, check_day, check_filter_source, check_name,
)

__all__ = ["BalanceStore", "StoreOpenError", "default_database_url"]

RECENT_LIMIT_MAX = 100     # recent_snapshots: 1..100, as the JSON API allows
JOURNAL_LIMIT_MAX = 1000   # trades / recent_alerts


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _check_limit(limit: object, maximum: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise ValueError(f"limit must be an integer from 1 to {maximum}, got {limit!r}")
    return limit


def _check_ids(account_ids: Iterable[str]) -> list[str]:
    if isinstance(account_ids, str):
        raise ValueError(f"account_ids must be an iterable of ids, not the string {account_ids!r}")
    return [check_name("account_id", a) for a in account_ids]


def _check_rows(rows: Iterable[DailyRow]) -> list[DailyRow]:
    """`rows` as a list of `DailyRow`, each (account, asset) once, or ValueError."""
    rows = list(rows)
    seen = set()
    for row in rows:
        if not isinstance(row, DailyRow):
            raise ValueError(f"daily rows must be DailyRow values, got {type(row).__name__}")
        if (row.account_id, row.asset) in seen:
            raise ValueError(f"rows name {row.account_id} / {row.asset} twice")
        seen.add((row.account_id, row.asset))
    return rows


def _check_account_query(account_id: str, source: str | None) -> None:
    """The account id and the optional source filter of a snapshot query (ValueError)."""
    check_name("account_id", account_id)
    if source is not None:
        check_filter_source(source)


def _check_range(start, end, check) -> None:
    check("start", start)
    check("end", end)
    if start > end:
        raise ValueError(f"start {start.isoformat()} is after end {end.isoformat()}")


class BalanceStore:
    """Snapshots, daily closes, trades, alerts and revoked browser sessions in one database (see the
    module docstring).

    Opening checks the database (a damaged SQLite file is refused, see `bot.store.engine`), then
    runs the schema migrations to head (safe to repeat, safe from two processes at once); it
    raises ValueError for an unsupported URL and `StoreOpenError` (one line naming the database
    and the reason) for a database that cannot be used. Money is exact `Decimal`; datetimes go in
    timezone-aware and come out aware in UTC.
    """

    def __init__(self, url: str):
        self.url = url
        self._engine: Engine = create_store_engine(url)
        self._writer: Engine = writer(self._engine)
        try:
            check_database(self._engine, url)
            upgrade_to_head(self._engine)
        except BaseException as exc:
            self._engine.dispose()
            if isinstance(exc, DBAPIError):  # e.g. a damaged page the bounded check did not reach
                raise open_error(url, exc) from None
            raise

    def close(self) -> None:
        """Close every pooled connection. The store must not be used afterwards."""
        self._engine.dispose()

    def __enter__(self) -> "BalanceStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def engines(self) -> tuple[Engine, Engine]:
        """(engine, write engine) for the store's sibling facades (`bot.store.truth`)."""
        return self._engine, self._writer

    def ping(self) -> None:
        """Run a trivial query (health checks); raises what the database raises."""
        with self._engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    @property
    def dialect(self) -> str:
        """"sqlite" or "postgresql"."""
        return self._engine.dialect.name

    # --- snapshots ------------------------------------------------------------------------------

    def add_snapshots(self, items: Sequence[SnapshotIn]) -> list[int]:
        """Write `items` (with their per-asset detail) in ONE transaction; return their ids in order.

        All or nothing; an account seen for the first time is registered in the same transaction.
        """
        items = list(items)
        for item in items:
            if not isinstance(item, SnapshotIn):
                raise ValueError(f"add_snapshots takes SnapshotIn values, got {type(item).__name__}")
        if not items:
            return []
        with self._writer.begin() as connection:
            return snapshots.insert_snapshots(connection, items, _now())

    def last_snapshots(self) -> dict[str, tuple[datetime, Decimal]]:
        """account_id -> (captured_at, balance) of its newest snapshot, for every account."""
        with self._engine.begin() as connection:
            return snapshots.last(connection)

    def balances_since(self, start: datetime) -> dict[str, list[tuple[datetime, Decimal]]]:
        """account_id -> [(captured_at, balance)] oldest first: the account's last snapshot before
        `start` (what it held when the window opened), then all its snapshots from `start` on.
        One query for every account (the alert rules' drop window, loaded at start)."""
        check_aware("start", start)
        with self._engine.begin() as connection:
            return snapshots.balances_since(connection, start)

    def latest_snapshots(self, account_ids: Iterable[str] | None = None) -> list[Snapshot]:
        """The newest snapshot of each account (all, or those of `account_ids` that have one),
        with its change versus the account's previous snapshot; ordered by account_id."""
        ids = None if account_ids is None else _check_ids(account_ids)
        with self._engine.begin() as connection:
            return snapshots.latest(connection, ids)

    def snapshot_history(self, account_id: str, start: datetime, end: datetime,
                         source: str | None = None) -> list[Snapshot]:
        """Snapshots of `account_id` captured in [start, end] (inclusive), oldest first.

        With `source`, only that source's snapshots, and each change (the first one's included,
        against the last snapshot before `start`) is versus the previous snapshot of that source.
        """
        _check_account_query(account_id, source)
        _check_range(start, end, check_aware)
        with self._engine.begin() as connection:
            return timeline.history(connection, account_id, start, end, source)

    def recent_snapshots(self, account_id: str, limit: int, source: str | None = None) -> list[Snapshot]:
        """The `limit` (1..100) newest snapshots of `account_id` (of `source`, if given), newest first."""
        _check_account_query(account_id, source)
        _check_limit(limit, RECENT_LIMIT_MAX)
        with self._engine.begin() as connection:
            return timeline.recent(connection, account_id, limit, source)

    def snapshot_history_columns(self, account_id: str, start: datetime, end: datetime,
                                 source: str | None = None) -> timeline.SnapshotColumns:
        """`snapshot_history` as parallel columns with each snapshot's cash (`snapshot_cash`),
        for the JSON API: no `Snapshot` objects, one statement (see `bot.store.timeline`)."""
        _check_account_query(account_id, source)
        _check_range(start, end, check_aware)
        with self._engine.begin() as connection:
            return timeline.history_columns(connection, account_id, start, end, source)

    def recent_snapshot_columns(self, account_id: str, limit: int,
                                source: str | None = None) -> timeline.SnapshotColumns:
        """`recent_snapshots` as columns with cash, oldest first (the newest is the last)."""
        _check_account_query(account_id, source)
        _check_limit(limit, RECENT_LIMIT_MAX)
        with self._engine.begin() as connection:
            return timeline.recent_columns(connection, account_id, limit, source)

    def snapshot_assets(self, snapshot_id: int) -> tuple[AssetRow, ...]:
        """The per-asset detail of a snapshot, by asset name; () if none or no such snapshot."""
        with self._engine.begin() as connection:
            return snapshots.assets_of(connection, snapshot_id)

    def snapshot_cash(self, snapshot_ids: Iterable[int]) -> dict[int, Decimal]:
        """Snapshot id -> the value of its cash: its holding of its own currency (the base
        currency), 0 when it holds none. Snapshots without per-asset detail are left out (their
        split is unknown), as are unknown ids."""
        ids = list(snapshot_ids)
        if any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
            raise ValueError("snapshot ids must be integers")
        with self._engine.begin() as connection:
            return snapshots.cash(connection, ids)

    def net_worth_by_currency(self, account_ids: Iterable[str]) -> dict[str, Decimal]:
        """Holdings of the newest snapshot of each of `account_ids`, summed per asset, unconverted.

        A snapshot without per-asset detail contributes its balance under its currency; accounts
        without any snapshot contribute nothing. Sorted by asset.
        """
        ids = _check_ids(account_ids)
        with self._engine.begin() as connection:
            return snapshots.net_worth(connection, ids)

    def prune_snapshots(self, older_than: datetime) -> int:
        """Delete intraday snapshots captured before `older_than`; return how many were deleted.

        Each account's newest and previous snapshots are kept whatever their age (they answer
        `latest_snapshots`); daily closes live in other tables and are never pruned.
        """
        check_aware("older_than", older_than)
        with self._writer.begin() as connection:
            return snapshots.prune(connection, older_than)

    # --- daily closes ---------------------------------------------------------------------------

    def upsert_daily(self, user_id: str, day: date, rows: Sequence[DailyRow], state: str = "provisional") -> bool:
        """Atomically replace all rows of (user_id, day) with `rows` and set the day's `state`.

        A day already "final" or "carried" is never changed: returns False. Otherwise True.
        Concurrent calls (threads or processes) for the same day are serialised; the last one
        wins whole, rows never duplicate or mix (see `bot.store.daily`).
        """
        check_name("user_id", user_id)
        check_day("day", day)
        check_choice("state", state, DAY_STATES)
        rows = _check_rows(rows)
        with self._writer.begin() as connection:
            return daily.replace_day(connection, user_id, day, rows, state, _now())

    def replace_days(self, day: date, rows_by_user: Mapping[str, Sequence[DailyRow]],
                     state: str = "provisional") -> set[str]:
        """`upsert_daily` for many users of one day in ONE transaction, set-based (the history
        writer's round: a few statements whatever the number of users). Returns the users whose
        day was written; a day already closed is left alone (not returned)."""
        check_day("day", day)
        check_choice("state", state, DAY_STATES)
        checked = {check_name("user_id", user): _check_rows(rows) for user, rows in rows_by_user.items()}
        if not checked:
            return set()
        with self._writer.begin() as connection:
            return daily.replace_days(connection, day, checked, state, _now())

    def add_history(self, items: Sequence[SnapshotIn], day: date,
                    rows_by_user: Mapping[str, Sequence[DailyRow]]) -> tuple[list[int], set[str]]:
        """`add_snapshots` and `replace_days` (provisional) in ONE transaction, all or nothing:
        one batch of the history writer. Returns (snapshot ids, users whose day was written)."""
        items = list(items)
        for item in items:
            if not isinstance(item, SnapshotIn):
                raise ValueError(f"add_history takes SnapshotIn values, got {type(item).__name__}")
        check_day("day", day)
        checked = {check_name("user_id", user): _check_rows(rows) for user, rows in rows_by_user.items()}
        if not items and not checked:
            return [], set()
        now = _now()
        with self._writer.begin() as connection:
            ids = snapshots.insert_snapshots(connection, items, now)
            return ids, daily.replace_days(connection, day, checked, "provisional", now)

    def finalize_days(self, user_ids: Iterable[str], day: date, carried: bool = False) -> int:
        """`finalize_day` for every user of `user_ids` in one statement; returns how many days it
        closed (those provisional; the others were closed already or never written)."""
        ids = _check_ids(user_ids)
        check_day("day", day)
        with self._writer.begin() as connection:
            return daily.close_days(connection, ids, day, "carried" if carried else "final", _now())

    def finalize_open_days(self, before: date) -> int:
        """Close as "carried" every provisional day earlier than `before` (missed midnights), in
        one statement; returns how many."""
        check_day("before", before)
        with self._writer.begin() as connection:
            return daily.close_open_days(connection, before, "carried", _now())

    def finalize_day(self, user_id: str, day: date, carried: bool = False) -> bool:
        """Close a provisional day: state "final" (or "carried" when finalised after a missed
        midnight from its last provisional rows). Idempotent: True only for the call that closed
        it; False if the day was already closed or was never written."""
        check_name("user_id", user_id)
        check_day("day", day)
        with self._writer.begin() as connection:
            return daily.close_day(connection, user_id, day, "carried" if carried else "final", _now())

    def fill_missing_days(self, before: date) -> int:
        """Write every day before `before` that has no close while earlier ones do (no process ran
        that day) as "carried" from the user's last earlier day (`bot.store.carry`); returns how many."""
        check_day("before", before)
        with self._writer.begin() as connection:
            return carry.fill_gaps(connection, before, _now())

    def open_days(self, before: date) -> list[tuple[str, date]]:
        """(user_id, day) of every provisional day earlier than `before`, oldest first."""
        check_day("before", before)
        with self._engine.begin() as connection:
            return daily.open_days(connection, before)

    def daily_closes(self, user_id: str, start: date, end: date) -> list[DailyClose]:
        """The user's closes for days in [start, end] (inclusive), oldest first; rows by account, asset."""
        check_name("user_id", user_id)
        _check_range(start, end, check_day)
        with self._engine.begin() as connection:
            return daily.closes(connection, user_id, start, end)

    # --- journal --------------------------------------------------------------------------------

    def add_trade(self, trade: TradeIn) -> int:
        if not isinstance(trade, TradeIn):
            raise ValueError(f"add_trade takes a TradeIn, got {type(trade).__name__}")
        with self._writer.begin() as connection:
            return journal.add_trade(connection, trade)

    def trades(self, user_id: str, limit: int = 20) -> list[Trade]:
        """The user's `limit` (1..1000) most recent trades, newest first."""
        check_name("user_id", user_id)
        _check_limit(limit, JOURNAL_LIMIT_MAX)
        with self._engine.begin() as connection:
            return journal.recent_trades(connection, user_id, limit)

    def latest_trade_id(self) -> int | None:
        """The id of the newest journaled trade (None for an empty journal): the journal is
        append-only, so this changes exactly when a trade is added (by any process)."""
        with self._engine.begin() as connection:
            return journal.latest_trade_id(connection)

    def trade_counts(self, user_ids: Iterable[str] | None = None) -> dict[str, int]:
        """user_id -> number of journaled trades (of `user_ids`, or of everyone); users without
        trades are absent."""
        ids = None if user_ids is None else _check_ids(user_ids)
        with self._engine.begin() as connection:
            return journal.trade_counts(connection, ids)

    def closed_trades(self, user_ids: Iterable[str] | None = None) -> list[tuple[str, Decimal, datetime]]:
        """(user_id, pnl, executed_at) of every trade whose P&L is known (a closed trade), in no
        particular order; sum them in Python (`bot.core.money.MONEY`)."""
        ids = None if user_ids is None else _check_ids(user_ids)
        with self._engine.begin() as connection:
            return journal.closed_trades(connection, ids)

    def recent_trades_by_user(self, user_ids: Iterable[str] | None = None, limit: int = 5) -> dict[str, list[Trade]]:
        """user_id -> its `limit` (1..1000) most recent trades, newest first, in one query."""
        ids = None if user_ids is None else _check_ids(user_ids)
        _check_limit(limit, JOURNAL_LIMIT_MAX)
        with self._engine.begin() as connection:
            return journal.recent_trades_by_user(connection, ids, limit)

    def add_alert(self, alert: AlertIn) -> int:
        if not isinstance(alert, AlertIn):
            raise ValueError(f"add_alert takes an AlertIn, got {type(alert).__name__}")
        with self._writer.begin() as connection:
            return journal.add_alert(connection, alert)

    def open_alerts(self) -> list[tuple[Alert, datetime]]:
        """Alerts still open: for each (type, user_id, broker) whose newest row is "firing", that
        row and when its episode began (first "firing" row since the last other row)."""
        with self._engine.begin() as connection:
            return journal.open_alerts(connection)

    def recent_alerts(self, limit: int = 50) -> list[Alert]:
        """The `limit` (1..1000) most recent alerts of every user, newest first."""
        _check_limit(limit, JOURNAL_LIMIT_MAX)
        with self._engine.begin() as connection:
            return journal.recent_alerts(connection, limit)

    # --- browser sessions -----------------------------------------------------------------------

    def revoke_session(self, session_id: str, lifetime: timedelta) -> None:
        """Record ``session_id`` as ended now, for every process on this database (see
        `bot.store.sessions`); revocations older than ``lifetime`` (the session lifetime: their
        cookies have expired) are forgotten in the same transaction."""
        check_name("session_id", session_id, SESSION_ID_MAX)
        if not isinstance(lifetime, timedelta) or lifetime <= timedelta(0):
            raise ValueError(f"lifetime must be a positive timedelta, got {lifetime!r}")
        now = _now()
        try:
            forget_before = now - lifetime
        except OverflowError:
            forget_before = datetime.min.replace(tzinfo=timezone.utc)
        with self._writer.begin() as connection:
            sessions.revoke(connection, session_id, now, forget_before)

    def session_revoked(self, session_id: str) -> bool:
        """Whether ``session_id`` was revoked (within the lifetime given when it was)."""
        check_name("session_id", session_id, SESSION_ID_MAX)
        with self._engine.begin() as connection:
            return sessions.is_revoked(connection, session_id)
