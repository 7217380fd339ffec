"""What the fetch plane tells about the exchanges' limits: the round estimate against the TTL
(log once, /healthz), throttling and pauses (metrics), and the settings that change the limits."""
from __future__ import annotations

import json
import logging

import pytest

from bot.app import ops
from bot.multi_account_broker_manager import MultiAccountBrokerManager
from bot.config import ConfigError, load_config
from bot.exchanges.limits import effective_limits
from bot.views.metrics import render_metrics
from tests.conftest import no_spacing
from tests.fakes import FakeBinance
from tests.fetch_support import auto_broker, binance_key, write_config


def test_a_round_longer_than_the_ttl_is_said_once_and_never_burst(tmp_path, caplog):
    brokers = {f"b{i}": {"exchange": "binance", "api_url": "http://127.0.0.1:9", "api_key": binance_key(i),
                         "api_secret": "s" * 64} for i in range(2000)}
    root = write_config(tmp_path, {"whale": brokers}, cache_ttl_seconds=120)
    with caplog.at_level(logging.WARNING, logger="bot.balances.service"):
        manager = MultiAccountBrokerManager(load_config(root, environ={}), history=False)
        report = manager.service.budget_report(log_over_budget=True)   # asked again: not logged again
        health = json.loads(ops.healthz(manager, scheduler_expected=False).body)
        manager.close()
    entry = report["binance"]
    assert health["status"] == "ok" and health["budget"] == {"binance": {"round_seconds": 422, "ttl_seconds": 120}}
    # 2,000 × 20 weight + one ticker round (80) at 95 % of 6,000 weight per minute
    assert entry["round_seconds"] == 422 and entry["ttl_seconds"] == 120 and entry["accounts"] == 2000
    warnings = [r.getMessage() for r in caplog.records if "round" in r.getMessage()]
    assert len(warnings) == 1 and "binance" in warnings[0] and "source_address" in warnings[0]


def test_throttling_and_pauses_reach_the_metrics(config, managers):
    with FakeBinance(auto_accounts=True) as fake:
        users = {"alice": binance_key(1), "bob": binance_key(2)}
        config.settings(retries=1, retry_backoff_seconds=0.01, request_timeout_seconds=5,
                        rate_limits=no_spacing("binance"))
        for user_id, key in users.items():
            config.user(user_id, {"binance": auto_broker(fake, key)})
        manager = config.manager()
        managers.append(manager)
        fake.inject("http_429", binance_key(1), count=1)        # Retry-After: 1
        states = {s.owner: s for s in manager.refresh()}
        text = render_metrics(manager).decode()
    assert states["alice"].status.value == "ok" and states["bob"].status.value == "ok"   # retried after the pause
    assert 'multibalance_exchange_throttled_total{exchange="binance",reason="http_429"} 1' in text
    paused = [line for line in text.splitlines() if line.startswith("multibalance_exchange_paused_until")]
    assert len(paused) == 1 and float(paused[0].split()[-1]) > 0
    assert "multibalance_exchange_round_seconds{exchange=\"binance\"}" in text


def test_rate_limit_settings_change_the_limits(config):
    config.settings(rate_limits={"binance": {"weight_per_minute": 1200}, "kraken": {"tier": "pro"},
                                 "okx": {"public_min_interval_seconds": 0.5}}, fetch={"source_address": "127.0.0.2"})
    settings = config.load().settings
    assert effective_limits("binance", settings, 50).weight_limit == 1200
    assert effective_limits("kraken", settings, 1000).key_counter.maximum == 20
    assert effective_limits("kraken", settings, 1000).key_counter.decay_per_second == 1.0
    assert effective_limits("okx", settings, 110).public_interval == 0.5
    assert effective_limits("bitstamp", settings, 1000).public_interval == 1.0   # ccxt's rateLimit
    assert effective_limits("kraken", settings, 1000, time_scale=10).key_interval == pytest.approx(0.11)
    assert settings.fetch.source_address == "127.0.0.2"


@pytest.mark.parametrize("settings, message", [
    ({"rate_limits": {"kraken": {"tier": "gold"}}}, "field 'rate_limits.kraken.tier': must be one of"),
    ({"rate_limits": {"binance": {"tier": "pro"}}}, "(kraken only)"),
    ({"rate_limits": {"binance": {"weight_per_minute": 0}}}, "field 'rate_limits.binance.weight_per_minute': must be > 0"),
    ({"fetch": {"source_address": "my-laptop"}}, "field 'fetch.source_address': must be an IP address"),
    ({"fetch": {"max_response_bytes": 10}}, "field 'fetch.max_response_bytes': must be >= 1024"),
    ({"fetch": {"colour": "blue"}}, "field 'fetch.colour': unknown field"),
])
def test_bad_limit_settings_are_refused_naming_the_field(config, settings, message):
    config.settings(**settings)
    with pytest.raises(ConfigError, match="settings.json") as error:
        config.load()
    assert message in str(error.value)
