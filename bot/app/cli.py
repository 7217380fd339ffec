"""``show_user_balances``: the terminal report and its JSON form; the history and its exports.

Exit status: 0 every account fresh, 1 the report was printed but some account is stale,
failed or not configured, 2 a configuration or usage error (one line on stderr, no traceback).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys

from bot.app.argparsing import OneLineParser, UsageError
from bot.config import ConfigError, load_config
from bot.core.secrets import install_log_redaction
from bot.views import exact_json
from bot.views.history_report import account_balance_records, history_table, period, user_balances_json
from bot.app.manager import MultiAccountBrokerManager
from bot.views.report import build_report, render_table, report_json

EXIT_OK, EXIT_DEGRADED, EXIT_USAGE = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="show_user_balances.py", description="Balances of the master and user accounts.")
    p.add_argument("--config", metavar="DIR", help="configuration directory (default $BALANCES_CONFIG or ./config)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--user", metavar="ID", help="only this user")
    p.add_argument("--refresh", action="store_true", help="bypass the cache: read every account now")
    p.add_argument("--history", metavar="USER", help="print USER's daily closes instead of the balances")
    p.add_argument("--days", type=int, default=30, metavar="N", help="with --history: the last N days (default 30)")
    p.add_argument("--export", choices=["account-balance"], help="print open-platform records (needs --user, --date)")
    p.add_argument("--date", type=_date, metavar="YYYY-MM-DD", help="with --export: the balance date")
    p.add_argument("--type", choices=["day", "month"], default="day", help="with --export: a day or a month record")
    return p


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _check(args, config) -> None:
    users = {u.user_id for u in config.users}
    for user in (args.user, args.history):
        if user is not None and user not in users:
            raise UsageError(f"unknown user {user!r}")
    if args.user is not None and args.export is None and args.user not in {u.user_id for u in config.enabled_users()}:
        raise UsageError(f"user {args.user!r} is disabled")
    if args.export and (args.user is None or args.date is None):
        raise UsageError("--export needs --user and --date")
    if args.days < 1:
        raise UsageError(f"--days must be at least 1, got {args.days}")


def history_main(args, manager) -> int:
    recorder = manager.history
    base = manager.config.settings.base_currency
    if args.export:
        start, end = period(args.date, args.type)
        closes = recorder.store.daily_closes(args.user, start, end)
        print(exact_json.dumps(account_balance_records(closes, args.type, base), indent=2))
        return EXIT_OK
    today = recorder.today()
    closes = recorder.store.daily_closes(args.history, today - dt.timedelta(days=args.days - 1), today)
    if args.json:
        print(exact_json.dumps(user_balances_json(closes, base), indent=2))
    else:
        print(history_table(args.history, closes, base))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    try:
        args = parser().parse_args(argv)
        config = load_config(args.config)
        _check(args, config)
        manager = MultiAccountBrokerManager(config)
        manager.open()  # a database that cannot be opened is a configuration error
    except (UsageError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.history or args.export:
            return history_main(args, manager)
        manager.refresh(force=args.refresh)
        report = build_report(manager, user_id=args.user)
    finally:
        manager.close()
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print(render_table(report))
    return EXIT_OK if report.all_fresh else EXIT_DEGRADED
