"""The balance report: the read model (`bot.views.model`) rendered as the terminal table or as JSON.

`build_report(view)` is the read model of a `StateView`'s current states (it reads nothing
and starts no read: the CLI refreshes first); `render_table` and `report_json` only format.
Totals follow the model's rule: they sum the known values (stale ones included, with their
status on their line); a partial total is marked ``(partial)`` in the table and has
``partial: true`` in JSON; the average says over how many users it is when some total is
unknown.
"""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bot.core.money import format_money, money_number
from bot.core.state import Status
from bot.core.timefmt import format_age, iso_utc
from bot.views.model import AccountLine, OwnerTotal, ReadModel, Summary, build_read_model

RULE = "=" * 80
THIN = "-" * 80
PARTIAL = " (partial)"


def build_report(view, user_id: str | None = None) -> ReadModel:
    """The report of ``view``'s current states; with ``user_id``, that user only (no master).
    KeyError for an unknown or disabled user."""
    return build_read_model(view, user_id=user_id)


# ---------------------------------------------------------------------------- table


def _failure(line: AccountLine) -> str:
    return line.state.error_class or "unknown error"


def account_cell(line: AccountLine, currency: str, now: float) -> str:
    """The value column of one account line, with its status marker when not fresh."""
    state = line.state
    if state is None:
        return "not read yet"
    if state.status is Status.OK:
        text = format_money(state.value, currency)
    elif state.status is Status.STALE:
        text = f"{format_money(state.value, currency)}  stale {format_age(state.age_seconds(now))} ({_failure(line)})"
    elif state.status is Status.NOT_CONFIGURED:
        text = f"not configured ({state.error})"
    else:
        text = f"unavailable ({_failure(line)})"
    if state.unpriced:
        text += f"  + unpriced: {', '.join(state.unpriced)}"
    return text


def total_cell(owner: OwnerTotal, currency: str) -> str:
    """A total: ``$1,000.00``, ``$1,000.00 (partial)`` when something is missing from it, or ``unknown``."""
    text = format_money(owner.total, currency)
    return text + PARTIAL if owner.partial and owner.total is not None else text


def summary_cells(summary: Summary, currency: str) -> tuple[str, str]:
    """(capital, average) of the summary, marked when partial or averaged over fewer users."""
    capital = format_money(summary.total_user_capital, currency)
    average = format_money(summary.average_per_user, currency)
    if summary.total_user_capital is not None and summary.partial:
        capital += PARTIAL
    if summary.average_per_user is not None:
        marks = ["partial"] if summary.partial else []
        if summary.users_counted < summary.user_count:
            marks.append(f"over {summary.users_counted} of {summary.user_count} users")
        if marks:
            average += f" ({'; '.join(marks)})"
    return capital, average


def render_table(report: ReadModel) -> str:
    cur, now = report.base_currency, report.generated_at
    stamp = dt.datetime.fromtimestamp(now, ZoneInfo(report.timezone)).strftime("%Y-%m-%d %H:%M:%S")
    lines = [RULE, f"{'USER ACCOUNT BALANCES':<56}Generated: {stamp}", RULE]
    master = report.master
    if master is not None:
        lines += ["MASTER ACCOUNT", THIN]
        lines += [f"   {a.broker.upper():<21}{account_cell(a, cur, now)}" for a in master.accounts]
        lines += [THIN, f"   {'TOTAL':<21}{total_cell(master, cur)}", ""]
    lines += ["USER ACCOUNTS", THIN]
    if not report.users:
        lines += ["   No user brokers configured.",
                  "   Add one as users/<user_id>.json in the configuration directory (see README.md)."]
    for index, user in enumerate(report.users):
        if index:
            lines.append("")
        lines.append(f"   User: {user.owner}")
        lines += [f"      {a.broker.upper():<17}{account_cell(a, cur, now)}" for a in user.accounts]
        if not user.accounts:
            lines.append("      (no enabled brokers)")
        lines.append(f"      {'SUBTOTAL':<17}{total_cell(user, cur)}")
    capital, average = summary_cells(report.summary, cur)
    lines += [RULE, "SUMMARY",
              f"   {'Total Users:':<23}{report.summary.user_count}",
              f"   {'Total User Capital:':<23}{capital}",
              f"   {'Average per User:':<23}{average}",
              RULE]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- JSON


def account_json(line: AccountLine, currency: str, now: float) -> dict:
    state = line.state
    if state is None:
        return {"owner": line.owner, "broker": line.broker, "exchange": line.exchange, "status": line.status,
                "value": None, "fetched_at": None, "age_seconds": None, "error": None, "error_class": None,
                "assets": {}, "unpriced": []}
    age = state.age_seconds(now)
    return {
        "owner": state.owner,
        "broker": state.broker,
        "exchange": state.exchange,
        "status": state.status.value,
        "value": money_number(state.value, currency),
        "fetched_at": iso_utc(state.fetched_at),
        "age_seconds": None if age is None else round(age, 1),
        "error": state.error,
        "error_class": state.error_class,
        "assets": {asset: {"amount": float(h.amount),
                           "price": None if h.price is None else float(h.price),
                           "value": money_number(h.value, currency)}
                   for asset, h in state.holdings.items()},
        "unpriced": list(state.unpriced),
    }


def report_json(report: ReadModel) -> dict:
    cur, now = report.base_currency, report.generated_at
    master, summary = report.master, report.summary
    return {
        "timestamp": iso_utc(now),
        "base_currency": cur,
        "balances": {
            "master": {a.broker: money_number(a.value, cur) for a in master.accounts} if master else {},
            "users": {u.owner: {a.broker: money_number(a.value, cur) for a in u.accounts} for u in report.users},
        },
        "summary": {
            "master_total": money_number(report.master_total, cur),
            "master_partial": master.partial if master else False,
            "user_totals": {u.owner: money_number(u.total, cur) for u in report.users},
            "user_partial": {u.owner: u.partial for u in report.users},
            "total_user_capital": money_number(summary.total_user_capital, cur),
            "user_count": summary.user_count,
            "users_counted": summary.users_counted,
            "average_per_user": money_number(summary.average_per_user, cur),
            "partial": summary.partial,
        },
        "accounts": [account_json(line, cur, now) for line in report.lines()],
    }
