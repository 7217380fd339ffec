"""``GET /api/users/history``: the chart data of every user a caller sees, in one body.

The dashboard draws one chart per user from this single response (one request per page, not
one per chart: a page with 40 users used to make 95 requests and rate-limit itself). Shape and
parameters: docs/api.md. Built from the store only (daily closes, recent snapshots), never an
exchange; each call reads the store afresh (no cache: the page asks once per load and then at
most about twice a minute).

Per user:

- ``closes``: the daily closes of the last ``days`` days (calendar days in settings.timezone,
  today's provisional one included), oldest first. ``at`` is the instant the close stands for:
  the end of its day in that zone (the next midnight), or now for a day not over yet, so no
  point ever lies in the future. ``total`` is the sum of the known row values (`DailyClose.total`),
  ``partial`` when some row is unknown or a stale account's carried value.
- ``points``: the user's total at each of its accounts' ``limit`` newest snapshots, oldest
  first: at each snapshot instant, the sum of every account's newest snapshot at or before it,
  from the instant every account that has snapshots has one. Snapshots in another currency than
  the base currency (written before the base currency changed) are left out, and an account
  whose snapshots are all in another currency leaves the user without points (a sum without
  it would not be the user's total).

Money is summed in `bot.core.money.MONEY` and rounded only at the JSON boundary
(`money_number`: 2 places for fiat); unknown is null, never 0.
"""
from __future__ import annotations

import datetime as dt
import heapq
from decimal import Decimal
from zoneinfo import ZoneInfo

from bot.core.money import MONEY, money_number
from bot.core.timefmt import iso_utc
from bot.store import DailyClose

DEFAULT_DAYS = 45
MAX_DAYS = 366
DEFAULT_POINTS = 30


def _iso(value: dt.datetime) -> str:
    return iso_utc(value.timestamp())


def close_instant(day: dt.date, zone: ZoneInfo, now: dt.datetime) -> dt.datetime:
    """The instant a close of ``day`` stands for: the next midnight in ``zone``, at most ``now``."""
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
    return min(end, now)


def close_json(close: DailyClose, base: str, zone: ZoneInfo, now: dt.datetime) -> dict:
    partial = not close.rows or any(r.value is None or r.account_status != "ok" for r in close.rows)
    return {"day": close.day.isoformat(), "at": _iso(close_instant(close.day, zone, now)),
            "total": money_number(close.total, base), "state": close.state, "partial": partial}


def total_points(series: dict[str, list[tuple[dt.datetime, Decimal]]], needed: int, base: str) -> list[dict]:
    """The summed series of ``series`` (account id -> [(captured_at, balance)] oldest first) from
    the instant ``needed`` accounts have a snapshot (see the module docstring). Instants within
    one second give one point."""
    merged = heapq.merge(*([(at, account, balance) for at, balance in points] for account, points in series.items()),
                         key=lambda item: item[0])
    latest: dict[str, Decimal] = {}
    out: list[dict] = []
    last_at = None
    for at, account, balance in merged:
        latest[account] = balance
        if len(latest) < needed:
            continue
        total = Decimal(0)
        for value in latest.values():
            total = MONEY.add(total, value)
        point = {"at": _iso(at), "total": money_number(total, base)}
        if point["at"] == last_at:  # the same second: one point, the sum after both
            out[-1] = point
        else:
            out.append(point)
        last_at = point["at"]
    return out


def user_history(store, user_id: str, account_ids: list[str], start: dt.date, end: dt.date, limit: int,
                 base: str, zone: ZoneInfo, now: dt.datetime) -> dict:
    closes = [close_json(c, base, zone, now) for c in store.daily_closes(user_id, start, end)]
    series, needed = {}, 0
    for account_id in account_ids:
        snapshots = store.recent_snapshots(account_id, limit)
        needed += bool(snapshots)
        series[account_id] = [(s.captured_at, s.balance) for s in reversed(snapshots) if s.currency == base]
    return {"closes": closes, "points": total_points(series, needed, base)}


def history_bundle(store, config, user_ids: list[str], days: int, limit: int,
                   now: dt.datetime | None = None) -> dict:
    """The body of ``GET /api/users/history`` for ``user_ids`` (already scoped to the caller)."""
    settings = config.settings
    zone = ZoneInfo(settings.timezone)
    now = dt.datetime.now(dt.timezone.utc) if now is None else now
    end = now.astimezone(zone).date()
    start = end - dt.timedelta(days=days - 1)
    accounts: dict[str, list[str]] = {}
    for account in config.accounts():
        accounts.setdefault(account.owner, []).append(account.account_id)
    base = settings.base_currency
    users = {user_id: user_history(store, user_id, accounts.get(user_id, []), start, end, limit, base, zone, now)
             for user_id in user_ids}
    return {"timestamp": _iso(now), "base_currency": base, "timezone": settings.timezone,
            "from": start.isoformat(), "to": end.isoformat(), "days": days, "limit": limit, "users": users}
