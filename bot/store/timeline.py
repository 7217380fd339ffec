"""An account's snapshots over time (history in a range, most recent N), with change figures.

This is the store's hot read: a 90-day history is 8,640 snapshots, and at that size the cost is
Python per row, not the database (which reads them contiguously from the covering index
``ix_snapshots_account_time``). So the rows are fetched with one plain SQL statement on the
transaction's own DBAPI cursor — no per-value type processing, no SQLAlchemy row objects;
PostgreSQL in psycopg's binary format with the balance sent as text — and turned into
`Snapshot` values column by column (`_chain`). On the benchmark machine this took a 90-day
history from ~35 ms (SQLAlchemy Core with the column types) to ~25 ms with one flat loop per row,
then to ~16 ms (~7 ms the driver building rows, ~9 ms `_chain`, of which ~5 ms is setting the
snapshots' slots).

Order is ``(captured_at, id)``. Each snapshot's change is versus the one before it under the same
source filter; for the first row of a range, the last such snapshot before the range.
"""
from __future__ import annotations

from collections import deque
from datetime import datetime
from decimal import Decimal, localcontext
from itertools import repeat
from operator import sub

from sqlalchemy import Connection

from bot.core.money import MONEY
from bot.store.records import SNAPSHOT_SLOTS, Snapshot
from bot.store.types import UTC, sqlite_timestamp


def history(connection: Connection, account_id: str, start: datetime, end: datetime,
            source: str | None) -> list[Snapshot]:
    before = _rows(connection, account_id, source, before=start, newest_first=True, limit=1)
    rows = _rows(connection, account_id, source, start=start, end=end)
    return _chain(connection, account_id, rows, (Decimal(before[0][1]), before[0][2]) if before else None)


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


def _rows(connection: Connection, account_id: str, source: str | None, *, start: datetime | None = None,
          end: datetime | None = None, before: datetime | None = None, newest_first: bool = False,
          limit: int | None = None) -> list[tuple]:
    """Raw (id, balance, currency, source, captured_at, created_at) rows of one account, captured
    in [start, end] or before `before`; values as the driver gives them (balance as text). Only
    fixed fragments go into the SQL text; every value is a bound parameter."""
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
    sql = (f"SELECT id, {'balance::text' if postgres else 'balance'}, currency, source, captured_at, created_at "
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
    before it (the first versus `previous`, a (balance, currency) pair, or None).

    Amounts are subtracted exactly (``-`` under `bot.core.money.MONEY`: 60 digits, exact for any
    real balance); the percentage, a float anyway, is float(exact change) / float(previous
    balance) * 100. Column by column: each conversion is one ``map`` over a column (a C loop, no
    bytecode per row), and the snapshots are built with ``object.__new__`` and their slot
    setters mapped over the columns (see `records.SNAPSHOT_SLOTS`).
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
    prev_balance, prev_currency = previous if previous is not None else (None, None)
    with localcontext(MONEY):
        first = (balances[0] - prev_balance if prev_balance is not None and prev_currency == currencies[0]
                 else None)
        if currencies.count(currencies[0]) == count:  # one currency: every row has a change
            amounts = [first, *map(sub, balances[1:], balances[:-1])]
        else:
            amounts = [first, *(None if c != pc else b - pb for b, pb, c, pc
                                in zip(balances[1:], balances[:-1], currencies[1:], currencies[:-1]))]
    floats = list(map(float, balances))
    before = [None if prev_balance is None else float(prev_balance), *floats[:-1]]
    percents = [None if a is None or not p else float(a) / p * 100 for a, p in zip(amounts, before)]
    out = list(map(_new, repeat(Snapshot, count)))
    for setter, column in zip(SNAPSHOT_SLOTS, (ids, repeat(account_id, count), balances, currencies, sources,
                                               captured, created, amounts, percents)):
        _consume(map(setter, out, column))
    return out


_parse, _new, _consume = datetime.fromisoformat, object.__new__, deque(maxlen=0).extend


def _in_utc(values: tuple[datetime, ...]) -> tuple[datetime, ...] | list[datetime]:
    """`values` (aware datetimes) in UTC; as they are when they already are (the session is UTC)."""
    if all(value.tzinfo is UTC for value in values):
        return values
    return [value.astimezone(UTC) for value in values]
