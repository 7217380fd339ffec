"""Alerts delivered to a real Prometheus Alertmanager (Debian package ``prometheus-alertmanager``),
started per test on free loopback ports with a minimal configuration and a temporary storage path.

The test reads Alertmanager's own API (``GET /api/v2/alerts``) to see the firing alert, and its
notifications (a webhook receiver with ``send_resolved``) to see the resolution.
"""
from __future__ import annotations

import datetime as dt

import shutil
import socket
import subprocess
import time

import pytest
import requests

from bot.monitoring_system import MonitoringSystem
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing
from tests.fakes import FakeKraken
from tests.webhook_receiver import WebhookReceiver, free_port

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

CONFIG = """\
route:
  receiver: hook
  group_by: ['alertname', 'owner', 'broker']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {hook}
        send_resolved: true
"""


@pytest.fixture
def notifications():
    """Where Alertmanager sends its notifications."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def alertmanager(tmp_path, notifications):
    """The base URL of a running Alertmanager (stopped after the test)."""
    if BINARY is None:
        pytest.skip("prometheus-alertmanager is not installed (Debian package prometheus-alertmanager)")
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG.format(hook=notifications.url))
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen([BINARY, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
                                f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
                                "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"alertmanager did not start: {(tmp_path / 'alertmanager.log').read_text()}")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def am_alerts(url: str) -> list[dict]:
    return requests.get(f"{url}/api/v2/alerts", timeout=5).json()


def poll(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached before the deadline")
        time.sleep(0.05)


def test_firing_and_resolved_alerts_reach_alertmanager(config, managers, alertmanager, notifications):
    with FakeKraken() as kraken:
        creds = {user: kraken.add_account({"USD": "1000"}) for user in ("alice", "bob")}
        config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"),
                        alerts={"low_balance": 500, "alertmanager_url": alertmanager})
        for user in ("alice", "bob"):
            config.user(user, {"kraken": broker_on(kraken, creds[user])})
        manager = config.manager()
        managers.append(manager)
        monitoring = MonitoringSystem(manager)
        manager.refresh()
        kraken.set_balance(creds["alice"]["api_key"], "USD", "100")
        manager.refresh()
        assert monitoring.flush()

        firing = poll(lambda: am_alerts(alertmanager))
        alert, = firing
        assert alert["labels"] == {"alertname": "MultibalanceAccountBalanceLow", "type": "BALANCE_LOW",
                                   "owner": "alice", "broker": "kraken", "exchange": "kraken",
                                   "severity": "warning", "instance": socket.gethostname()}
        assert alert["status"]["state"] == "active"
        assert alert["annotations"]["summary"] == "alice kraken balance 100.00 USD is below 500.00 USD"
        assert alert["annotations"]["value"] == "100" and alert["annotations"]["threshold"] == "500"
        assert alert["annotations"]["currency"] == "USD" and "alice:kraken on kraken" in alert["annotations"]["description"]

        kraken.set_balance(creds["alice"]["api_key"], "USD", "900")
        manager.refresh()
        assert monitoring.flush()
        poll(lambda: am_alerts(alertmanager) == [])                  # resolved: no longer listed

    bodies = notifications.wait_for(lambda b: any(n["status"] == "resolved" for n in b), timeout=15)
    statuses = [(n["status"], a["labels"]["alertname"], a["labels"]["owner"]) for n in bodies for a in n["alerts"]]
    assert statuses[0] == ("firing", "MultibalanceAccountBalanceLow", "alice")
    assert statuses[-1] == ("resolved", "MultibalanceAccountBalanceLow", "alice")
    resolved = [a for n in bodies for a in n["alerts"] if a["status"] == "resolved"][0]
    # one alert, from firing to resolved (Alertmanager trims trailing zeros of the milliseconds)
    assert dt.datetime.fromisoformat(resolved["startsAt"]) == dt.datetime.fromisoformat(alert["startsAt"])
