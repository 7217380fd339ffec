"""Alert rules (bot.alerts.rules) on plain account states, and the ``alerts`` settings' validation.

The engine is a pure function of (state, time): these tests pass the time explicitly, so
cooldowns and windows are exact and nothing sleeps.
"""
from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest

from bot.core.state import AccountState, Status
from bot.alerts.model import AlertType, money
from bot.alerts.rules import AlertEngine, PeakWindow
from bot.config.alerts import parse_alert_settings
from bot.config import ConfigError
from bot.store import Alert

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
MIN = 60.0
LOW, DROP, ERROR = AlertType.BALANCE_LOW, AlertType.BALANCE_DROP, AlertType.ACCOUNT_ERROR


def settings(users=None, **alerts):
    return parse_alert_settings(alerts, users or {}, Path("/cfg"))


def engine(owners=None, users=None, **alerts) -> AlertEngine:
    return AlertEngine(settings(users, **alerts), owners or {"alice": ["alice:kraken"]}, "USD")


def ok(value, account="alice:kraken", at=T0):
    owner, broker = account.split(":")
    return AccountState(account, owner, broker, "kraken", Status.OK, None if value is None else D(value), fetched_at=at)


def failed(account="alice:kraken", value="100", fetched_at=T0, error="RequestTimeout: timed out",
           error_class="RequestTimeout"):
    owner, broker = account.split(":")
    status = Status.STALE if value is not None else Status.ERROR
    return AccountState(account, owner, broker, "kraken", status, None if value is None else D(value),
                        fetched_at=fetched_at, error=error, error_class=error_class)


def run(eng, *steps):
    """Feed (state, time) pairs; return the notifications as (type, state, broker, value) tuples."""
    out = []
    for state, at in steps:
        out += [(e.type, e.state, e.broker, e.value) for e in eng.observe(state, at)]
    return out


# --- BALANCE_LOW ---------------------------------------------------------------------------------

def test_low_fires_strictly_below_the_threshold_and_once():
    eng = engine(low_balance=100)
    assert run(eng, (ok("100"), T0)) == []                         # at the threshold: not below
    assert run(eng, (ok("99.99"), T0 + MIN)) == [(LOW, "firing", "kraken", D("99.99"))]
    assert run(eng, (ok("50"), T0 + 2 * MIN)) == []                 # still low, within the cooldown


def test_low_resolves_only_beyond_the_hysteresis_band():
    eng = engine(low_balance=100, hysteresis_percent=2)            # resolves above 102
    run(eng, (ok("99"), T0))
    hover = [(ok(v), T0 + i * MIN) for i, v in enumerate(["101", "99.5", "102", "100.5", "99"], start=1)]
    assert run(eng, *hover) == []                                    # hovering at the threshold: no flapping
    assert run(eng, (ok("102.01"), T0 + 9 * MIN)) == [(LOW, "resolved", "kraken", D("102.01"))]
    assert run(eng, (ok("99.9"), T0 + 10 * MIN)) == [(LOW, "firing", "kraken", D("99.9"))]


def test_default_hysteresis_is_one_percent():
    eng = engine(low_balance=100)
    run(eng, (ok("90"), T0))
    assert run(eng, (ok("101"), T0 + MIN)) == []
    assert run(eng, (ok("101.01"), T0 + 2 * MIN)) == [(LOW, "resolved", "kraken", D("101.01"))]


def test_cooldown_repeats_at_most_once_per_period():
    eng = engine(low_balance=100, cooldown_minutes=30)
    first = eng.observe(ok("90"), T0)
    assert [e.repeat for e in first] == [False]
    steps = [(ok("80"), T0 + m * MIN) for m in (1, 29, 29.99, 30, 31, 59, 60, 61)]
    events = [(at, e) for state, at in steps for e in eng.observe(state, at)]
    assert [(at - T0) / MIN for at, _ in events] == [30, 60]
    assert all(e.state == "firing" and e.repeat and e.started_at == T0 for _, e in events)
    resolved, = eng.observe(ok("200"), T0 + 70 * MIN)
    assert (resolved.state, resolved.started_at, resolved.repeat) == ("resolved", T0, False)


def test_unknown_values_never_fire_or_resolve():
    eng = engine(low_balance=100, drop_percent=10)
    assert run(eng, (ok(None), T0), (failed(value=None), T0 + MIN)) == []
    run(eng, (ok("1000"), T0 + 2 * MIN), (ok("50"), T0 + 3 * MIN))
    assert run(eng, (ok(None), T0 + 4 * MIN), (ok(None), T0 + 500 * MIN)) == []   # open alerts stay open
    assert eng.open_keys() == {(LOW, "alice", "kraken"), (DROP, "alice", "kraken")}


# --- BALANCE_DROP --------------------------------------------------------------------------------

def test_drop_within_the_window_fires_at_the_exact_percentage():
    eng = engine(drop_percent=20, drop_window_minutes=60)
    assert run(eng, (ok("1000"), T0), (ok("800.01"), T0 + 10 * MIN)) == []
    events = eng.observe(ok("800"), T0 + 59 * MIN)               # exactly 20 % below the high
    assert [(e.type, e.state, e.threshold) for e in events] == [(DROP, "firing", D("800.00"))]
    assert "fell 20.0% from 1,000.00 to 800.00 USD within 60 min" in events[0].message


def test_drop_spread_over_more_than_the_window_does_not_fire():
    eng = engine(drop_percent=20, drop_window_minutes=60)
    steps = [(ok("1000"), T0), (ok("900"), T0 + 40 * MIN), (ok("790"), T0 + 70 * MIN)]  # 1000 left the window
    assert run(eng, *steps) == []
    assert run(eng, (ok("719"), T0 + 99 * MIN)) == [(DROP, "firing", "kraken", D("719"))]  # 900 -> 719 within 60 min


def test_drop_resolves_with_hysteresis():
    eng = engine(drop_percent=20, drop_window_minutes=60, hysteresis_percent=1)  # resolves above 808
    run(eng, (ok("1000"), T0), (ok("700"), T0 + MIN))
    assert run(eng, (ok("808"), T0 + 2 * MIN), (ok("795"), T0 + 3 * MIN), (ok("808"), T0 + 4 * MIN)) == []
    assert run(eng, (ok("808.01"), T0 + 5 * MIN)) == [(DROP, "resolved", "kraken", D("808.01"))]


def test_drop_resolves_when_the_high_leaves_the_window():
    eng = engine(drop_percent=20, drop_window_minutes=60)
    assert run(eng, (ok("1000"), T0), (ok("600"), T0 + MIN)) == [(DROP, "firing", "kraken", D("600"))]
    assert run(eng, (ok("600"), T0 + 60 * MIN)) == []                # 1000 still within the hour
    assert run(eng, (ok("600"), T0 + 60.5 * MIN)) == [(DROP, "resolved", "kraken", D("600"))]


def test_a_zero_balance_that_stays_zero_is_no_drop():
    eng = engine(drop_percent=100)
    assert run(eng, (ok("0"), T0), (ok("0"), T0 + MIN)) == []
    assert run(eng, (ok("5"), T0 + 2 * MIN), (ok("0"), T0 + 3 * MIN)) == [(DROP, "firing", "kraken", D("0"))]


def test_peak_window_keeps_the_highest_value_within_the_window():
    window = PeakWindow()
    for at, value in ((0, 5), (10, 9), (20, 7), (30, 8), (40, 3)):
        window.add(at, D(value))
    assert [window.peak(now, 25) for now in (34, 40, 50, 56, 66)] == [D(9), D(8), D(8), D(3), None]


def test_drop_window_is_seeded_from_history():
    eng = engine(drop_percent=20, drop_window_minutes=60)
    at = lambda minutes: dt.datetime.fromtimestamp(T0 + minutes * MIN, dt.timezone.utc)  # noqa: E731
    eng.seed({"alice:kraken": [(at(-90), D("5000")), (at(-70), D("1000")), (at(-30), D("990"))]}, T0)
    # 1000 was held when the window opened (its snapshot is from before): it counts; 5000 does not
    assert run(eng, (ok("800"), T0)) == [(DROP, "firing", "kraken", D("800"))]


# --- user totals and per-user overrides ------------------------------------------------------------

TWO = {"bob": ["bob:kraken", "bob:okx"]}


def test_user_total_fires_when_all_accounts_are_known_and_has_no_broker():
    eng = engine(TWO, low_balance=100)
    assert run(eng, (ok("60", "bob:kraken"), T0)) == [(LOW, "firing", "kraken", D("60"))]  # okx unknown yet: no total
    events = run(eng, (ok("70", "bob:okx"), T0 + MIN))
    assert events == [(LOW, "firing", "okx", D("70"))]                # total 130 is not low
    events = run(eng, (ok("20", "bob:okx"), T0 + 2 * MIN))
    assert events == [(LOW, "firing", None, D("80"))]                 # account already open; total 60 + 20
    run(eng, (failed("bob:kraken", value=None), T0 + 3 * MIN))           # kraken unknown now
    assert run(eng, (ok("500", "bob:okx"), T0 + 4 * MIN)) == [(LOW, "resolved", "okx", D("500"))]  # total unknown


def test_a_single_account_owner_has_no_separate_total():
    eng = engine(low_balance=100)
    assert [e.broker for e in eng.observe(ok("5"), T0)] == ["kraken"]


def test_per_user_overrides_and_switching_a_rule_off():
    owners = {"alice": ["alice:kraken"], "bob": ["bob:kraken"], "carol": ["carol:kraken"]}
    users = {"bob": {"low_balance": 10, "cooldown_minutes": 0}, "carol": {"low_balance": None}}
    eng = engine(owners, users, low_balance=100)
    fired = run(eng, (ok("50", "alice:kraken"), T0), (ok("50", "bob:kraken"), T0), (ok("5", "carol:kraken"), T0))
    assert fired == [(LOW, "firing", "kraken", D("50"))]              # alice only: bob's limit 10, carol off
    assert run(eng, (ok("5", "bob:kraken"), T0), (ok("4", "bob:kraken"), T0)) == [
        (LOW, "firing", "kraken", D("5")), (LOW, "firing", "kraken", D("4"))]  # cooldown 0: every read repeats
    # a rule switched off (e.g. after a restart with new settings) resolves what it left open
    off = AlertEngine(settings({"carol": {"low_balance": None}}, low_balance=100), owners, "USD")
    off.restore([(Alert(1, "BALANCE_LOW", "firing", "warning", "carol", "kraken", D(5), D(100), "m",
                        dt.datetime.fromtimestamp(T0, dt.timezone.utc)), dt.datetime.fromtimestamp(T0, dt.timezone.utc))])
    assert run(off, (ok("5", "carol:kraken"), T0 + MIN)) == [(LOW, "resolved", "kraken", D("5"))]


# --- ACCOUNT_ERROR -------------------------------------------------------------------------------

def test_account_error_after_n_consecutive_failures_resolves_on_success():
    eng = engine(error_reads=3)
    assert run(eng, (failed(), T0), (failed(), T0 + MIN)) == []
    assert run(eng, (ok("100"), T0 + 2 * MIN)) == []                  # the streak is broken
    steps = [(failed(), T0 + m * MIN) for m in (3, 4, 5, 6)]
    assert run(eng, *steps) == [(ERROR, "firing", "kraken", D("100"))]
    event, = eng.observe(failed(value=None), T0 + 200 * MIN)
    assert event.repeat and "4 consecutive failed reads" not in event.message and "(RequestTimeout)" in event.message
    assert run(eng, (ok("100"), T0 + 201 * MIN)) == [(ERROR, "resolved", "kraken", D("100"))]


def test_account_error_when_stale_too_long():
    eng = engine(error_reads=None, stale_minutes=30)
    assert run(eng, (failed(fetched_at=T0), T0 + 30 * MIN)) == []
    events = eng.observe(failed(fetched_at=T0), T0 + 31 * MIN)
    assert [(e.type, e.state) for e in events] == [(ERROR, "firing")]
    assert "last good read 31 min ago (RequestTimeout)" in events[0].message
    assert "timed out" not in events[0].message                       # only the error class


def test_not_configured_accounts_are_ignored():
    eng = engine(error_reads=1)
    state = AccountState("alice:kraken", "alice", "kraken", "kraken", Status.NOT_CONFIGURED, error="no key")
    assert eng.observe(state, T0) == []


# --- messages and wire shapes --------------------------------------------------------------------

def test_json_and_alertmanager_shapes():
    eng = engine(TWO, low_balance=100)
    run(eng, (ok("60", "bob:kraken"), T0))
    total = [e for e in eng.observe(ok("10", "bob:okx"), T0 + MIN) if e.broker is None][0]
    body = total.to_json()
    assert list(body) == ["type", "state", "level", "user_id", "broker", "value", "threshold", "message", "timestamp"]
    assert body == {"type": "BALANCE_LOW", "state": "firing", "level": "warning", "user_id": "bob", "broker": None,
                    "value": "70", "threshold": "100", "message": "bob total balance 70.00 USD is below 100.00 USD",
                    "timestamp": "2026-01-01T00:01:00.000Z"}
    posted = total.to_alertmanager(firing_ttl_seconds=600, instance="host-1:9478", generator_url="http://host-1/users")
    assert posted["labels"] == {"alertname": "MultibalanceUserBalanceLow", "type": "BALANCE_LOW", "owner": "bob",
                                "severity": "warning", "instance": "host-1:9478"}
    assert posted["annotations"]["value"] == "70" and posted["annotations"]["threshold"] == "100"
    assert posted["annotations"]["currency"] == "USD" and posted["generatorURL"] == "http://host-1/users"
    low, = [e for e in engine(TWO, low_balance=100).observe(ok("5", "bob:okx"), T0) if e.broker is not None]
    labels = low.to_alertmanager(600)["labels"]
    assert labels["alertname"] == "MultibalanceAccountBalanceLow" and labels["exchange"] == "kraken"
    assert "instance" not in labels and "generatorURL" not in low.to_alertmanager(600)
    assert (posted["startsAt"], posted["endsAt"]) == ("2026-01-01T00:01:00.000Z", "2026-01-01T00:11:00.000Z")
    assert total.to_slack() == {"text": "[FIRING] BALANCE_LOW (warning): bob total balance 70.00 USD is below 100.00 USD"}
    assert money(D("0.000012345678")) == "0.00001235" and money(D("1234567")) == "1,234,567.00"


# --- settings validation -------------------------------------------------------------------------

@pytest.mark.parametrize("alerts, message", [
    ({"drop_percent": 0}, "field 'alerts.drop_percent': must be > 0"),
    ({"drop_percent": 150}, "field 'alerts.drop_percent': must be <= 100"),
    ({"low_balance": -1}, "field 'alerts.low_balance': must be > 0"),
    ({"low_balance": "100"}, "field 'alerts.low_balance': must be a number"),
    ({"cooldown_minutes": -5}, "field 'alerts.cooldown_minutes': must be >= 0"),
    ({"drop_window_minutes": 0}, "field 'alerts.drop_window_minutes': must be > 0"),
    ({"hysteresis_percent": 80}, "field 'alerts.hysteresis_percent': must be <= 50"),
    ({"error_reads": 0}, "field 'alerts.error_reads': must be >= 1"),
    ({"error_reads": 1.5}, "field 'alerts.error_reads': must be a whole number, got 1.5 (allowed: 1 to 1000)"),
    ({"webhooks": [{"url": "ftp://x"}]}, "field 'alerts.webhooks[0].url': must start with http"),
    ({"webhooks": [{"url": "http://x", "format": "xml"}]}, "field 'alerts.webhooks[0].format': must be one of"),
    ({"webhooks": [{"format": "json"}]}, "field 'alerts.webhooks[0].url': is required"),
    ({"webhooks": {"url": "http://x"}}, "field 'alerts.webhooks': must be a list"),
    ({"webhook_retries": 20}, "field 'alerts.webhook_retries': must be <= 10, got 20 (allowed: 0 to 10)"),
    ({"webhook_timeout_seconds": 0}, "field 'alerts.webhook_timeout_seconds': must be > 0"),
    ({"alertmanager_url": "localhost:9093"}, "field 'alerts.alertmanager_url': must start with http"),
    ({"low_balanse": 5}, "field 'alerts.low_balanse': unknown field"),
])
def test_bad_settings_are_refused_naming_file_and_field(config, alerts, message):
    config.settings(alerts=alerts)
    with pytest.raises(ConfigError) as error:
        config.load()
    assert str(error.value).startswith(f"{config.root / 'settings.json'}: {message}")


@pytest.mark.parametrize("alerts, message", [
    ({"low_balance": 0}, "field 'alerts.low_balance': must be > 0"),
    ({"webhooks": []}, "field 'alerts.webhooks': can only be set in settings.json"),
    ({"bogus": 1}, "field 'alerts.bogus': unknown field"),
])
def test_bad_user_overrides_are_refused_naming_the_user_file(config, alerts, message):
    config.user("alice", {"paper": {"paper": True, "balances": {"USD": 1}}}, alerts=alerts)
    with pytest.raises(ConfigError) as error:
        config.load()
    assert str(error.value).startswith(f"{config.root / 'users' / 'alice.json'}: {message}")


def test_good_settings_and_overrides_are_parsed(config):
    config.settings(alerts={"low_balance": 100.5, "drop_percent": 10, "webhooks": [{"url": "https://h/x?token=s"}],
                            "alertmanager_url": "http://127.0.0.1:9093/"})
    config.user("alice", {"paper": {"paper": True, "balances": {"USD": 1}}}, alerts={"low_balance": None,
                                                                                      "stale_minutes": 30})
    parsed = config.load().settings.alerts
    assert parsed.rules.low_balance == D("100.5") and parsed.rules.drop_factor == D("0.9")
    alice = parsed.rules_for("alice")
    assert (alice.low_balance, alice.drop_percent, alice.stale_minutes) == (None, D(10), 30.0)
    assert parsed.alertmanager_url == "http://127.0.0.1:9093"
    assert "token" not in repr(parsed.webhooks)


def test_the_cli_refuses_a_bad_alerts_setting_with_exit_status_2(config):
    config.settings(alerts={"drop_percent": -3}).user("alice", {"paper": {"paper": True, "balances": {"USD": 1}}})
    result = subprocess.run([sys.executable, "scripts/show_user_balances.py", "--config", str(config.root)],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: {config.root / 'settings.json'}: field 'alerts.drop_percent': must be > 0, "
                                     f"got -3 (allowed: more than 0, at most 100 percent)")
