"""An account's snapshots over time (history in a range, most recent N), with change figures.

This is the store's hot read: a 90-day history is 8,640 snapshots, and at that size the cost is
Python per row, not the database, which reads them contiguously from the covering index
``ix_snapshots_account_time`` (every column a history returns, the stored cash included). So the
rows are fetched with one plain SQL statement on the transaction's own DBAPI cursor — no
per-value type processing, no SQLAlchemy row objects; PostgreSQL in psycopg's binary format with
the amounts sent as text — and turned into `Snapshot` values column by column (`_chain`: one
``map`` per column, the snapshots' slots set the same way). Figures for this machine:
``python -m tests.bench.history --only query``.

Order is ``(captured_at, id)``. Each snapshot's change is versus the one before it under the same
source filter; for the first row of a range, the last such snapshot before the range.

The JSON API does not need `Snapshot` objects at all: `history_columns` and `recent_columns`
return the same rows as `SnapshotColumns`, parallel tuples (one per field, oldest first) with the
instants already as the API's ISO text and each snapshot's cash (``snapshots.cash``, written
with the snapshot: what `bot.store.snapshots.cash` answers), for `web.payloads.series_body` to
format straight into JSON text. A 90-day history is then one range scan of the index, with no
look into ``snapshot_assets``, no `Snapshot` objects and no datetimes: on PostgreSQL the
instants come as fixed-width text from ``to_char``, which measured cheaper than binary
timestamps formatted in Python (building and formatting 17,280 datetimes costs more than the
server's ``to_char``).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from itertools import repeat
from operator import is_, mul, sub, truediv

from sqlalchemy import Connection

from bot.core.money import MONEY
from bot.core.timefmt import iso
from bot.store.records import SNAPSHOT_SLOTS, Snapshot
from bot.store.types import UTC, sqlite_timestamp


def history(connection: Connection, account_id: str, start: datetime, end: datetime,
            source: str | None) -> list[Snapshot]:
    rows = _rows(connection, account_id, source, start=start, end=end)
    return _chain(connection, account_id, rows, _before(connection, account_id, source, start))


def recent(connection: Connection, account_id: str, limit: int, source: str | None) -> list[Snapshot]:
    rows = _rows(connection, account_id, source, newest_first=True, limit=limit + 1)
    rows.reverse()  # oldest first; an extra (oldest) row only provides the first change figure
    previous = None
    if len(rows) > limit:
        first = _chain(connection, account_id, rows[:1], None)[0]
        previous = (first.balance, first.currency)
        rows = rows[1:]
    out = _chain(connection, account_id, rows, previous)
    out.reverse()
    return out


@dataclass(frozen=True, slots=True)
class SnapshotColumns:
    """Snapshots of one account as parallel columns, oldest first, in ``(captured_at, id)``
    order: the values of `Snapshot` (same change rule) plus each one's cash, as
    `bot.store.snapshots.cash` gives it. Instants are ISO-8601 text as `bot.core.timefmt.iso`
    writes them (UTC as ``Z``, microseconds only when not zero). Immutable; shared freely."""

    account_id: str
    ids: tuple[int, ...]
    balances: tuple[Decimal, ...]
    currencies: tuple[str, ...]
    sources: tuple[str, ...]
    captured_at: tuple[str, ...]
    created_at: tuple[str, ...]
    change_amounts: tuple[Decimal | None, ...]
    change_percents: tuple[float | None, ...]
    cash: tuple[Decimal | None, ...]  # the value of its holding of its own currency; None without per-asset detail

    def __len__(self) -> int:
        return len(self.ids)


def history_columns(connection: Connection, account_id: str, start: datetime, end: datetime,
                    source: str | None) -> SnapshotColumns:
    """`history` as `SnapshotColumns` (with cash), one statement for the rows and their cash."""
    rows = _rows(connection, account_id, source, start=start, end=end, cash=True)
    return _columns(connection, account_id, rows, _before(connection, account_id, source, start))


def recent_columns(connection: Connection, account_id: str, limit: int, source: str | None) -> SnapshotColumns:
    """`recent` as `SnapshotColumns` (with cash), still oldest first: the newest is the last."""
    rows = _rows(connection, account_id, source, newest_first=True, limit=limit + 1, cash=True)
    rows.reverse()
    previous = None
    if len(rows) > limit:
        previous = (Decimal(rows[0][1]), rows[0][2])
        rows = rows[1:]
    return _columns(connection, account_id, rows, previous)


def _before(connection: Connection, account_id: str, source: str | None,
            start: datetime) -> tuple[Decimal, str] | None:
    """(balance, currency) of the last snapshot (under the filter) captured before `start`."""
    before = _rows(connection, account_id, source, before=start, newest_first=True, limit=1)
    return (Decimal(before[0][1]), before[0][2]) if before else None


def _rows(connection: Connection, account_id: str, source: str | None, *, start: datetime | None = None,
          end: datetime | None = None, before: datetime | None = None, newest_first: bool = False,
          limit: int | None = None, cash: bool = False) -> list[tuple]:
    """Raw (id, balance, currency, source, captured_at, created_at) rows of one account, captured
    in [start, end] or before `before`; values as the driver gives them (balance as text). With
    `cash`, one more column: the snapshot's stored cash (``snapshots.cash``, text or None), and on
    PostgreSQL the instants as SQLite's fixed-width text (``to_char`` in UTC, so that
    `_iso_texts` formats both alike). Every column comes from the covering index
    ``ix_snapshots_account_time``: one range scan. Only fixed fragments go into the SQL text;
    every value is a bound parameter."""
    postgres = connection.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    instant = (lambda value: value) if postgres else sqlite_timestamp
    conditions, params = [f"account_id = {mark}"], [account_id]
    if source is not None:
        conditions.append(f"source = {mark}")
        params.append(source)
    if start is not None:
        conditions.append(f"captured_at >= {mark}")
        params.append(instant(start))
    if end is not None:
        conditions.append(f"captured_at <= {mark}")
        params.append(instant(end))
    if before is not None:
        conditions.append(f"captured_at < {mark}")
        params.append(instant(before))
    order = "captured_at DESC, id DESC" if newest_first else "captured_at, id"
    extra = (", cash::text" if postgres else ", cash") if cash else ""
    instants = "captured_at, created_at"
    if cash and postgres:
        instants = ", ".join(f"to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00:00'"
                             for c in ("captured_at", "created_at"))
    sql = (f"SELECT id, {'balance::text' if postgres else 'balance'}, currency, source, {instants}{extra} "
           f"FROM snapshots WHERE {' AND '.join(conditions)} ORDER BY {order}")
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    # The DBAPI connection of this transaction: the same transaction and snapshot as `connection`.
    cursor = connection.connection.cursor(binary=True) if postgres else connection.connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _chain(connection: Connection, account_id: str, rows: list[tuple],
           previous: tuple[Decimal, str] | None) -> list[Snapshot]:
    """`Snapshot` values from raw `_rows` (oldest first), each with its change versus the one
    before it (the first versus `previous`, a (balance, currency) pair, or None; see `_changes`).

    Column by column: each conversion is one ``map`` over a column (a C loop, no bytecode per
    row), and the snapshots are built with ``object.__new__`` and their slot setters mapped over
    the columns (see `records.SNAPSHOT_SLOTS`).
    """
    if not rows:
        return []
    count = len(rows)
    ids, texts, currencies, sources, captured, created = zip(*rows)
    balances = list(map(Decimal, texts))
    if connection.dialect.name == "sqlite":  # ISO text there (see types.py)
        captured, created = list(map(_parse, captured)), list(map(_parse, created))
    else:
        captured, created = _in_utc(captured), _in_utc(created)
    amounts, percents = _changes(balances, currencies, previous)
    out = list(map(_new, repeat(Snapshot, count)))
    for setter, column in zip(SNAPSHOT_SLOTS, (ids, repeat(account_id, count), balances, currencies, sources,
                                               captured, created, amounts, percents)):
        _consume(map(setter, out, column))
    return out


def _changes(balances: list[Decimal], currencies: tuple[str, ...],
             previous: tuple[Decimal, str] | None) -> tuple[list, list]:
    """(change amounts, change percents) of `balances` (oldest first), each versus the one
    before it, the first versus `previous`: None across currencies or without a previous one;
    the percent also None when the previous balance is 0.

    Amounts are subtracted exactly (``-`` under `bot.core.money.MONEY`: 60 digits, exact for any
    real balance); the percentage, a float anyway, is float(exact change) / float(previous
    balance) * 100."""
    count = len(balances)
    prev_balance, prev_currency = previous if previous is not None else (None, None)
    with localcontext(MONEY):
        first = (balances[0] - prev_balance if prev_balance is not None and prev_currency == currencies[0]
                 else None)
        one_currency = currencies.count(currencies[0]) == count
        if one_currency:  # every row after the first has a change
            amounts = [first, *map(sub, balances[1:], balances[:-1])]
        else:
            amounts = [first, *(None if c != pc else b - pb for b, pb, c, pc
                                in zip(balances[1:], balances[:-1], currencies[1:], currencies[:-1]))]
    floats = list(map(float, balances))
    first_before = None if prev_balance is None else float(prev_balance)
    first_percent = None if first is None or not first_before else float(first) / first_before * 100
    if one_currency and 0.0 not in floats[:-1]:  # no None and no zero divisor after the first: C loops
        percents = [first_percent, *map(mul, map(truediv, map(float, amounts[1:]), floats[:-1]), repeat(100))]
    else:
        percents = [first_percent, *(None if a is None or not p else float(a) / p * 100
                                     for a, p in zip(amounts[1:], floats[:-1]))]
    return amounts, percents


def _columns(connection: Connection, account_id: str, rows: list[tuple],
             previous: tuple[Decimal, str] | None) -> SnapshotColumns:
    """`SnapshotColumns` from raw `_rows` with cash (oldest first)."""
    if not rows:
        return SnapshotColumns(account_id, (), (), (), (), (), (), (), (), ())
    ids, texts, currencies, sources, captured, created, values = zip(*rows)
    balances = tuple(map(Decimal, texts))
    captured, created = _iso_texts(captured), _iso_texts(created)  # text on both (see `_rows`)
    amounts, percents = _changes(balances, currencies, previous)
    return SnapshotColumns(account_id, ids, balances, currencies, sources, captured, created, tuple(amounts),
                           tuple(percents), _amounts(values))


def _amounts(values: tuple[str | None, ...]) -> tuple[Decimal | None, ...]:
    """Stored amounts (decimal text, or None) as `Decimal` values, None kept: one ``map`` when
    there is no None (the usual case), the values as they are when all are None."""
    if None not in values:
        return tuple(map(Decimal, values))
    if all(map(is_, values, repeat(None))):
        return values
    return tuple(None if value is None else Decimal(value) for value in values)


def _iso_texts(values: tuple[str, ...]) -> tuple[str, ...]:
    """SQLite's stored instants (``YYYY-MM-DD HH:MM:SS.ffffff+00:00``, `types.sqlite_timestamp`:
    32 characters, UTC) as `iso` writes them: the column joined into one string, three
    replacements over it, split again (no per-value conversions). A column with any value not of
    that length and offset goes through `datetime` instead."""
    if set(map(len, values)) == {32} and all(map(str.endswith, values, repeat("+00:00"))):
        out = "\n".join(values).replace(" ", "T").replace(".000000+00:00", "Z").replace("+00:00", "Z").split("\n")
        if len(out) == len(values):
            return tuple(out)
    return tuple(iso(_parse(value).astimezone(UTC)) for value in values)


_parse, _new, _consume = datetime.fromisoformat, object.__new__, deque(maxlen=0).extend


def _in_utc(values: tuple[datetime, ...]) -> tuple[datetime, ...] | list[datetime]:
    """`values` (aware datetimes) in UTC; as they are when they already are (the session is UTC)."""
    if all(value.tzinfo is UTC for value in values):
        return values
    return [value.astimezone(UTC) for value in values]
