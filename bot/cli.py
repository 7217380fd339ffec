"""``show_user_balances``: the terminal report and its JSON form.

Exit status: 0 every account fresh, 1 the report was printed but some account is stale,
failed or not configured, 2 a configuration or usage error (one line on stderr, no traceback).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from bot.config import ConfigError, load_config
from bot.multi_account_broker_manager import MultiAccountBrokerManager
from bot.report import build_report, render_table, report_json

EXIT_OK, EXIT_DEGRADED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise UsageError(message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="show_user_balances.py", description="Balances of the master and user accounts.")
    p.add_argument("--config", metavar="DIR", help="configuration directory (default $BALANCES_CONFIG or ./config)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--user", metavar="ID", help="only this user")
    p.add_argument("--refresh", action="store_true", help="bypass the cache: read every account now")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = parser().parse_args(argv)
        config = load_config(args.config)
        if args.user is not None and args.user not in {u.user_id for u in config.enabled_users()}:
            raise UsageError(f"unknown or disabled user {args.user!r}")
    except (UsageError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    manager = MultiAccountBrokerManager(config)
    try:
        manager.refresh(force=args.refresh)
        report = build_report(manager, user_id=args.user)
    finally:
        manager.close()
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        print(render_table(report))
    return EXIT_OK if report.all_fresh else EXIT_DEGRADED
