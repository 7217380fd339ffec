"""Views of the daily closes: the history table, the user-balances JSON and open-platform records.

Only formatting: the daily closes come from the store. Decimals are rendered as strings so no
amount is rounded by a float on the way out.

Open-platform ``account-balance`` mapping: each exchange account of the user (``owner:broker``,
e.g. ``alice:kraken``) is one *connection* (``connection_id``); each asset held in it is one
data line (``account_id`` ``alice:kraken:BTC``, ``account_currency`` BTC, ``account_balance``
the amount of that asset). A ``day`` record holds that day's close; a ``month`` record holds the
month's last daily close.
"""
from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal

from bot.views.report import RULE, THIN, format_money
from bot.store import DailyClose

ORIGIN = "multibalance"


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def user_balances_json(closes: list[DailyClose], base_currency: str) -> list[dict]:
    """The ``/api/user_balances`` shape, oldest day first, with each row's ``state``."""
    result = []
    for close in closes:
        result.append({
            "user": close.user_id,
            "day": close.day.strftime("%Y%m%d"),
            "state": close.state,
            "baseCurrency": base_currency,
            "totalBalance": {"amount": _text(close.total), "currency": base_currency},
            "accountBalances": [{"account": r.account_id, "asset": r.asset, "amount": _text(r.amount),
                                 "value": _text(r.value), "status": r.account_status} for r in close.rows],
        })
    return result


def history_table(user_id: str, closes: list[DailyClose], base_currency: str) -> str:
    lines = [RULE, f"DAILY CLOSES: {user_id}", RULE, f"   {'DAY':<14}{'TOTAL':>18}   STATE", THIN]
    for close in closes:
        marker = {"provisional": "provisional (today, until midnight)", "carried": "carried forward"}.get(close.state, close.state)
        stale = " (includes stale accounts)" if any(r.account_status == "stale" for r in close.rows) else ""
        lines.append(f"   {close.day.isoformat():<14}{format_money(close.total, base_currency):>18}   {marker}{stale}")
    if not closes:
        lines.append("   No daily closes recorded in this range.")
    lines.append(RULE)
    return "\n".join(lines)


def period(date: dt.date, kind: str) -> tuple[dt.date, dt.date]:
    """The days a ``day`` or ``month`` record covers."""
    if kind == "day":
        return date, date
    if kind == "month":
        last = calendar.monthrange(date.year, date.month)[1]
        return date.replace(day=1), date.replace(day=last)
    raise ValueError(f"type must be 'day' or 'month', got {kind!r}")


def account_balance_records(closes: list[DailyClose], kind: str, now: dt.datetime | None = None) -> list[dict]:
    """Open-platform ``account-balance`` records of the last close in ``closes`` (one per connection)."""
    if not closes:
        return []
    close = closes[-1]
    created = (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")
    by_account: dict[str, list] = {}
    for row in close.rows:
        by_account.setdefault(row.account_id, []).append(row)
    records = []
    for account_id, rows in by_account.items():
        records.append({
            "object_creation_date": created,
            "object_type": kind,
            "object_class": "balance",
            "object_category": "account-balance",
            "object_origin": ORIGIN,
            "object_origin_category": "crypto-exchange",
            "object_origin_type": account_id.split(":", 1)[1],
            "balance_date": close.day.isoformat(),
            "user": close.user_id,
            "connection_id": account_id,
            "data": [{"account_id": f"{account_id}:{r.asset}",
                      "account_name": f"{account_id.split(':', 1)[1].upper()} {r.asset}",
                      "account_currency": r.asset,
                      "account_active": True,
                      "account_balance": str(r.amount)} for r in rows],
        })
    return records
