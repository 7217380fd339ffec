"""The alert flow end to end through the headless monitor: a subprocess reading the fake Kraken
on its scheduler, alerting a loopback webhook receiver as the test changes the balance."""
from __future__ import annotations

from decimal import Decimal as D


from bot.store import BalanceStore, default_database_url
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing
from tests.fakes import FakeKraken
from tests.monitor_process import MonitorProcess, value_of
from tests.webhook_receiver import WebhookReceiver

ALICE = {"owner": "alice", "broker": "kraken", "exchange": "kraken"}


def reads(samples) -> float:
    return value_of(samples, "multibalance_fetch_duration_seconds_count", exchange="kraken") or 0


def test_drop_then_low_once_within_the_cooldown_then_resolved(config):
    with FakeKraken() as kraken, WebhookReceiver() as receiver:
        creds = kraken.add_account({"USD": "1000"})
        config.settings(**FAST_SETTINGS, cache_ttl_seconds=0.3, rate_limits=no_spacing("kraken"), alerts={
            "low_balance": 100, "drop_percent": 20, "drop_window_minutes": 60, "cooldown_minutes": 60,
            "webhooks": [{"url": receiver.url, "format": "json"}], "webhook_retry_backoff_seconds": 0.05})
        config.user("alice", {"kraken": broker_on(kraken, creds)})

        def settle(monitor, value, extra_reads=3):
            """Wait until /metrics shows ``value`` and ``extra_reads`` more reads happened after it."""
            seen = monitor.wait_for(lambda s: value_of(s, "multibalance_account_value", **ALICE) == value
                                    and reads(s), what=f"alice at {value}")
            monitor.wait_for(lambda s: reads(s) >= seen + extra_reads, what=f"{extra_reads} more reads")

        def events():
            return [(b["type"], b["state"]) for b in receiver.received()]

        with MonitorProcess(config.root) as monitor:
            settle(monitor, 1000)
            assert receiver.received() == []

            kraken.set_balance(creds["api_key"], "USD", "700")          # 30 % below the peak
            settle(monitor, 700)
            receiver.wait_for(lambda bodies: len(bodies) >= 1, timeout=30)
            kraken.set_balance(creds["api_key"], "USD", "50")           # below low_balance, still dropped
            settle(monitor, 50)
            receiver.wait_for(lambda bodies: len(bodies) >= 2, timeout=30)
            assert events() == [("BALANCE_DROP", "firing"), ("BALANCE_LOW", "firing")]  # each once

            kraken.set_balance(creds["api_key"], "USD", "1000")          # back: both clear
            settle(monitor, 1000)
            receiver.wait_for(lambda bodies: len(bodies) >= 4, timeout=30)
            samples = monitor.samples()
            assert value_of(samples, "multibalance_alerts_fired_total", type="BALANCE_DROP") == 1
            assert value_of(samples, "multibalance_alerts_fired_total", type="BALANCE_LOW") == 1
            assert monitor.stop() == 0

        assert events()[:2] == [("BALANCE_DROP", "firing"), ("BALANCE_LOW", "firing")]
        assert sorted(events()[2:]) == [("BALANCE_DROP", "resolved"), ("BALANCE_LOW", "resolved")]
        drop, low = receiver.received()[:2]
        assert (drop["user_id"], drop["broker"], D(str(drop["value"]))) == ("alice", "kraken", D("700"))
        assert (low["user_id"], low["broker"], D(str(low["value"])), D(str(low["threshold"]))) == (
            "alice", "kraken", D("50"), D("100"))
        assert "Traceback" not in monitor.log
        assert creds["api_secret"] not in monitor.log and receiver.url.split("/")[-1] not in monitor.log

    store = BalanceStore(default_database_url(config.root))
    try:
        logged = store.recent_alerts(10)
    finally:
        store.close()
    assert sorted((a.type, a.state) for a in logged) == sorted(events())
