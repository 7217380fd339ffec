"""``show_user_balances`` / ``multibalance``: the terminal report and its JSON form; the history
and its exports.

The CLI takes part in the shared truth (`bot.app.truth`) for the length of its run: it shows the
states the live readers wrote (asking them for a round with ``--refresh``, or when a state is
older than the TTL) and reads itself only the keys no live process reads (``fetch.role:
follower``: none).

Exit status: 0 every account fresh, 1 the report was printed but some account is stale,
failed or not configured (or an export found no close), 2 a configuration or usage error (one
line on stderr, no traceback). Discouraged but working configuration (literal keys) is named
on stderr as ``warning:`` lines.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from bot.app.argparsing import OneLineParser, UsageError, add_source_address, with_source_address
from bot.app.logsetup import add_common_options, configure_logging
from bot.config import ConfigError, load_config
from bot.views import exact_json
from bot.views.history_report import (account_balance_records, export_table, history_table, period,
                                     user_balances_json)
from bot.app.manager import MultiAccountBrokerManager
from bot.views.report import build_report, render_table, report_json

EXIT_OK, EXIT_DEGRADED, EXIT_USAGE = 0, 1, 2


EPILOG = """exit status:
  0  every account was read fresh
  1  the report was printed, but some account is stale, failed or not configured
     (with --export: no daily close in that period)
  2  configuration or usage error (one line on stderr)

examples:
  show_user_balances.py                         the table for ./config
  show_user_balances.py --json --refresh        read every account now, print JSON
  show_user_balances.py --user alice            one user's accounts
  show_user_balances.py --history alice --days 7 --json
  show_user_balances.py --export account-balance --user alice --date 2026-01-31 --type month --json
"""


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="show_user_balances.py", description="Balances of the master and user accounts.",
                      epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="DIR", help="configuration directory (default $BALANCES_CONFIG or ./config)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--user", metavar="ID", help="only this user")
    p.add_argument("--refresh", action="store_true", help="bypass the cache: read every account now")
    p.add_argument("--history", metavar="USER", help="print USER's daily closes instead of the balances")
    p.add_argument("--days", type=int, default=None, metavar="N", help="with --history: the last N days (default 30)")
    p.add_argument("--export", choices=["account-balance"], help="print open-platform records (needs --user, --date)")
    p.add_argument("--date", type=_date, metavar="YYYY-MM-DD", help="with --export: the balance date")
    p.add_argument("--type", choices=["day", "month"], default=None, help="with --export: a day (default) or a month record")
    add_source_address(p)
    add_common_options(p, default_level="error")
    return p


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _check_flags(args) -> None:
    """Refuse combinations that would silently ignore a flag."""
    if args.history and args.export:
        raise UsageError("--history and --export cannot be combined")
    if args.history and args.user is not None and args.user != args.history:
        raise UsageError(f"--history {args.history} and --user {args.user} name different users; give one")
    if args.refresh and (args.history or args.export):
        raise UsageError("--refresh only applies to the balance report, not to --history or --export")
    if args.days is not None and not args.history:
        raise UsageError("--days only applies to --history")
    if (args.date is not None or args.type is not None) and not args.export:
        raise UsageError("--date and --type only apply to --export")


def _check(args, config) -> None:
    users = {u.user_id for u in config.users}
    for user in (args.user, args.history):
        if user is not None and user not in users:
            raise UsageError(f"unknown user {user!r}")
    if args.user is not None and args.export is None and args.user not in {u.user_id for u in config.enabled_users()}:
        raise UsageError(f"user {args.user!r} is disabled")
    if args.export and (args.user is None or args.date is None):
        raise UsageError("--export needs --user and --date")
    if args.days is not None and args.days < 1:
        raise UsageError(f"--days must be at least 1, got {args.days}")


def history_main(args, manager) -> int:
    recorder = manager.history
    base = manager.config.settings.base_currency
    if args.export:
        kind = args.type or "day"
        start, end = period(args.date, kind)
        closes = recorder.store.daily_closes(args.user, start, end)
        if not closes:
            span = start.isoformat() if start == end else f"{start.isoformat()} to {end.isoformat()}"
            print(f"no daily close of {args.user} in {span}: nothing to export", file=sys.stderr)
            return EXIT_DEGRADED
        records = account_balance_records(closes, kind, base)
        print(exact_json.dumps(records, indent=2) if args.json else export_table(records))
        return EXIT_OK
    today = recorder.today()
    days = args.days or 30
    closes = recorder.store.daily_closes(args.history, today - dt.timedelta(days=days - 1), today)
    if args.json:
        print(exact_json.dumps(user_balances_json(closes, base), indent=2))
    else:
        print(history_table(args.history, closes, base))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        configure_logging(args)
        _check_flags(args)
        config = with_source_address(load_config(args.config), args.source_address)
        _check(args, config)
        for warning in config.warnings():
            print(f"warning: {warning}", file=sys.stderr)
        manager = MultiAccountBrokerManager(config, role="follower" if config.settings.fetch.role == "follower"
                                            else "auto")
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
