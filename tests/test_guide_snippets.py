"""The Python API as the user balance visibility guide writes it: its snippets run unchanged on
the example configuration, and the facade's lifecycle keeps its promises (close, listeners)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from bot.balances.service import ServiceClosed

ROOT = Path(__file__).resolve().parents[1]

# Verbatim from the guide ("Programmatic Access" and "Get Balance for Specific User").
PROGRAMMATIC_ACCESS = '''
from bot.multi_account_broker_manager import multi_account_broker_manager

# Method 1: Log all balances to console (formatted)
multi_account_broker_manager.log_all_balances()

# Method 2: Get all balances as dictionary
balances = multi_account_broker_manager.get_all_balances()
print(f"Master balances: {balances['master']}")
print(f"User balances: {balances['users']}")

# Method 3: Get user balance summary (sorted by total)
summary = multi_account_broker_manager.get_user_balance_summary()
print(f"Total users: {summary['user_count']}")
print(f"Total capital: ${summary['total_capital']:,.2f}")
print(f"Average per user: ${summary['average_balance']:,.2f}")

# Iterate through users (sorted by balance, highest first)
for user in summary['users']:
    print(f"{user['user_id']}: ${user['total']:,.2f}")
    for broker, balance in user['brokers'].items():
        print(f"  {broker}: ${balance:,.2f}")

# Method 4: Get status report as formatted string
report = multi_account_broker_manager.get_status_report()
print(report)
'''

SPECIFIC_USER = '''
from bot.multi_account_broker_manager import multi_account_broker_manager
from bot.broker_manager import BrokerType

# Get balance for specific user and broker
user_id = "alice"
broker_type = BrokerType.COINBASE

balance = multi_account_broker_manager.get_user_balance(user_id, broker_type)
print(f"{user_id}'s {broker_type.value} balance: ${balance:,.2f}")
'''


def run_snippet(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run ``code`` as a user would: a fresh interpreter in a directory holding the example
    ``config/`` (copied, so the example's store is not touched), no logging configured."""
    shutil.copytree(ROOT / "config", tmp_path / "config", ignore=shutil.ignore_patterns("*.sqlite3*"))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_programmatic_access_snippet_runs_unchanged(tmp_path):
    result = run_snippet(PROGRAMMATIC_ACCESS, tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Total users: 2" in out
    assert "Total capital: $3,500.00" in out and "Average per user: $1,750.00" in out
    # users highest total first, each broker listed under its user
    assert out.index("bob: $2,500.00") < out.index("alice: $1,000.00")
    assert "  kraken: $750.00" in out
    # log_all_balances printed the formatted report although logging was never configured
    assert "USER ACCOUNT BALANCES" in result.stderr and "SUBTOTAL" in result.stderr
    # get_status_report returned the same table
    assert out.count("USER ACCOUNT BALANCES") == 1 and "Average per User:      $1,750.00" in out


def test_specific_user_snippet_runs_unchanged(tmp_path):
    result = run_snippet(SPECIFIC_USER, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "alice's coinbase balance: $250.00"


def test_summary_is_the_guides_dict_with_decimals(config, managers):
    config.user("alice", {"paper": {"paper": True, "balances": {"USD": "250.10"}}})
    config.user("bob", {"paper": {"paper": True, "balances": {"USD": "2500"}}})
    manager = config.manager()
    managers.append(manager)
    summary = manager.get_user_balance_summary()
    assert set(summary) >= {"user_count", "total_capital", "average_balance", "users"}
    assert summary["user_count"] == 2
    assert summary["total_capital"] == Decimal("2750.10") and isinstance(summary["total_capital"], Decimal)
    assert summary["average_balance"] == Decimal("1375.05")
    assert [u["user_id"] for u in summary["users"]] == ["bob", "alice"]
    assert summary["users"][1]["brokers"] == {"paper": Decimal("250.10")}


def test_refresh_after_close_fails_at_once_instead_of_hanging(config):
    config.user("alice", {"paper": {"paper": True, "balances": {"USD": "1"}}})
    manager = config.manager()
    manager.refresh()
    manager.close()
    with pytest.raises(ServiceClosed):
        manager.refresh()
    manager.close()  # idempotent


def test_unsubscribed_listener_hears_nothing_more(config, managers):
    config.user("alice", {"paper": {"paper": True, "balances": {"USD": "1"}}})
    manager = config.manager()
    managers.append(manager)
    heard = []
    unsubscribe = manager.subscribe(lambda state, previous, source: heard.append(source))
    manager.refresh()
    assert heard == ["manual_sync"]
    unsubscribe()
    manager.refresh()
    assert heard == ["manual_sync"]


def test_an_unusable_database_names_the_reason(config):
    import socket
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config.settings(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    config.user("alice", {"paper": {"paper": True, "balances": {"USD": "1"}}})
    from bot.config import ConfigError
    with pytest.raises(ConfigError) as caught:
        config.manager().open()
    message = str(caught.value)
    assert "field 'database_url': cannot open the database" in message
    assert "refused" in message.lower(), message
