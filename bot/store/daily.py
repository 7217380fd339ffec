"""Daily closes, as functions of an open write/read connection (the caller owns the transaction).

A day of a user is one `daily_days` row (its state) plus its `daily_closes` rows (unique on user,
day, account, asset). Replacing a day is serialised per (user, day): on PostgreSQL by the row
lock of ``SELECT ... FOR UPDATE`` on the `daily_days` row (created first with
``INSERT ... ON CONFLICT DO NOTHING`` so that there is always a row to lock); on SQLite by the
``BEGIN IMMEDIATE`` of the write transaction. A second writer therefore waits, then sees the
first one's rows and replaces them whole: never a mix of two writes, never a duplicate.

`replace_days` and `close_days` do the same for many users of one day in a few set-based
statements (the history writer's round, the midnight close): on PostgreSQL the `daily_days` rows
are upserted in one ``INSERT ... SELECT unnest(...) ON CONFLICT DO UPDATE ... WHERE provisional
RETURNING`` (rows locked in user order, so two such writers never deadlock; a closed day is not
returned and is left alone), the old rows deleted with one ``= ANY`` and the new ones COPied; on
SQLite, under the write lock, ``executemany`` of plain statements (`bot.store.bulk`).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Mapping, Sequence

from sqlalchemy import Connection, delete, select, text, update
from sqlalchemy.dialects import postgresql

from bot.store import bulk
from bot.store.records import DailyClose, DailyRow
from bot.store.schema import daily_closes, daily_days
from bot.store.types import sqlite_timestamp

CLOSED = ("final", "carried")
_ROW_COLUMNS = ("account_id", "asset", "amount", "price", "value", "base_currency", "account_status")


def _day(user_id: str, day: date):
    return (daily_days.c.user_id == user_id, daily_days.c.day == day)


def replace_day(connection: Connection, user_id: str, day: date, rows: Sequence[DailyRow], state: str,
                now: datetime) -> bool:
    """Replace all rows of (user_id, day) and set its state, unless the day is already closed."""
    if connection.dialect.name == "postgresql":
        connection.execute(postgresql.insert(daily_days)
                           .values(user_id=user_id, day=day, state="provisional", updated_at=now)
                           .on_conflict_do_nothing())
        current = connection.execute(select(daily_days.c.state).where(*_day(user_id, day)).with_for_update()).scalar_one()
    else:
        current = connection.execute(select(daily_days.c.state).where(*_day(user_id, day))).scalar_one_or_none()
    if current in CLOSED:
        return False
    if current is None:
        connection.execute(daily_days.insert().values(user_id=user_id, day=day, state=state, updated_at=now))
    else:
        connection.execute(update(daily_days).where(*_day(user_id, day)).values(state=state, updated_at=now))
        connection.execute(delete(daily_closes).where(daily_closes.c.user_id == user_id, daily_closes.c.day == day))
    if rows:
        connection.execute(daily_closes.insert(), [
            {"user_id": user_id, "day": day, **{name: getattr(row, name) for name in _ROW_COLUMNS}} for row in rows])
    return True


def replace_days(connection: Connection, day: date, rows_by_user: Mapping[str, Sequence[DailyRow]], state: str,
                 now: datetime) -> set[str]:
    """`replace_day` for every user of `rows_by_user` on `day`, set-based (see the module
    docstring); returns the users whose day was written (the others were already closed)."""
    users = sorted(rows_by_user)
    if not users:
        return set()
    if connection.dialect.name == "postgresql":
        written = set(connection.execute(text(
            "INSERT INTO daily_days (user_id, day, state, updated_at) "
            "SELECT u, :day, :state, :now FROM unnest(CAST(:users AS text[])) AS u ORDER BY u "
            "ON CONFLICT (user_id, day) DO UPDATE SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at "
            "WHERE daily_days.state = 'provisional' RETURNING user_id"),
            {"day": day, "state": state, "now": now, "users": users}).scalars())
        if written:
            connection.execute(text("DELETE FROM daily_closes WHERE day = :day AND user_id = ANY(CAST(:users AS text[]))"),
                               {"day": day, "users": sorted(written)})
        stored_day = day
    else:  # the caller's BEGIN IMMEDIATE holds the write lock: what this reads stays true until commit
        stored_day = day.isoformat()  # SQLAlchemy's Date storage format on SQLite
        closed = {user for (user,) in connection.exec_driver_sql(
            "SELECT user_id FROM daily_days WHERE day = ? AND state != 'provisional'", (stored_day,))}
        written = {user for user in users if user not in closed}
        keys = [(user, stored_day) for user in users if user in written]
        if keys:
            connection.exec_driver_sql(
                "INSERT INTO daily_days (user_id, day, state, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (user_id, day) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                [(user, d, state, sqlite_timestamp(now)) for user, d in keys])
            connection.exec_driver_sql("DELETE FROM daily_closes WHERE user_id = ? AND day = ?", keys)
    bulk.insert(connection, daily_closes, ("user_id", "day", *_ROW_COLUMNS), [
        (user, stored_day, row.account_id, row.asset, row.amount, row.price, row.value, row.base_currency,
         row.account_status) for user in users if user in written for row in rows_by_user[user]])
    return written


def close_days(connection: Connection, user_ids: Sequence[str], day: date, state: str, now: datetime) -> int:
    """`close_day` for every user of `user_ids` on `day` in one statement; returns how many closed."""
    users = sorted(set(user_ids))
    if not users:
        return 0
    if connection.dialect.name == "postgresql":
        return connection.execute(text(
            "UPDATE daily_days SET state = :state, updated_at = :now WHERE day = :day AND state = 'provisional' "
            "AND user_id = ANY(CAST(:users AS text[]))"),
            {"state": state, "now": now, "day": day, "users": users}).rowcount
    stamp, stored_day = sqlite_timestamp(now), day.isoformat()
    return connection.exec_driver_sql(
        "UPDATE daily_days SET state = ?, updated_at = ? WHERE user_id = ? AND day = ? AND state = 'provisional'",
        [(state, stamp, user, stored_day) for user in users]).rowcount


def close_open_days(connection: Connection, before: date, state: str, now: datetime) -> int:
    """Every provisional day earlier than `before` -> `state`, in one statement; returns how many."""
    return connection.execute(
        update(daily_days).where(daily_days.c.state == "provisional", daily_days.c.day < before)
        .values(state=state, updated_at=now)).rowcount


def close_day(connection: Connection, user_id: str, day: date, state: str, now: datetime) -> bool:
    """provisional -> `state` ("final" or "carried"); False if the day is missing or already closed."""
    result = connection.execute(
        update(daily_days).where(*_day(user_id, day), daily_days.c.state == "provisional")
        .values(state=state, updated_at=now))
    return result.rowcount == 1


def open_days(connection: Connection, before: date) -> list[tuple[str, date]]:
    query = (select(daily_days.c.user_id, daily_days.c.day)
             .where(daily_days.c.state == "provisional", daily_days.c.day < before)
             .order_by(daily_days.c.day, daily_days.c.user_id))
    return [(user_id, day) for user_id, day in connection.execute(query)]


def closes(connection: Connection, user_id: str, start: date, end: date) -> list[DailyClose]:
    days = connection.execute(
        select(daily_days.c.day, daily_days.c.state, daily_days.c.updated_at)
        .where(daily_days.c.user_id == user_id, daily_days.c.day >= start, daily_days.c.day <= end)
        .order_by(daily_days.c.day)).all()
    if not days:
        return []
    rows_by_day: dict[date, list[DailyRow]] = defaultdict(list)
    for row in connection.execute(
            select(daily_closes.c.day, *(daily_closes.c[name] for name in _ROW_COLUMNS))
            .where(daily_closes.c.user_id == user_id, daily_closes.c.day >= start, daily_closes.c.day <= end)
            .order_by(daily_closes.c.day, daily_closes.c.account_id, daily_closes.c.asset)):
        rows_by_day[row[0]].append(DailyRow(*row[1:]))
    return [DailyClose(user_id, day, state, tuple(rows_by_day.get(day, ())), updated_at)
            for day, state, updated_at in days]
