"""The terminal report and its JSON, run as a user runs them: a subprocess on a config directory."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAST_SETTINGS, broker_on, no_spacing
from tests.fakes import FakeKraken

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "show_user_balances.py"


def run(*args, env=None):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env=env)


@pytest.fixture
def example(tmp_path) -> str:
    """A copy of the example configuration (its history database then stays out of the repo)."""
    target = tmp_path / "config"
    shutil.copytree(ROOT / "config", target, ignore=shutil.ignore_patterns("*.sqlite3*"))
    return str(target)


def reference_report() -> str:
    """The reference report of the product brief, as kept in tests/data."""
    return (ROOT / "tests" / "data" / "reference_report.txt").read_text().rstrip("\n")


def test_example_config_prints_the_reference_report(example):
    result = run("--config", example)
    assert result.returncode == 0, result.stderr
    stamp = re.compile(r"Generated: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
    assert stamp.search(result.stdout)
    assert stamp.sub("Generated: X", result.stdout.rstrip("\n")) == stamp.sub("Generated: X", reference_report())


def test_reference_copy_matches_product_brief():
    product = ROOT.parent / "shared" / "PRODUCT.md"
    if not product.exists():
        pytest.skip("the product brief is not beside this checkout: nothing to compare the copy with")
    text = product.read_text()
    start = text.index("=" * 80)
    assert reference_report() == text[start:text.index("```", start)].rstrip("\n")


def test_json_on_example_config(example):
    result = run("--config", example, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["base_currency"] == "USD"
    assert data["balances"] == {"master": {"coinbase": 1234.56, "kraken": 5678.9},
                                "users": {"alice": {"coinbase": 250.0, "kraken": 750.0}, "bob": {"kraken": 2500.0}}}
    assert data["summary"] == {"master_total": 6913.46, "user_totals": {"alice": 1000.0, "bob": 2500.0},
                               "total_user_capital": 3500.0, "user_count": 2, "average_per_user": 1750.0,
                               # the read model's marks (issue 12): nothing partial, the average over both users
                               "master_partial": False, "user_partial": {"alice": False, "bob": False},
                               "users_counted": 2, "partial": False}
    assert {a["owner"] + ":" + a["broker"] for a in data["accounts"]} == {
        "master:coinbase", "master:kraken", "alice:coinbase", "alice:kraken", "bob:kraken"}
    kraken = next(a for a in data["accounts"] if a["owner"] == "master" and a["broker"] == "kraken")
    assert kraken["status"] == "ok" and kraken["error"] is None and kraken["unpriced"] == []
    assert kraken["error_class"] is None
    assert kraken["assets"]["BTC"] == {"amount": 0.02, "price": 50000.0, "value": 1000.0}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["timestamp"])


def test_user_filter(example):
    result = run("--config", example, "--user", "bob")
    assert result.returncode == 0
    assert "User: bob" in result.stdout and "alice" not in result.stdout and "MASTER" not in result.stdout


def test_failed_account_exit_1_with_status_on_its_line(config):
    with FakeKraken() as fake:
        good, bad = fake.add_account({"USD": "100"}), fake.add_account({"USD": "5"})
        fake.inject("invalid_key", api_key=bad["api_key"], count=10)
        config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"))
        config.user("alice", {"kraken": broker_on(fake, good)}).user("bob", {"kraken": broker_on(fake, bad)})
        result = run("--config", str(config.root))
        data = json.loads(run("--config", str(config.root), "--json").stdout)
    assert result.returncode == 1
    assert re.search(r"KRAKEN +unavailable \(AuthenticationError\)", result.stdout)
    assert "$0.00" not in result.stdout
    assert re.search(r"Total User Capital: +\$100\.00", result.stdout)
    bob = next(a for a in data["accounts"] if a["owner"] == "bob")
    assert bob["status"] == "error" and bob["value"] is None and bob["error"].startswith("AuthenticationError")
    assert bob["error_class"] == "AuthenticationError"
    assert data["balances"]["users"]["bob"] == {"kraken": None}
    for secret in (bad["api_key"], bad["api_secret"], good["api_key"], good["api_secret"]):
        assert secret not in result.stdout + result.stderr


def test_no_users_says_where_to_add_one(config):
    config.master({"paper": {"paper": True, "balances": {"USD": 1}}})
    result = run("--config", str(config.root))
    assert result.returncode == 0
    assert "No user brokers configured" in result.stdout and "users/<user_id>.json" in result.stdout


def test_bad_config_is_one_line_on_stderr_exit_2(config):
    config.user("alice", {"kraken": {"exchange": "nosuchexchange"}})
    result = run("--config", str(config.root))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "alice.json" in result.stderr and "brokers.kraken.exchange" in result.stderr


def test_usage_errors_exit_2(example):
    for args in (["--bogus"], ["--config", example, "--user", "zed"], ["--config", "/nonexistent/dir"]):
        result = run(*args)
        assert result.returncode == 2, args
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
