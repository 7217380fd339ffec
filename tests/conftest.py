"""Shared fixtures: configuration directories written per test, and helpers to point brokers at fakes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.config import load_config
from bot.multi_account_broker_manager import MultiAccountBrokerManager

pytest_plugins = ["tests.store_fixtures"]  # database fixtures (SQLite and PostgreSQL)

# Fast failure handling for tests: one retry, tiny backoff, short timeouts, no spacing unless a test asks.
FAST_SETTINGS = {"retries": 1, "retry_backoff_seconds": 0.01, "request_timeout_seconds": 1.0}


class ConfigBuilder:
    """Writes a configuration directory the way a user would, file by file."""

    def __init__(self, root: Path):
        self.root = root
        (root / "users").mkdir(parents=True)

    def settings(self, **values) -> "ConfigBuilder":
        self._write(self.root / "settings.json", values)
        return self

    def master(self, brokers: dict, name: str = "Master") -> "ConfigBuilder":
        self._write(self.root / "master.json", {"name": name, "brokers": brokers})
        return self

    def user(self, user_id: str, brokers: dict, **extra) -> "ConfigBuilder":
        self._write(self.root / "users" / f"{user_id}.json", {"user_id": user_id, "brokers": brokers, **extra})
        return self

    def load(self, environ=None):
        return load_config(self.root, environ=environ if environ is not None else {})

    def manager(self, environ=None) -> MultiAccountBrokerManager:
        return MultiAccountBrokerManager(self.load(environ))

    @staticmethod
    def _write(path: Path, data: dict) -> None:
        path.write_text(json.dumps(data, indent=2))


@pytest.fixture
def config(tmp_path) -> ConfigBuilder:
    return ConfigBuilder(tmp_path / "config")


@pytest.fixture
def managers():
    """Managers created by a test are closed after it."""
    created = []
    yield created
    for manager in created:
        manager.close()


def broker_on(fake, creds: dict, **extra) -> dict:
    """A broker entry reaching ``fake`` with literal credentials (tests only)."""
    entry = {"exchange": fake.name, "api_url": fake.url, "api_key": creds["api_key"], "api_secret": creds["api_secret"]}
    if creds.get("passphrase"):
        entry["passphrase"] = creds["passphrase"]
    entry.update(extra)
    return entry


def no_spacing(*exchanges: str) -> dict:
    return {ex: {"min_interval_seconds": 0, "public_min_interval_seconds": 0} for ex in exchanges}


@pytest.fixture
def kraken(request):
    """A loopback fake Kraken for one test (``KRAKEN_LATENCY`` in the test module sets its latency)."""
    from tests.fakes import FakeKraken
    with FakeKraken(latency=getattr(request.module, "KRAKEN_LATENCY", 0.0)) as fake:
        yield fake
