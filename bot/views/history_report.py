"""Views of the daily closes: the history table, the user-balances JSON and open-platform records.

Only formatting: the daily closes come from the store. The JSON shapes follow their source
documents (docs/api.md): where those have numbers, values are `Decimal` here, written as JSON
numbers with exactly their digits by `bot.views.exact_json.dumps` (asset amounts exact; values in
the base currency rounded half-up to its places, 2 for fiat). Unknown is None, never 0.

Open-platform ``account-balance`` mapping: each exchange account of the user (``owner:broker``,
e.g. ``alice:kraken``) is one *connection* (``connection_id``); each asset held in it is one
data line (``account_id`` ``alice:kraken:BTC``, ``account_currency`` BTC, ``account_balance``
the amount of that asset). A ``day`` record holds that day's close; a ``month`` record holds the
month's last daily close. ``balance_date`` is the close's calendar day (in settings.timezone)
written as the document writes dates (``2020-11-02T00:00:00.000Z``).
"""
from __future__ import annotations

import calendar
import datetime as dt
from decimal import Decimal

from bot.core.money import MONEY, format_money, quantize
from bot.store import DailyClose
from bot.views.report import RULE, THIN

ORIGIN = "multibalance"
RECORD_CLASS = "account-balance"  # the document's field table: object_class names the data schema


def money(value: Decimal | None, currency: str) -> Decimal | None:
    """``value`` rounded half-up to ``currency``'s places (`bot.core.money.quantize`)."""
    return None if value is None else quantize(value, currency)


def iso_millis(value: dt.datetime) -> str:
    """``2020-11-02T11:00:02.617Z``: UTC with milliseconds, as the source documents write instants."""
    return value.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def close_id(close: DailyClose) -> str:
    """The key of a user's day: ``<user>-<YYYYMMDD>`` (unique: one close per user and day)."""
    return f"{close.user_id}-{close.day:%Y%m%d}"


def _portfolios(close: DailyClose, base_currency: str) -> list[dict]:
    """One entry per exchange account of the close: the sum of its known row values."""
    values: dict[str, Decimal | None] = {}
    for row in close.rows:
        known = values.get(row.account_id)
        if row.value is not None:
            values[row.account_id] = row.value if known is None else MONEY.add(known, row.value)
        else:
            values.setdefault(row.account_id, None)
    time = iso_millis(close.updated_at)
    return [{"portfolio": account_id, "currency": base_currency, "value": money(value, base_currency),
             "time": time} for account_id, value in values.items()]


def user_balances_json(closes: list[DailyClose], base_currency: str) -> list[dict]:
    """The ``/api/user_balances`` shape of ``closes`` in their order, with each row's ``state``."""
    result = []
    for close in closes:
        result.append({
            "id": close_id(close),
            "user": close.user_id,
            "day": close.day.strftime("%Y%m%d"),
            "state": close.state,
            "baseCurrency": base_currency,
            "totalBalance": {"amount": money(close.total, base_currency), "currency": base_currency},
            "portfolioBalances": _portfolios(close, base_currency),
            "accountBalances": [{"account": r.account_id, "asset": r.asset, "amount": r.amount,
                                 "value": money(r.value, base_currency), "status": r.account_status}
                                for r in close.rows],
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


def account_balance_records(closes: list[DailyClose], kind: str, base_currency: str,
                            now: dt.datetime | None = None) -> list[dict]:
    """Open-platform ``account-balance`` records of the last close in ``closes`` (one per connection)."""
    if not closes:
        return []
    close = closes[-1]
    created = iso_millis(now or dt.datetime.now(dt.timezone.utc))
    by_account: dict[str, list] = {}
    for row in close.rows:
        by_account.setdefault(row.account_id, []).append(row)
    records = []
    for account_id, rows in by_account.items():
        broker = account_id.split(":", 1)[1]
        records.append({
            "object_creation_date": created,
            "object_type": kind,
            "object_class": RECORD_CLASS,
            "object_category": "account-balance",
            "object_origin": ORIGIN,
            "object_origin_category": "crypto-exchange",
            "object_origin_type": broker,
            "balance_date": f"{close.day.isoformat()}T00:00:00.000Z",
            "user": close.user_id,
            "connection_id": account_id,
            "currency": base_currency,
            "data": [{"account_id": f"{account_id}:{r.asset}",
                      "account_name": f"{broker.upper()} {r.asset}",
                      "account_currency": r.asset,
                      "account_active": True,
                      "account_balance": r.amount} for r in rows],
        })
    return records


def export_table(records: list[dict]) -> str:
    """The ``account-balance`` records as a readable table (the CLI's --export without --json)."""
    if not records:
        return "No account-balance records."
    first = records[0]
    lines = [RULE, f"ACCOUNT BALANCES: {first['user']}  {first['object_type']} record of {first['balance_date'][:10]}",
             RULE, f"   {'ACCOUNT':<34}{'CURRENCY':<10}{'BALANCE':>30}", THIN]
    for record in records:
        for line in record["data"]:
            lines.append(f"   {line['account_id']:<34}{line['account_currency']:<10}{str(line['account_balance']):>30}")
    lines.append(RULE)
    return "\n".join(lines)
