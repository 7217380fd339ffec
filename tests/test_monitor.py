"""The headless monitor (python -m bot.monitor) as a subprocess against the loopback fake Kraken."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from decimal import Decimal as D

import pytest

from bot.store import BalanceStore, default_database_url
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing
from tests.monitor_process import ROOT, MonitorProcess, value_of

ALICE = {"owner": "alice", "broker": "kraken", "exchange": "kraken"}




def quick_config(config, kraken, **settings):
    """alice on the fake Kraken; the scheduler refreshes every 0.3 s."""
    creds = kraken.add_account({"USD": "100"})
    config.settings(**{**FAST_SETTINGS, "cache_ttl_seconds": 0.3, "rate_limits": no_spacing("kraken"), **settings})
    config.user("alice", {"kraken": broker_on(kraken, creds)})
    return creds


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_monitor_refreshes_serves_metrics_and_stops_cleanly(config, kraken, stop_signal):
    creds = quick_config(config, kraken)
    with MonitorProcess(config.root) as monitor:
        monitor.wait_for(lambda s: value_of(s, "multibalance_account_value", **ALICE) == 100, what="alice at 100")
        kraken.set_balance(creds["api_key"], "USD", "250")
        samples = monitor.wait_for(lambda s: value_of(s, "multibalance_account_value", **ALICE) == 250 and s,
                                   what="alice at 250 after a scheduled refresh")
        assert value_of(samples, "multibalance_account_up", **ALICE) == 1
        assert value_of(samples, "multibalance_fetch_duration_seconds_count", exchange="kraken") >= 2
        status, body = monitor.get("/healthz")
        assert status == 200 and json.loads(body) == {  # the one /healthz shape (bot.app.ops), as the web app's
            "status": "ok", "scheduler": {"started": True, "running": True},
            "store": {"enabled": True, "ok": True, "dialect": "sqlite"},
            "readers": {"keys": 1, "here": 1, "elsewhere": 0, "unheld": 0}}  # the monitor reads alice's key
        assert monitor.get("/nope")[0] == 404
        assert monitor.stop(stop_signal) == 0
    log = monitor.log
    assert "Traceback" not in log and "stopped" in monitor.lines[-1], log
    assert creds["api_key"] not in log and creds["api_secret"] not in log
    assert kraken.violations == {k: 0 for k in kraken.violations}
    # the history was written before the exit
    store = BalanceStore(default_database_url(config.root))
    try:
        taken_at, balance = store.last_snapshots()["alice:kraken"]
        assert balance == D("250")
    finally:
        store.close()


def test_monitor_scrape_reads_nothing(config, kraken):
    """Scrapes between refreshes cause no exchange call: the scheduler alone reads."""
    quick_config(config, kraken, cache_ttl_seconds=3600)  # one refresh at start, the next in an hour
    with MonitorProcess(config.root) as monitor:
        monitor.wait_for(lambda s: value_of(s, "multibalance_account_up", **ALICE) == 1, what="alice up")
        calls = kraken.stats()
        for _ in range(5):
            monitor.samples()
        assert kraken.stats() == calls
        assert monitor.stop() == 0


def run_monitor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.monitor", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_configuration_error_is_one_line_and_exit_2(config, tmp_path):
    result = run_monitor("--config", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing'}: configuration directory not found"]
    config.settings(metrics={"max_user_accounts": -5})
    result = run_monitor("--config", str(config.root))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "field 'metrics.max_user_accounts': must be >= 0" in lines[0], result.stderr


def test_usage_error_and_busy_port_exit_2(config, kraken):
    result = run_monitor("--metrics-port", "many")
    assert result.returncode == 2 and result.stderr.startswith("error: argument --metrics-port")
    quick_config(config, kraken)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_monitor("--config", str(config.root), "--metrics-port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: cannot serve metrics on 127.0.0.1:{port}: Address already in use"]
    assert "Traceback" not in result.stderr
    assert kraken.stats()["private_calls"] == 0  # refused before the scheduler started
