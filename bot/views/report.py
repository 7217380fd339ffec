"""The balance report: one snapshot of every account, rendered as the terminal table or as JSON.

`build_report(manager)` takes the manager's current states (it reads nothing itself);
`render_table` and `report_json` only format. Totals sum the known values (stale ones
included, with their status shown); a total is None only when no account behind it is known.
"""
from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from bot.core.state import AccountState, Status, sum_known
from bot.config import MASTER_OWNER, UserConfig

RULE = "=" * 80
THIN = "-" * 80
FIAT_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
FIAT = set(FIAT_SYMBOLS) | {"AUD", "CAD", "CHF", "NZD", "SEK", "NOK", "DKK", "PLN", "SGD", "HKD", "KRW", "TRY", "BRL", "MXN", "ZAR", "INR"}


@dataclass(frozen=True)
class BalanceReport:
    generated_at: float
    timezone: str
    base_currency: str
    master_name: str | None
    master: tuple[AccountState, ...]
    users: tuple[tuple[UserConfig, tuple[AccountState, ...]], ...]

    @property
    def states(self) -> tuple[AccountState, ...]:
        return self.master + tuple(s for _, states in self.users for s in states)

    @property
    def master_total(self) -> Decimal | None:
        return sum_known(self.master)

    @property
    def user_count(self) -> int:
        return len(self.users)

    @property
    def total_user_capital(self) -> Decimal | None:
        return sum_known(s for _, states in self.users for s in states)

    @property
    def average_per_user(self) -> Decimal | None:
        total = self.total_user_capital
        return None if total is None or not self.users else total / len(self.users)

    @property
    def all_fresh(self) -> bool:
        return all(s.status is Status.OK for s in self.states)


def build_report(manager, user_id: str | None = None) -> BalanceReport:
    """The report of ``manager``'s current states; with ``user_id``, that user only (no master)."""
    config = manager.config
    states = manager.account_states()
    by_owner: dict[str, list[AccountState]] = {}
    for state in states:
        by_owner.setdefault(state.owner, []).append(state)
    users = [u for u in config.enabled_users() if user_id is None or u.user_id == user_id]
    if user_id is not None and not users:
        raise KeyError(f"unknown or disabled user {user_id!r}")
    show_master = user_id is None and config.master is not None
    return BalanceReport(
        generated_at=time.time(),
        timezone=config.settings.timezone,
        base_currency=config.settings.base_currency,
        master_name=config.master.name if show_master else None,
        master=tuple(by_owner.get(MASTER_OWNER, ())) if show_master else (),
        users=tuple((u, tuple(by_owner.get(u.user_id, ()))) for u in users),
    )


# ---------------------------------------------------------------------------- numbers


def decimals_for(currency: str) -> int:
    return 2 if currency in FIAT else 8


def quantize(value: Decimal, currency: str) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimals_for(currency)), rounding=ROUND_HALF_UP)


def format_money(value: Decimal | None, currency: str) -> str:
    if value is None:
        return "unknown"
    places = decimals_for(currency)
    number = f"{quantize(value, currency):,.{places}f}"
    symbol = FIAT_SYMBOLS.get(currency)
    if symbol:
        return f"-{symbol}{number[1:]}" if number.startswith("-") else f"{symbol}{number}"
    return f"{number} {currency}"


def format_age(seconds: float | None) -> str:
    if seconds is None:
        return "never read"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _error_class(error: str | None) -> str:
    return (error or "unknown error").split(":", 1)[0]


def account_cell(state: AccountState, currency: str, now: float) -> str:
    """The value column of one account line, with its status marker when not fresh."""
    if state.status is Status.OK:
        text = format_money(state.value, currency)
    elif state.status is Status.STALE:
        text = f"{format_money(state.value, currency)}  stale {format_age(state.age_seconds(now))} ({_error_class(state.error)})"
    elif state.status is Status.NOT_CONFIGURED:
        text = f"not configured ({state.error})"
    else:
        text = f"unavailable ({_error_class(state.error)})"
    if state.unpriced:
        text += f"  + unpriced: {', '.join(state.unpriced)}"
    return text


# ---------------------------------------------------------------------------- table


def render_table(report: BalanceReport) -> str:
    cur, now = report.base_currency, report.generated_at
    stamp = dt.datetime.fromtimestamp(now, ZoneInfo(report.timezone)).strftime("%Y-%m-%d %H:%M:%S")
    lines = [RULE, f"{'USER ACCOUNT BALANCES':<56}Generated: {stamp}", RULE]
    if report.master_name is not None:
        lines += ["MASTER ACCOUNT", THIN]
        lines += [f"   {s.broker.upper():<21}{account_cell(s, cur, now)}" for s in report.master]
        lines += [THIN, f"   {'TOTAL':<21}{format_money(report.master_total, cur)}", ""]
    lines += ["USER ACCOUNTS", THIN]
    if not report.users:
        lines += ["   No user brokers configured.",
                  "   Add one as users/<user_id>.json in the configuration directory (see README.md)."]
    for index, (user, states) in enumerate(report.users):
        if index:
            lines.append("")
        lines.append(f"   User: {user.user_id}")
        lines += [f"      {s.broker.upper():<17}{account_cell(s, cur, now)}" for s in states]
        if not states:
            lines.append("      (no enabled brokers)")
        lines.append(f"      {'SUBTOTAL':<17}{format_money(sum_known(states), cur)}")
    lines += [RULE, "SUMMARY",
              f"   {'Total Users:':<23}{report.user_count}",
              f"   {'Total User Capital:':<23}{format_money(report.total_user_capital, cur)}",
              f"   {'Average per User:':<23}{format_money(report.average_per_user, cur)}",
              RULE]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- JSON


def money_number(value: Decimal | None, currency: str) -> float | None:
    return None if value is None else float(quantize(value, currency))


def iso_utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def account_json(state: AccountState, currency: str, now: float) -> dict:
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
        "assets": {asset: {"amount": float(h.amount),
                           "price": None if h.price is None else float(h.price),
                           "value": money_number(h.value, currency)}
                   for asset, h in state.holdings.items()},
        "unpriced": list(state.unpriced),
    }


def report_json(report: BalanceReport) -> dict:
    cur, now = report.base_currency, report.generated_at
    users = {u.user_id: {s.broker: money_number(s.value, cur) for s in states} for u, states in report.users}
    return {
        "timestamp": iso_utc(now),
        "base_currency": cur,
        "balances": {"master": {s.broker: money_number(s.value, cur) for s in report.master}, "users": users},
        "summary": {
            "master_total": money_number(report.master_total, cur),
            "user_totals": {u.user_id: money_number(sum_known(states), cur) for u, states in report.users},
            "total_user_capital": money_number(report.total_user_capital, cur),
            "user_count": report.user_count,
            "average_per_user": money_number(report.average_per_user, cur),
        },
        "accounts": [account_json(s, cur, now) for s in report.states],
    }
