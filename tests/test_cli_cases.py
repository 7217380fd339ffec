"""The CLI's operator cases: --help, conflicting flags, empty exports, --json respected, warnings."""
from __future__ import annotations

import json

import pytest

from bot.app.cli import main
from bot.multi_account_broker_manager import MultiAccountBrokerManager


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # --help and --version exit through argparse
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def closed_day(config):
    """alice's configuration with one finalised daily close (today)."""
    config.user("alice", {"paper": {"paper": True, "balances": {"USD": "12.5", "BTC": "0.25"}, "prices": {"BTC": "100"}}})
    config.user("bob", {"paper": {"paper": True, "balances": {"USD": "1"}}})
    manager = MultiAccountBrokerManager(config.load())
    manager.refresh()
    manager.history.flush()
    today = manager.history.today()
    manager.close()
    return str(config.root), today


def test_help_lists_exit_codes_and_examples(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "exit status:" in out and "  2  configuration or usage error" in out
    assert "--export account-balance --user alice" in out and "--log-format" in out


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and "multibalance" in out


@pytest.mark.parametrize("argv, needle", [
    (["--history", "bob", "--user", "alice"], "name different users"),
    (["--history", "alice", "--export", "account-balance", "--user", "alice", "--date", "2026-01-01"], "cannot be combined"),
    (["--refresh", "--history", "alice"], "--refresh only applies"),
    (["--days", "3"], "--days only applies to --history"),
    (["--date", "2026-01-01"], "--date and --type only apply to --export"),
    (["--type", "month"], "--date and --type only apply to --export"),
])
def test_conflicting_flags_are_refused(capsys, closed_day, argv, needle):
    root, _ = closed_day
    code, out, err = run(capsys, "--config", root, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and needle in err


def test_empty_export_says_so_and_exits_1(capsys, closed_day):
    root, today = closed_day
    empty = today.replace(year=today.year - 1)
    code, out, err = run(capsys, "--config", root, "--export", "account-balance", "--user", "alice",
                         "--date", empty.isoformat(), "--type", "month")
    assert code == 1 and out == ""
    assert "no daily close of alice" in err and "nothing to export" in err


def test_export_respects_json(capsys, closed_day):
    root, today = closed_day
    args = ["--config", root, "--export", "account-balance", "--user", "alice", "--date", today.isoformat()]
    code, table, _ = run(capsys, *args)
    assert code == 0
    assert "ACCOUNT BALANCES: alice" in table and "alice:paper:BTC" in table
    with pytest.raises(json.JSONDecodeError):
        json.loads(table)
    code, text, _ = run(capsys, *args, "--json")
    records = json.loads(text)
    assert code == 0 and records[0]["user"] == "alice"
    assert {d["account_currency"]: d["account_balance"] for d in records[0]["data"]} == {"USD": 12.5, "BTC": 0.25}


def test_literal_keys_are_accepted_with_a_warning(capsys, config):
    config.user("alice", {"kraken": {"api_key": "k" * 20, "api_secret": "c2VjcmV0" * 4, "api_url": "http://127.0.0.1:9"}})
    code, out, err = run(capsys, "--config", str(config.root), "--json", "--log-level", "error")
    assert code == 1  # the account cannot be read: nothing listens on that port
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1
    assert "users/alice.json: field 'brokers.kraken': literal api_key, api_secret" in warnings[0]
    assert "k" * 20 not in err and "c2VjcmV0" not in err
    assert json.loads(out)["accounts"][0]["status"] == "error"
