"""Configuration: the documented format, clear errors naming file and field, credentials handling."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from bot.config import ConfigError, load_config
from bot.core.secrets import Secret
from bot.exchanges.quirks import private_min_interval


def test_example_configuration_loads():
    config = load_config("config")
    assert config.settings.base_currency == "USD"
    assert config.settings.cache_ttl_seconds == 120
    assert [u.user_id for u in config.users] == ["alice", "bob"]
    assert [a.account_id for a in config.accounts()] == [
        "master:coinbase", "master:kraken", "alice:coinbase", "alice:kraken", "bob:kraken"]
    assert all(a.broker.paper for a in config.accounts())


def test_defaults_without_settings(config):
    config.user("alice", {"paper": {"paper": True, "balances": {"USD": 1}}})
    loaded = config.load()
    assert loaded.settings.cache_ttl_seconds == 120
    assert private_min_interval(loaded.settings, "kraken") == 1.1
    assert loaded.master is None
    broker = loaded.users[0].brokers[0]
    assert broker.exchange == "paper" and broker.balances == {"USD": Decimal("1")}


def test_amounts_are_exact_decimals(config):
    config.user("alice", {"p": {"paper": True, "balances": {"btc": 0.1, "USD": "1234.5678901234567890"}}})
    broker = config.load().users[0].brokers[0]
    assert broker.balances == {"BTC": Decimal("0.1"), "USD": Decimal("1234.5678901234567890")}


@pytest.mark.parametrize("files, needle", [
    ({"settings.json": "{not json"}, "settings.json: malformed JSON at line 1"),
    ({"settings.json": "[]"}, "settings.json: the top level must be a JSON object"),
    ({"settings.json": {"cache_ttl_seconds": -5}}, "settings.json: field 'cache_ttl_seconds': must be > 0, got -5"),
    ({"settings.json": {"cache_ttl_seconds": "120"}}, "field 'cache_ttl_seconds': must be a number, not str"),
    ({"settings.json": {"timezone": "Mars/Olympus"}}, "field 'timezone': unknown time zone 'Mars/Olympus'"),
    ({"settings.json": {"cache_tll_seconds": 5}}, "field 'cache_tll_seconds': unknown field"),
    ({"settings.json": {"rate_limits": {"krakn": {}}}}, "field 'rate_limits.krakn': is not a ccxt exchange id"),
    ({"settings.json": {"rate_limits": {"kraken": {"min_interval_seconds": -1}}}},
     "field 'rate_limits.kraken.min_interval_seconds': must be >= 0"),
    ({"users/alice.json": {"brokers": {}}}, "alice.json: field 'user_id': is required"),
    ({"users/alice.json": {"user_id": "bob"}}, "alice.json: field 'user_id': 'bob' differs from the file name 'alice'"),
    ({"users/master.json": {"user_id": "master"}}, "field 'user_id': 'master' is reserved"),
    ({"users/admin.json": {"user_id": "admin"}}, "field 'user_id': 'admin' is reserved"),
    ({"users/alice.json": {"user_id": "alice", "enabled": "yes"}}, "field 'enabled': must be true or false, not str"),
    ({"users/alice.json": {"user_id": "alice", "brokers": {"kraken": {"exchange": "krakken"}}}},
     "alice.json: field 'brokers.kraken.exchange': 'krakken' is not a ccxt exchange id"),
    ({"users/alice.json": {"user_id": "alice", "brokers": {"p": {"paper": True, "balances": {"USD": -3}}}}},
     "field 'brokers.p.balances.USD': must be >= 0, got -3"),
    ({"users/alice.json": {"user_id": "alice", "brokers": {"p": {"paper": True, "prices": {"BTC": 0}}}}},
     "field 'brokers.p.prices.BTC': must be > 0"),
    ({"users/alice.json": {"user_id": "alice", "brokers": {"kraken": {"api_url": "ftp://x"}}}},
     "field 'brokers.kraken.api_url': must start with http:// or https://"),
    ({"users/alice.json": {"user_id": "alice", "brokers": {"kraken": {"api_sercet_env": "X"}}}},
     "field 'brokers.kraken.api_sercet_env': unknown field"),
    ({"master.json": {"brokers": []}}, "master.json: field 'brokers': must be an object, not list"),
])
def test_bad_configuration_names_file_and_field(tmp_path, files, needle):
    root = tmp_path / "config"
    (root / "users").mkdir(parents=True)
    for name, content in files.items():
        (root / name).write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ConfigError) as info:
        load_config(root, environ={})
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_duplicate_users_refused(config):
    config.user("alice", {})
    (config.root / "users" / "Alice.json").write_text(json.dumps({"user_id": "Alice"}))
    (config.root / "users" / "alice2.json").write_text(json.dumps({"user_id": "alice2"}))
    # A case-only difference names the same user on case-insensitive systems and to people.
    with pytest.raises(ConfigError, match="duplicate user"):
        config.load()


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="configuration directory not found"):
        load_config(tmp_path / "nope")


def test_credentials_from_environment_and_dotenv(config):
    config.user("alice", {"kraken": {"api_key_env": "ALICE_KEY", "api_secret_env": "ALICE_SECRET"}})
    (config.root / ".env").write_text("ALICE_KEY=from-dotenv\nALICE_SECRET=dotenv-secret\n")
    broker = config.load(environ={"ALICE_KEY": "from-env"}).users[0].brokers[0]
    assert broker.credentials.api_key.reveal() == "from-env"  # the real environment wins
    assert broker.credentials.api_secret.reveal() == "dotenv-secret"


def test_missing_credentials_make_only_that_account_not_configured(config):
    config.user("alice", {
        "kraken": {"api_key_env": "NOPE_KEY", "api_secret_env": "NOPE_SECRET"},
        "okx": {"api_key": "k", "api_secret": "s"},  # OKX needs a passphrase too
        "paper": {"paper": True, "balances": {"USD": 5}},
    })
    kraken, okx, paper = config.load().users[0].brokers
    assert kraken.credentials is None and "NOPE_KEY is not set" in kraken.missing_credentials
    assert okx.credentials is None and "passphrase" in okx.missing_credentials
    assert paper.credentials is None and paper.missing_credentials is None


def test_secrets_never_show_in_repr_or_str(config):
    config.user("alice", {"kraken": {"api_key": "KEY-1234567", "api_secret": "SECRET-7654321"}})
    loaded = config.load()
    broker = loaded.users[0].brokers[0]
    for text in (repr(loaded), str(loaded), repr(broker), repr(broker.credentials), f"{broker.credentials.api_key}"):
        assert "KEY-1234567" not in text and "SECRET-7654321" not in text
    assert broker.credentials.api_key == Secret("KEY-1234567")
