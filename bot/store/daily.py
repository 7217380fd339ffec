"""Daily closes, as functions of an open write/read connection (the caller owns the transaction).

A day of a user is one `daily_days` row (its state) plus its `daily_closes` rows (unique on user,
day, account, asset). Replacing a day is serialised per (user, day): on PostgreSQL by the row
lock of ``SELECT ... FOR UPDATE`` on the `daily_days` row (created first with
``INSERT ... ON CONFLICT DO NOTHING`` so that there is always a row to lock); on SQLite by the
``BEGIN IMMEDIATE`` of the write transaction. A second writer therefore waits, then sees the
first one's rows and replaces them whole: never a mix of two writes, never a duplicate.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from typing import Sequence

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.dialects import postgresql

from bot.store.records import DailyClose, DailyRow
from bot.store.schema import daily_closes, daily_days

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
