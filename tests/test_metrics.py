"""Prometheus metrics (bot.views.metrics): a manager on the fake Kraken, scraped through render_metrics,
parsed with prometheus_client's parser and linted by ``promtool check metrics``."""
from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal as D

import prometheus_client
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

import bot
from bot.core.state import Status
from bot.config import ConfigError
from bot.views.metrics import error_label, metrics_for, render_metrics
from bot.multi_account_broker_manager import MultiAccountBrokerManager
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing
from tests.clock import Clock

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus')")
ALICE = {"owner": "alice", "broker": "kraken", "exchange": "kraken"}
BOB = {"owner": "bob", "broker": "kraken", "exchange": "kraken"}




class Scrape:
    """A parsed scrape: ``value(name, **labels)`` is the one matching sample's value or None."""

    def __init__(self, body: bytes):
        self.body = body
        self.families = {f.name: f for f in text_string_to_metric_families(body.decode("utf-8"))}
        self.samples = [s for f in self.families.values() for s in f.samples]

    def find(self, name: str, **labels) -> list:
        return [s for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def value(self, name: str, **labels):
        found = self.find(name, **labels)
        assert len(found) <= 1, found
        return found[0].value if found else None


def scrape(manager) -> Scrape:
    return Scrape(render_metrics(manager))


def promtool_check(body: bytes) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, "check", "metrics"], input=body, capture_output=True, timeout=30)




def kraken_config(config, kraken, **settings):
    """alice: a good Kraken account; bob: one whose key the exchange refuses."""
    alice = kraken.add_account({"USD": "1000", "BTC": "0.5"})
    bob = kraken.add_account({"USD": "5"})
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"), **settings)
    config.user("alice", {"kraken": broker_on(kraken, alice)})
    config.user("bob", {"kraken": broker_on(kraken, bob)})
    return alice, bob


def test_scrape_names_labels_values_and_failed_account(config, managers, kraken):
    alice, bob = kraken_config(config, kraken)
    kraken.inject("invalid_key", api_key=bob["api_key"], count=1)
    manager = config.manager()
    managers.append(manager)
    metrics_for(manager)  # before the first read, so that every read is counted
    states = {s.owner: s for s in manager.refresh()}
    assert states["bob"].status is Status.ERROR and states["bob"].error.startswith("AuthenticationError")

    s = scrape(manager)
    assert s.value("multibalance_info", base_currency="USD", version=bot.__version__) == 1
    assert s.value("multibalance_account_value", **ALICE) == float(D("1000") + D("0.5") * 50000)
    assert s.value("multibalance_account_up", **ALICE) == 1
    assert s.value("multibalance_account_last_success_timestamp_seconds", **ALICE) == states["alice"].fetched_at
    assert s.value("multibalance_account_asset_amount", asset="BTC", **ALICE) == 0.5
    assert s.value("multibalance_account_asset_amount", asset="USD", **ALICE) == 1000
    # bob: unknown is not 0: no value, no success time, no assets; up says 0
    assert s.value("multibalance_account_up", **BOB) == 0
    assert s.find("multibalance_account_value", owner="bob") == []
    assert s.find("multibalance_account_last_success_timestamp_seconds", owner="bob") == []
    assert s.find("multibalance_account_asset_amount", owner="bob") == []
    assert s.value("multibalance_fetch_errors_total", exchange="kraken", error_class="AuthenticationError") == 1
    assert s.value("multibalance_fetch_duration_seconds_count", exchange="kraken") == 2
    assert s.value("multibalance_fetch_duration_seconds_bucket", exchange="kraken", le="+Inf") == 2
    assert 0 < s.value("multibalance_fetch_duration_seconds_sum", exchange="kraken") < 10
    assert s.value("multibalance_accounts", status="ok") == 1
    assert s.value("multibalance_accounts", status="error") == 1
    assert s.value("multibalance_accounts", status="pending") == 0
    assert s.value("multibalance_users") == 2
    assert s.value("multibalance_user_capital") == s.value("multibalance_account_value", **ALICE)
    assert s.value("multibalance_accounts_omitted") == 0
    # the label sets are exactly the documented ones
    assert {tuple(sorted(x.labels)) for x in s.find("multibalance_account_value")} == {
        ("broker", "currency", "exchange", "owner")}
    assert {x.labels["currency"] for x in s.find("multibalance_account_value")} == {"USD"}
    assert s.find("multibalance_user_capital")[0].labels == {"currency": "USD"}
    # the price the value was computed with, per exchange and asset
    assert s.value("multibalance_asset_price", exchange="kraken", asset="BTC", currency="USD") == 50000
    assert s.find("multibalance_asset_price", asset="USD") == []
    # this process's own collectors
    assert s.find("process_cpu_seconds_total") and s.find("python_info")
    assert {tuple(sorted(x.labels)) for x in s.find("multibalance_account_asset_amount")} == {
        ("asset", "broker", "exchange", "owner")}
    assert {f.type for n, f in s.families.items() if n.endswith("_total") or n in (
        "multibalance_cache_hits", "multibalance_cache_misses", "multibalance_fetch_errors")} <= {"counter"}
    assert s.families["multibalance_fetch_duration_seconds"].type == "histogram"
    # no credential anywhere in the scrape
    for creds in (alice, bob):
        assert creds["api_key"].encode() not in s.body and creds["api_secret"].encode() not in s.body


def test_registry_collect_gives_the_same_samples(config, managers, kraken):
    kraken_config(config, kraken)
    manager = config.manager()
    managers.append(manager)
    metrics = metrics_for(manager)
    manager.refresh()
    fast = scrape(manager)
    reference = Scrape(generate_latest(metrics.registry))
    key = lambda x: (x.name, tuple(sorted(x.labels.items())), x.value)  # noqa: E731
    ours = [x for x in fast.samples if x.name.startswith("multibalance_")]  # process_/python_ are prometheus_client's own
    assert ours and sorted(map(key, ours)) == sorted(map(key, reference.samples))
    assert {n for n in fast.families if n.startswith("multibalance_")} == set(reference.families)


@needs_promtool
def test_promtool_check_metrics_reports_nothing(config, managers, kraken):
    kraken_config(config, kraken)
    # a broker name that needs escaping in a label value
    config.master({'paper "x"\\y': {"paper": True, "balances": {"USD": "7"}}})
    manager = config.manager()
    managers.append(manager)
    metrics_for(manager)
    manager.refresh()
    body = render_metrics(manager)
    result = promtool_check(body)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    assert Scrape(body).value("multibalance_account_value", owner="master", broker='paper "x"\\y') == 7
    registry_result = promtool_check(generate_latest(metrics_for(manager).registry))
    assert (registry_result.returncode, registry_result.stdout, registry_result.stderr) == (0, b"", b"")


def test_scrape_never_calls_the_exchange_nor_starts_a_read(config, kraken):
    kraken_config(config, kraken)
    clock = Clock()
    manager = MultiAccountBrokerManager(config.load(), clock=clock)
    try:
        before_any_read = scrape(manager)                # nothing read yet: every account pending
        assert before_any_read.value("multibalance_accounts", status="pending") == 2
        assert before_any_read.value("multibalance_account_up", **ALICE) == 0
        assert before_any_read.find("multibalance_account_value") == []
        assert before_any_read.find("multibalance_user_capital") == []
        assert kraken.stats()["private_calls"] == kraken.stats()["public_calls"] == 0

        manager.refresh()
        calls = kraken.stats()
        clock.now += 10_000                              # every cache entry expired
        for _ in range(3):
            s = scrape(manager)
        assert s.value("multibalance_account_up", **ALICE) == 1
    finally:
        manager.close()                                  # waits for any read a scrape might have started
    assert kraken.stats() == calls


def test_cache_hits_and_misses_move(config, managers, kraken):
    kraken_config(config, kraken)
    manager = config.manager()
    managers.append(manager)
    s = scrape(manager)
    assert (s.value("multibalance_cache_hits_total"), s.value("multibalance_cache_misses_total")) == (0, 0)
    manager.get_user_balance("alice")                    # cold: misses (one per lookup), then the read
    s = scrape(manager)
    misses = s.value("multibalance_cache_misses_total")
    assert (s.value("multibalance_cache_hits_total"), misses > 0) == (0, True)
    manager.get_user_balance("alice")                    # fresh: a hit
    manager.get_user_balance("alice", "kraken")          # a hit
    s = scrape(manager)
    assert (s.value("multibalance_cache_hits_total"), s.value("multibalance_cache_misses_total")) == (2, misses)
    assert manager.cache_stats() == (2, misses)


def test_stale_account_keeps_value_and_success_time_but_is_down(config, managers, kraken):
    alice, _ = kraken_config(config, kraken)
    manager = config.manager()
    managers.append(manager)
    metrics_for(manager)
    good = {s.owner: s for s in manager.refresh()}["alice"]
    kraken.inject("http_500", api_key=alice["api_key"], count=10)
    stale = {s.owner: s for s in manager.refresh()}["alice"]
    assert stale.status is Status.STALE
    s = scrape(manager)
    assert s.value("multibalance_account_up", **ALICE) == 0
    assert s.value("multibalance_account_value", **ALICE) == float(good.value)
    assert s.value("multibalance_account_last_success_timestamp_seconds", **ALICE) == good.fetched_at
    assert s.value("multibalance_accounts", status="stale") == 1
    label = error_label(stale.error_class)
    assert label != "Other" and label == stale.error_class and stale.error.startswith(label + ":")
    assert s.value("multibalance_fetch_errors_total", exchange="kraken", error_class=label) == 1


def test_not_configured_account_has_no_up_series_and_no_value(config, managers, kraken):
    config.settings(**FAST_SETTINGS)
    config.user("carol", {"kraken": {"api_key_env": "CAROL_KEY", "api_secret_env": "CAROL_SECRET"}})
    manager = config.manager(environ={})
    managers.append(manager)
    manager.refresh()
    s = scrape(manager)
    carol = {"owner": "carol", "broker": "kraken", "exchange": "kraken"}
    assert s.find("multibalance_account_up", **carol) == []   # nothing is down: it was never set up
    assert s.find("multibalance_account_value", owner="carol") == []
    assert s.value("multibalance_accounts", status="not_configured") == 1
    assert s.find("multibalance_fetch_errors_total") == []  # not a read, not a fetch error
    assert b"CAROL_KEY" not in s.body


def paper(usd: str, **more) -> dict:
    return {"paper": True, "balances": {"USD": usd, **more}, "prices": {"BTC": "50000"}}


def test_user_account_cap_keeps_whole_users_and_counts_the_rest(config, managers):
    config.settings(metrics={"max_user_accounts": 3})
    config.master({"kraken": paper("1")})
    config.user("u1", {"kraken": paper("10"), "coinbase": paper("20")})
    config.user("u2", {"kraken": paper("30")})
    config.user("u3", {"kraken": paper("40"), "coinbase": paper("50")})  # does not fit: cut here
    config.user("u4", {"kraken": paper("60")})
    manager = config.manager()
    managers.append(manager)
    manager.refresh()
    s = scrape(manager)
    owners = {x.labels["owner"] for x in s.find("multibalance_account_up")}
    assert owners == {"master", "u1", "u2"}
    assert {x.labels["owner"] for x in s.find("multibalance_account_asset_amount")} == owners
    assert s.value("multibalance_accounts_omitted") == 3
    assert s.value("multibalance_user_capital") == 210        # totals still include everyone
    assert s.value("multibalance_accounts", status="ok") == 7
    assert s.value("multibalance_users") == 4


def test_asset_series_can_be_switched_off(config, managers):
    config.settings(metrics={"assets": False})
    config.user("u1", {"kraken": paper("10", BTC="0.1")})
    manager = config.manager()
    managers.append(manager)
    manager.refresh()
    s = scrape(manager)
    assert s.find("multibalance_account_asset_amount") == []
    assert s.value("multibalance_account_value", owner="u1") == 5010


@pytest.mark.parametrize("metrics, problem", [
    ({"max_user_accounts": -1}, "field 'metrics.max_user_accounts': must be >= 0"),
    ({"max_user_accounts": "10"}, "field 'metrics.max_user_accounts': must be a number"),
    ({"assets": "yes"}, "field 'metrics.assets': must be true or false"),
    ({"asset": True}, "field 'metrics.asset': unknown field"),
])
def test_metrics_settings_are_validated(config, metrics, problem):
    config.settings(metrics=metrics)
    with pytest.raises(ConfigError, match="settings.json: " + problem.replace("(", r"\(")):
        config.load()


def test_defaults(config):
    settings = config.settings().load().settings
    assert (settings.metrics.assets, settings.metrics.max_user_accounts) == (True, 1000)


class FiredCounts:
    """Stands in for the monitoring system's counting interface (``fired_counts``)."""

    def __init__(self, counts=None, error=None):
        self.counts, self.error = counts or {}, error

    def fired_counts(self):
        if self.error:
            raise self.error
        return self.counts


def test_alerts_fired_by_type(config, managers):
    from enum import Enum

    class Kind(str, Enum):
        LOW = "BALANCE_LOW"

    config.user("u1", {"kraken": paper("10")})
    manager = config.manager()
    managers.append(manager)
    assert scrape(manager).find("multibalance_alerts_fired_total") == []  # nothing watched yet
    metrics_for(manager).watch_alerts(FiredCounts({Kind.LOW: 3, "BALANCE_DROP": 1}))
    s = scrape(manager)
    assert s.value("multibalance_alerts_fired_total", type="BALANCE_LOW") == 3
    assert s.value("multibalance_alerts_fired_total", type="BALANCE_DROP") == 1
    metrics_for(manager).watch_alerts(FiredCounts(error=RuntimeError("broken")))
    s = scrape(manager)                                   # a broken source does not break the scrape
    assert s.find("multibalance_alerts_fired_total") == [] and s.value("multibalance_users") == 1


def test_one_registry_per_manager_never_the_global_one(config, managers):
    config.user("u1", {"kraken": paper("10")})
    first, second = config.manager(), config.manager()
    managers.extend([first, second])
    assert metrics_for(first) is metrics_for(first)
    assert metrics_for(first).registry is not metrics_for(second).registry
    scrape(first)
    assert prometheus_client.REGISTRY.get_sample_value("multibalance_users") is None
    assert b"multibalance_" not in generate_latest(prometheus_client.REGISTRY)


@pytest.mark.parametrize("error_class, label", [   # the state's error_class field, bounded for a label
    ("AuthenticationError", "AuthenticationError"),
    ("RequestTimeout", "RequestTimeout"),
    ("Pending", "Pending"),
    ("something odd happened: x", "Other"),
    ("", "Other"),
    (None, "Other"),
])
def test_error_class(error_class, label):
    assert error_label(error_class) == label


def test_alerts_fired_from_the_monitoring_system(config, managers):
    from bot import monitoring_system
    config.settings(alerts={"low_balance": 50})
    config.user("u1", {"kraken": paper("10")})
    manager = config.manager()
    managers.append(manager)
    system = monitoring_system.get_monitoring_system(manager)
    metrics_for(manager).watch_alerts(system)
    s = scrape(manager)
    assert {x.labels["type"]: x.value for x in s.find("multibalance_alerts_fired_total")} == {
        "BALANCE_LOW": 0, "BALANCE_DROP": 0, "ACCOUNT_ERROR": 0}
    manager.refresh()
    assert system.flush()
    assert scrape(manager).value("multibalance_alerts_fired_total", type="BALANCE_LOW") == 1
