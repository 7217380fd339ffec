"""The monitoring system on a real manager reading a loopback fake Kraken through ccxt, with the
history store (SQLite file) and loopback webhook receivers.

Time for cooldowns and windows is an injected clock (`Clock`); nothing sleeps: tests wait on the
system's `flush()` or poll a receiver with a deadline.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from decimal import Decimal as D
from pathlib import Path

import pytest

from bot.monitoring_system import AlertLevel, AlertType, MonitoringSystem, get_monitoring_system
from bot.multi_account_broker_manager import MultiAccountBrokerManager
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing
from tests.webhook_receiver import WebhookReceiver, refused_url
from tests.clock import Clock






def setup(config, kraken, alerts, users=("alice",), usd="1000", user_alerts=None, **settings):
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"), alerts=alerts, **settings)
    creds = {}
    for user in users:
        creds[user] = kraken.add_account({"USD": usd})
        extra = {"alerts": user_alerts[user]} if user_alerts and user in user_alerts else {}
        config.user(user, {"kraken": broker_on(kraken, creds[user])}, **extra)
    return creds


def attach(config, managers, clock=None):
    manager = config.manager()
    managers.append(manager)
    return manager, MonitoringSystem(manager, clock=clock or time.time)


def summary(bodies):
    return [(b["type"], b["state"], b["user_id"], b["broker"]) for b in bodies]


def test_end_to_end_drop_then_low_then_resolved_to_a_webhook(config, managers, kraken):
    with WebhookReceiver() as hook:
        creds = setup(config, kraken, {"low_balance": 500, "drop_percent": 20, "drop_window_minutes": 60,
                                       "webhooks": [{"url": hook.url, "format": "json"}]})
        manager, monitoring = attach(config, managers)
        key = creds["alice"]["api_key"]
        manager.refresh()
        kraken.set_balance(key, "USD", "700")                 # -30 % within the hour: DROP
        manager.refresh()
        hook.wait_for(lambda b: len(b) == 1)
        kraken.set_balance(key, "USD", "400")                 # below 500: LOW (DROP still open, in cooldown)
        manager.refresh()
        hook.wait_for(lambda b: len(b) == 2)
        kraken.set_balance(key, "USD", "1000")
        manager.refresh()
        bodies = hook.wait_for(lambda b: len(b) == 4)
    assert summary(bodies[:2]) == [("BALANCE_DROP", "firing", "alice", "kraken"),
                                   ("BALANCE_LOW", "firing", "alice", "kraken")]
    assert sorted(summary(bodies[2:])) == [("BALANCE_DROP", "resolved", "alice", "kraken"),
                                           ("BALANCE_LOW", "resolved", "alice", "kraken")]
    drop = bodies[0]
    assert (D(drop["value"]), D(drop["threshold"]), drop["level"]) == (700, 800, "critical")  # decimals as strings
    assert drop["message"] == "alice kraken balance fell 30.0% from 1,000.00 to 700.00 USD within 60 min (limit 20%)"
    assert drop["timestamp"].endswith("Z")
    assert (D(bodies[1]["value"]), bodies[1]["threshold"]) == (400, "500")
    # every notification is in the alert log, newest first; fired counts by type
    monitoring.flush()
    logged = monitoring.get_recent_alerts(10)
    assert [(a.type, a.state) for a in logged][2:] == [("BALANCE_LOW", "firing"), ("BALANCE_DROP", "firing")]
    assert {a.state for a in logged[:2]} == {"resolved"}
    assert monitoring.fired_counts() == {"BALANCE_LOW": 1, "BALANCE_DROP": 1, "ACCOUNT_ERROR": 0}
    assert monitoring.open_alerts() == set()


def test_cooldown_with_an_injected_clock_and_subscribers(config, managers, kraken):
    creds = setup(config, kraken, {"low_balance": 500, "cooldown_minutes": 30})
    clock = Clock.wall()
    manager, monitoring = attach(config, managers, clock)
    seen = []
    unsubscribe = monitoring.subscribe(seen.append)
    kraken.set_balance(creds["alice"]["api_key"], "USD", "100")
    for minutes in (0, 10, 19.9, 10.1, 5):                        # reads at 0, 10, 29.9, 40, 45 min
        clock.advance(minutes=minutes)
        manager.refresh()
    monitoring.flush()
    assert [(e.type, e.state, e.repeat) for e in seen] == [(AlertType.BALANCE_LOW, "firing", False),
                                                           (AlertType.BALANCE_LOW, "firing", True)]
    assert seen[1].timestamp - seen[0].timestamp == pytest.approx(40 * 60)
    assert seen[1].started_at == seen[0].timestamp and seen[0].level is AlertLevel.WARNING
    unsubscribe()
    kraken.set_balance(creds["alice"]["api_key"], "USD", "1000")
    manager.refresh()
    monitoring.flush()
    assert len(seen) == 2
    assert monitoring.fired_counts()["BALANCE_LOW"] == 1           # repeats are not new alerts


def test_alert_state_and_drop_window_survive_a_restart(config, managers, kraken, database_url):
    """On SQLite and PostgreSQL: open alerts come back from the alert log, drop highs from the snapshots."""
    creds = setup(config, kraken, {"low_balance": 500, "drop_percent": 20, "cooldown_minutes": 60},
                  users=("alice", "bob"), database_url=database_url)
    clock = Clock.wall()
    first, monitoring = attach(config, managers, clock)
    kraken.set_balance(creds["alice"]["api_key"], "USD", "100")   # alice LOW (and a 1000 high never seen)
    first.refresh()                                               # bob 1000: a snapshot for his window
    monitoring.flush()
    assert monitoring.open_alerts() == {("BALANCE_LOW", "alice", "kraken")}
    first.close()                                                 # stops the monitoring system too
    assert monitoring.stopped

    clock.advance(minutes=20)
    second, restarted = attach(config, managers, clock)
    assert restarted.open_alerts() == {("BALANCE_LOW", "alice", "kraken")}  # from the alert log
    kraken.set_balance(creds["bob"]["api_key"], "USD", "750")     # -25 % from the 1000 in the history
    second.refresh()
    restarted.flush()
    log = [(a.type, a.state, a.user_id) for a in restarted.get_recent_alerts(10)]
    assert log == [("BALANCE_DROP", "firing", "bob"), ("BALANCE_LOW", "firing", "alice")]  # no LOW repeat yet
    clock.advance(minutes=41)                 # 61 min after alice's LOW fired: a repeat; bob's 1000 left the window
    second.refresh()
    kraken.set_balance(creds["alice"]["api_key"], "USD", "600")
    second.refresh()
    restarted.flush()
    log = [(a.type, a.state, a.user_id) for a in restarted.get_recent_alerts(4)]
    assert log[0] == ("BALANCE_LOW", "resolved", "alice")
    assert set(log[1:3]) == {("BALANCE_LOW", "firing", "alice"), ("BALANCE_DROP", "resolved", "bob")}
    assert log[3] == ("BALANCE_DROP", "firing", "bob")
    assert restarted.fired_counts() == {"BALANCE_LOW": 0, "BALANCE_DROP": 1, "ACCOUNT_ERROR": 0}


def test_account_error_after_consecutive_failed_reads(config, managers, kraken):
    creds = setup(config, kraken, {"error_reads": 2})
    manager, monitoring = attach(config, managers)
    manager.refresh()
    kraken.inject("invalid_key", api_key=creds["alice"]["api_key"], count=2)
    manager.refresh()
    assert monitoring.open_alerts() == set()
    manager.refresh()
    assert monitoring.open_alerts() == {("ACCOUNT_ERROR", "alice", "kraken")}
    manager.refresh()
    monitoring.flush()
    first, = [a for a in monitoring.get_recent_alerts(5) if a.state == "firing"]
    assert first.message == "alice kraken: 2 consecutive failed reads (AuthenticationError)"
    assert [a.state for a in monitoring.get_recent_alerts(5)] == ["resolved", "firing"]


def test_one_system_per_manager_and_no_exchange_calls(config, managers, kraken):
    setup(config, kraken, {"low_balance": 5000})
    manager = config.manager()
    managers.append(manager)
    monitoring = get_monitoring_system(manager)
    assert get_monitoring_system(manager) is monitoring
    with pytest.raises(RuntimeError, match="already has a monitoring system"):
        MonitoringSystem(manager)
    manager.refresh()
    calls = len(kraken.calls)
    monitoring.flush()
    assert len(kraken.calls) == calls                              # evaluation and delivery: no exchange call
    assert monitoring.open_alerts() == {("BALANCE_LOW", "alice", "kraken")}
    monitoring.stop()
    assert get_monitoring_system(manager) is not monitoring        # a stopped system is detached


def test_the_listener_only_enqueues(config, managers, kraken):
    setup(config, kraken, {"low_balance": 5000})
    manager, monitoring = attach(config, managers)
    entered, release = threading.Event(), threading.Event()

    def blocking(event):
        entered.set()
        release.wait(10)

    monitoring.subscribe(blocking)
    manager.refresh()
    assert entered.wait(5)                                         # a subscriber is stuck in delivery...
    started = time.monotonic()
    for _ in range(3):
        manager.refresh()                                          # ...and reads go on unhindered
    assert time.monotonic() - started < 2
    release.set()


def test_dead_and_slow_receivers_delay_neither_reads_nor_other_receivers(config, managers, kraken):
    with WebhookReceiver("hang") as slow, WebhookReceiver("error") as failing, WebhookReceiver() as fast:
        timeout = 3.0
        creds = setup(config, kraken, {
            "low_balance": 500, "webhook_timeout_seconds": timeout, "webhook_retries": 2,
            "webhook_retry_backoff_seconds": 0.05,
            "webhooks": [{"url": slow.url}, {"url": refused_url()}, {"url": failing.url}, {"url": fast.url},
                         {"url": fast.url, "format": "slack"}]})
        manager, monitoring = attach(config, managers)
        kraken.set_balance(creds["alice"]["api_key"], "USD", "100")
        started = time.monotonic()
        manager.refresh()
        read = time.monotonic() - started
        bodies = fast.wait_for(lambda b: len(b) == 2, timeout=timeout)
        delivered = max(fast.arrivals) - started
        assert read < 1.0 and delivered < timeout / 2, (read, delivered)
        assert {tuple(sorted(b)) for b in bodies} == {("text",), (
            "broker", "level", "message", "state", "threshold", "timestamp", "type", "user_id", "value")}
        failing_deadline = time.monotonic() + 5
        while failing.attempts < 3 and time.monotonic() < failing_deadline:
            time.sleep(0.01)
        assert failing.attempts == 3                                # 1 attempt + 2 retries, then given up
        slow.release()
    stop_started = time.monotonic()
    monitoring.stop(timeout=5)
    assert time.monotonic() - stop_started < 5


def test_recent_alerts_without_a_store(config, kraken):
    setup(config, kraken, {"low_balance": 5000})
    manager = MultiAccountBrokerManager(config.load(), history=False)
    try:
        monitoring = get_monitoring_system(manager)
        manager.refresh()
        monitoring.flush()
        alert, = monitoring.get_recent_alerts(5)
        assert (alert.type, alert.state, alert.value, alert.threshold) == ("BALANCE_LOW", "firing", D(1000), D(5000))
    finally:
        manager.close()
    assert monitoring.stopped


def test_default_manager_gets_one_system_and_close_stops_it(config):
    """With no argument: the module-level manager (``$BALANCES_CONFIG``), in a fresh interpreter."""
    config.settings(alerts={"low_balance": 5000}).user(
        "alice", {"paper": {"paper": True, "balances": {"USD": "10"}}})
    script = (
        "from bot.monitoring_system import get_monitoring_system\n"
        "from bot.multi_account_broker_manager import multi_account_broker_manager as m\n"
        "s = get_monitoring_system()\n"
        "assert s is get_monitoring_system(m)\n"
        "m.refresh(); s.flush()\n"
        "print(sorted(s.open_alerts()), s.fired_counts()['BALANCE_LOW'])\n"
        "m.close(); print(s.stopped)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1],
                            env={**os.environ, "BALANCES_CONFIG": str(config.root)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["[('BALANCE_LOW', 'alice', 'paper')] 1", "True"]
