"""Days during which no process ran: carried closes that fill the gap in the daily series.

A user's daily series has a row per day from the first close on. When no process ran on some
days, those days have no row at all; `fill_gaps` writes each of them as ``carried``, with the
rows of the user's last earlier day and every account marked ``stale`` (a value not observed
that day). Runs in the caller's write transaction (the closer's, see `bot.history.recorder`).
At most `MAX_DAYS` days before ``before`` are filled per user.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Connection, func, select

from bot.store.schema import daily_closes, daily_days

MAX_DAYS = 366
_COPIED = ("account_id", "asset", "amount", "price", "value", "base_currency")


def fill_gaps(connection: Connection, before: date, now: datetime) -> int:
    """Write the missing days before ``before`` as carried (see the module docstring); returns how many."""
    lasts = connection.execute(select(daily_days.c.user_id, func.max(daily_days.c.day))
                               .where(daily_days.c.day < before).group_by(daily_days.c.user_id)).all()
    written = 0
    for user_id, last in lasts:
        first = max(last + timedelta(days=1), before - timedelta(days=MAX_DAYS))
        if first >= before:
            continue
        rows = connection.execute(select(*(daily_closes.c[name] for name in _COPIED))
                                  .where(daily_closes.c.user_id == user_id, daily_closes.c.day == last)).all()
        days = [first + timedelta(days=n) for n in range((before - first).days)]
        connection.execute(daily_days.insert(), [{"user_id": user_id, "day": day, "state": "carried",
                                                  "updated_at": now} for day in days])
        if rows:
            connection.execute(daily_closes.insert(), [
                {"user_id": user_id, "day": day, **dict(zip(_COPIED, row)), "account_status": "stale"}
                for day in days for row in rows])
        written += len(days)
    return written
