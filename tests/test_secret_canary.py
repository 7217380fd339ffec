"""Canaries: recognisable fake secrets in every secret field, looked for everywhere they must not be.

The secret fields: API keys, secrets and passphrases (literal and from the environment),
``web.secret_key``, ``web.tokens`` hashes, a webhook URL's path and query, the Alertmanager URL's
path and the password of a ``database_url``. None may appear in the ``repr``/``str`` of any
configuration object, in any DEBUG log line of a full run (reads through ccxt from a loopback
fake Kraken, an alert delivered to a loopback webhook and Alertmanager), or in any error text.
"""
from __future__ import annotations

import hashlib
import json
import logging
import socket
import time

import pytest

from bot.alerts.system import MonitoringSystem
from bot.app import cli
from bot.config import ConfigError
from bot.store import BalanceStore, StoreOpenError
from bot.views.metrics import metrics_for, render_metrics
from bot.views.report import build_report, report_json
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing
from tests.fakes import FakeKraken
from tests.webhook_receiver import WebhookReceiver

WEB_SECRET = "CANARY-WEB-SECRET-KEY-5f1e"
TOKEN_HASH = hashlib.sha256(b"CANARY-API-TOKEN-77aa").hexdigest()
HOOK_PATH = "CANARY-HOOK-PATH-0c3d"
HOOK_QUERY = "CANARY-HOOK-QUERY-91b2"
AM_PATH = "CANARY-ALERTMANAGER-PATH-4e8f"
PASSPHRASE = "CANARY-PASSPHRASE-d00d"
DB_PASSWORD = "CANARY-DB-PASSWORD-3c3c"
MISSING_KEY_VAR = "CANARY_UNSET_KEY_VAR"  # a name, and names may be shown: not a canary


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def leaks(text: str, canaries) -> list[str]:
    return [c for c in canaries if c in text]


@pytest.fixture
def kraken():
    with FakeKraken() as fake:
        yield fake


def write_canary_config(config, kraken, hook_base: str, alertmanager_base: str, **settings) -> dict:
    """alice: literal key, secret and passphrase; bob: key and secret from the environment;
    carol: a key whose reads fail; dave: a variable that is not set. Returns the environment
    and every canary value."""
    alice, bob, carol = kraken.add_account({"USD": "100"}), kraken.add_account({"USD": "200"}), kraken.add_account()
    kraken.inject("invalid_key", api_key=carol["api_key"], count=100)
    env = {"BOB_KEY": bob["api_key"], "BOB_SECRET": bob["api_secret"]}
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"), **settings,
                    web={"secret_key": WEB_SECRET, "tokens": {TOKEN_HASH: "admin"}},
                    alerts={"low_balance": 500, "webhook_retries": 0,
                            "webhooks": [{"url": f"{hook_base}/{HOOK_PATH}?token={HOOK_QUERY}"}],
                            "alertmanager_url": f"{alertmanager_base}/{AM_PATH}"})
    config.user("alice", {"kraken": broker_on(kraken, alice, passphrase=PASSPHRASE)})
    config.user("bob", {"kraken": {"exchange": "kraken", "api_url": kraken.url,
                                   "api_key_env": "BOB_KEY", "api_secret_env": "BOB_SECRET"}})
    config.user("carol", {"kraken": broker_on(kraken, carol)})
    config.user("dave", {"kraken": {"api_url": kraken.url, "api_key_env": MISSING_KEY_VAR, "api_secret_env": "X"}})
    canaries = [WEB_SECRET, TOKEN_HASH, TOKEN_HASH.upper(), HOOK_PATH, HOOK_QUERY, AM_PATH, PASSPHRASE,
                *(acct[item] for acct in (alice, bob, carol) for item in ("api_key", "api_secret"))]
    return {"env": env, "canaries": canaries}


def config_objects(loaded):
    settings = loaded.settings
    yield from (loaded, settings, settings.alerts, settings.web, *settings.alerts.webhooks)
    for user in loaded.users:
        yield user
        for broker in user.brokers:
            yield broker
            yield broker.credentials


def test_repr_and_str_of_the_configuration_show_no_secret(config, kraken):
    written = write_canary_config(config, kraken, "https://hooks.example.com", "http://127.0.0.1:9093",
                                  database_url=f"postgresql+psycopg://mb:{DB_PASSWORD}@db.example.com/mb")
    loaded = config.load(environ=written["env"])
    canaries = written["canaries"] + [DB_PASSWORD]
    shown = 0
    for item in config_objects(loaded):
        for text in (repr(item), str(item)):
            assert leaks(text, canaries) == [], (type(item).__name__, text)
            shown += 1
    assert shown > 10
    # what may be shown still is: hosts, the user of the database, the token count
    settings = repr(loaded.settings)
    assert "https://hooks.example.com/…" in settings and "http://127.0.0.1:9093/…" in settings
    assert "postgresql+psycopg://mb:***@db.example.com/mb" in settings and "tokens=1" in settings


def test_a_debug_log_of_a_full_run_shows_no_secret(config, kraken, managers, caplog, capsys):
    with WebhookReceiver() as hook, WebhookReceiver() as alertmanager:
        base = hook.url.split("/hook/")[0]
        written = write_canary_config(config, kraken, base, alertmanager.url.split("/hook/")[0])
        caplog.set_level(logging.DEBUG)
        manager = config.manager(environ=written["env"])
        managers.append(manager)
        monitoring = MonitoringSystem(manager, clock=time.time)
        metrics_for(manager)
        manager.refresh()
        bodies = hook.wait_for(lambda b: len(b) >= 2)          # alice and bob are below 500: BALANCE_LOW
        alertmanager.wait_for(lambda b: len(b) >= 1)
        monitoring.stop(timeout=10)
        outputs = [json.dumps(report_json(build_report(manager)), default=str), render_metrics(manager).decode()]
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    lines = [formatter.format(record) for record in caplog.records]
    out, err = capsys.readouterr()
    everything = "\n".join(lines + outputs + [out, err, json.dumps(bodies)])
    assert leaks(everything, written["canaries"]) == []
    # the run did what it is said to: real request lines logged (paths withheld), alerts sent,
    # the failing and unconfigured accounts reported by class and variable name
    urllib3_lines = [line for line in lines if line.startswith("urllib3.connectionpool DEBUG")]
    assert any('"POST /… HTTP/1.1" 204' in line for line in urllib3_lines), urllib3_lines
    assert {b["user_id"] for b in bodies} >= {"alice", "bob"}
    report = json.loads(outputs[0])
    by_owner = {a["owner"]: a for a in report["accounts"]}
    assert by_owner["carol"]["status"] == "error" and by_owner["carol"]["error"].startswith("AuthenticationError")
    assert by_owner["dave"]["status"] == "not_configured" and MISSING_KEY_VAR in by_owner["dave"]["error"]


@pytest.mark.parametrize("broker, field", [
    ({"api_url": "https://api.kraken.com/0?key={canary}"}, "api_url"),
    ({"api_url": "https://me:{canary}@api.kraken.com"}, "api_url"),
    ({"api_url": "https://{canary}"}, "api_url"),
    ({"api_key_env": "{canary}", "api_secret_env": "S"}, "api_key_env"),
])
def test_configuration_errors_show_no_pasted_key(config, broker, field):
    canary = "CANARY+PASTED/KEY0123456789=="
    entry = {name: value.format(canary=canary) for name, value in broker.items()}
    config.user("alice", {"kraken": entry})
    with pytest.raises(ConfigError) as error:
        config.load()
    assert f"field 'brokers.kraken.{field}'" in str(error.value)
    assert canary not in str(error.value) and "PASTED" not in str(error.value)


@pytest.mark.parametrize("alerts", [
    {"webhooks": [{"url": "https:///{canary}"}]},
    {"webhooks": [{"url": "ftp://hooks.example.com/{canary}"}]},
    {"alertmanager_url": "alertmanager:9093/{canary}"},
])
def test_alert_url_errors_show_no_token(config, alerts):
    canary = "CANARY-WEBHOOK-TOKEN-1234"
    config.settings(alerts=json.loads(json.dumps(alerts).replace("{canary}", canary)))
    with pytest.raises(ConfigError) as error:
        config.load()
    assert "field 'alerts." in str(error.value) and canary not in str(error.value)


def test_a_database_that_cannot_be_opened_shows_no_password(config, capsys):
    url = f"postgresql+psycopg://mb:{DB_PASSWORD}@127.0.0.1:{closed_port()}/mb"
    with pytest.raises(StoreOpenError) as error:
        BalanceStore(url)
    message = str(error.value)
    assert DB_PASSWORD not in message and "\n" not in message
    assert message.startswith("postgresql+psycopg://mb:***@127.0.0.1:") and "/mb: " in message
    config.settings(database_url=url).user("alice", {"paper": {"paper": True, "balances": {"USD": 1}}})
    assert cli.main(["--config", str(config.root)]) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error: ") and err.count("\n") == 1 and "field 'database_url'" in err
    assert DB_PASSWORD not in out + err
