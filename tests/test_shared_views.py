"""Honest staleness from the shared store: the CLI, the web and the metrics show the state the live
reader wrote (``stale 6m (RequestTimeout)``), /healthz says degraded when no live process reads a
key, a fresh CLI process keeps the last good value of a failing account, and ``fetch.role`` is
validated. SQLite and PostgreSQL where the store matters.

The "other process" that reads is a `LeaseKeeper` plus a `TruthStore` write in the test: the same
parts a reader uses, holding the key's lease while the CLI and the web app follow.
"""
from __future__ import annotations

import json
import time
from decimal import Decimal as D

import pytest

from bot.balances.leases import LeaseKeeper
from bot.config import ConfigError, load_config
from bot.core.state import AccountState, Holding, Status
from bot.store import BalanceStore
from bot.store.truth import TruthStore
from tests.conftest import FAST_SETTINGS, broker_on
from tests.monitor_process import value_of
from tests.shared_processes import run_cli
from web import close_app, create_app

ALICE = "alice:kraken"
SIX_MINUTES_AGO = 6 * 60 + 20


def alice_config(config, kraken, database_url, **settings):
    creds = kraken.add_account({"USD": "750"})
    config.settings(**{**FAST_SETTINGS, "database_url": database_url, "first_read_timeout_seconds": 2, **settings})
    config.user("alice", {"kraken": broker_on(kraken, creds)})
    return creds


class OtherReader:
    """Another process that holds alice's key and wrote a state for her."""

    def __init__(self, config, database_url):
        loaded = load_config(config.root, environ={})
        account = loaded.accounts()[0]
        self.store = BalanceStore(database_url)
        self.truth = TruthStore(self.store)
        self.keeper = LeaseKeeper(self.truth, "elsewhere:4242/beef", "reader",
                                  {ALICE: account.broker.credentials.api_key.fingerprint()}).start()

    def publish(self, state: AccountState) -> None:
        self.truth.publish([state], self.keeper.identity)

    def close(self) -> None:
        self.keeper.stop()
        self.store.close()


@pytest.fixture
def other(config, kraken, database_url):
    alice_config(config, kraken, database_url)
    reader = OtherReader(config, database_url)
    yield reader
    reader.close()


def stale_alice(age: float = SIX_MINUTES_AGO) -> AccountState:
    return AccountState(ALICE, "alice", "kraken", "kraken", Status.STALE, D("750.00"),
                        {"USD": Holding(D("750.00"), D("1"), D("750.00"))}, (), time.time() - age,
                        "RequestTimeout: kraken POST https://api.kraken.com/0/private/BalanceEx timed out",
                        "RequestTimeout")


def test_the_cli_shows_the_stored_state_of_the_live_reader(other, config, kraken):
    other.publish(stale_alice())
    result = run_cli(config.root)
    assert result.returncode == 1, result.stderr  # printed, but an account is not fresh
    line, = [ln for ln in result.stdout.splitlines() if "KRAKEN" in ln]
    assert line.split() == ["KRAKEN", "$750.00", "stale", "6m", "(RequestTimeout)"]
    report = json.loads(run_cli(config.root, "--json").stdout)["accounts"][0]
    assert report["status"] == "stale" and report["error_class"] == "RequestTimeout" and report["value"] == 750.0
    assert report["age_seconds"] >= SIX_MINUTES_AGO
    assert kraken.stats()["private_calls"] == 0  # the live reader holds the key: the CLI never calls


def metric_samples(client) -> dict:
    from prometheus_client.parser import text_string_to_metric_families
    return {(s.name, frozenset(s.labels.items())): s.value for f in
            text_string_to_metric_families(client.get("/metrics").get_data(as_text=True)) for s in f.samples}


def test_the_web_app_and_its_metrics_show_the_stored_state(other, config, kraken):
    other.publish(stale_alice())
    app = create_app(config.load(), environ={})  # no scheduler (python -m web --no-scheduler)
    try:
        client = app.test_client()
        user, = client.get("/api/users").get_json()["users"]
        status = user["status"]["kraken"]
        assert user["brokers"]["kraken"] == 750.0 and status["status"] == "stale"
        assert status["error_class"] == "RequestTimeout" and status["age_seconds"] >= SIX_MINUTES_AGO
        samples = metric_samples(client)
        assert value_of(samples, "multibalance_account_up", owner="alice", broker="kraken") == 0
        assert value_of(samples, "multibalance_account_value", owner="alice", broker="kraken") == 750.0
        last = value_of(samples, "multibalance_account_last_success_timestamp_seconds", owner="alice", broker="kraken")
        assert time.time() - last >= SIX_MINUTES_AGO
        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.get_json()["readers"] == {"keys": 1, "here": 0, "elsewhere": 1, "unheld": 0}

        fresh = AccountState(ALICE, "alice", "kraken", "kraken", Status.OK, D("800.00"),
                             {"USD": Holding(D("800.00"), D("1"), D("800.00"))}, (), time.time())
        other.publish(fresh)  # the reader's next read: the app's state sees it within a second ...
        deadline = time.monotonic() + 1.0
        while value_of(metric_samples(client), "multibalance_account_value", owner="alice", broker="kraken") != 800.0:
            assert time.monotonic() < deadline, "the web app's state did not follow within 1 s"
            time.sleep(0.02)  # polling a deadline, not synchronising
        # ... and /api/users, rebuilt at most once per web.payload_max_age_seconds (issue 15), within that
        deadline = time.monotonic() + app.extensions["multibalance"].web.payload_max_age_seconds + 1.0
        while client.get("/api/users").get_json()["users"][0]["brokers"]["kraken"] != 800.0:
            assert time.monotonic() < deadline, "/api/users did not follow within payload_max_age_seconds"
            time.sleep(0.05)  # polling a deadline, not synchronising
    finally:
        close_app(app)
    assert kraken.stats()["private_calls"] == 0


def test_healthz_is_degraded_when_no_live_process_reads_a_key(config, kraken, database_url):
    alice_config(config, kraken, database_url, fetch={"role": "follower"})
    app = create_app(config.load(), environ={})
    try:
        response = app.test_client().get("/healthz")
    finally:
        close_app(app)
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "degraded" and body["readers"] == {"keys": 1, "here": 0, "elsewhere": 0, "unheld": 1}
    assert body["store"]["ok"] is True


def test_a_follower_never_calls_an_exchange(config, kraken, database_url):
    alice_config(config, kraken, database_url, fetch={"role": "follower"})
    result = run_cli(config.root, "--refresh")
    assert result.returncode == 1 and "not read yet" in result.stdout, result.stdout + result.stderr
    assert kraken.stats()["private_calls"] == 0


def test_a_fresh_cli_process_shows_the_last_good_value_of_a_failing_account(config, kraken, database_url):
    creds = alice_config(config, kraken, database_url, first_read_timeout_seconds=30)
    first = run_cli(config.root)  # no live reader: the CLI takes the key and reads itself
    assert first.returncode == 0 and "$750.00" in first.stdout, first.stdout + first.stderr
    kraken.inject("http_500", api_key=creds["api_key"], count=10)
    second = run_cli(config.root, "--refresh")  # a new process: its previous state is the stored one
    assert second.returncode == 1
    line, = [ln for ln in second.stdout.splitlines() if "KRAKEN" in ln]
    assert line.split()[:3] == ["KRAKEN", "$750.00", "stale"] and line.endswith("(ExchangeNotAvailable)"), line
    assert kraken.violations == {name: 0 for name in kraken.violations}


def test_fetch_role_is_validated_naming_file_and_field(config):
    config.settings(fetch={"role": "boss"})
    with pytest.raises(ConfigError) as error:
        config.load()
    assert str(error.value) == (f"{config.root / 'settings.json'}: field 'fetch.role': must be one of auto, reader, "
                                f"follower, got 'boss'")
    config.settings(fetch={"roles": "auto"})
    with pytest.raises(ConfigError, match=r"field 'fetch.roles': unknown field"):
        config.load()
    config.settings(fetch={"role": "reader"})
    assert config.load().settings.fetch.role == "reader"
