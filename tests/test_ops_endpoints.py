"""One ``/metrics`` + ``/healthz`` handler (`bot.app.ops`) behind both servers: the headless
monitor (a real ``python -m bot.monitor`` process, over HTTP) and the web app answer ``/healthz``
with the same shape, and ``/metrics`` with the same content type; errors are problem bodies."""
from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request

import pytest

from bot.app import ops
from tests.monitor_process import MonitorProcess
from web import close_app, context, create_app

TOKEN = "ops-admin-token-6b1e2d"
HEALTHY = {"status": "ok", "scheduler": {"started": True, "running": True},
           "store": {"enabled": True, "ok": True, "dialect": "sqlite"}}


def shape(value):
    """The keys of a JSON body, recursively, with the type of each leaf."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    return type(value).__name__


def paper_config(config, tokens=True):
    config.settings(web={"tokens": {hashlib.sha256(TOKEN.encode()).hexdigest(): "admin"}} if tokens else {})
    config.user("alice", {"kraken": {"paper": True, "balances": {"USD": "750"}}})
    return config


def request(url, method="GET"):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_monitor_and_web_app_answer_healthz_alike(config):
    paper_config(config)
    with MonitorProcess(config.root) as monitor:
        status, headers, body = request(monitor.url + "/healthz")
        assert status == 200 and headers["Content-Type"] == ops.JSON and headers["Cache-Control"] == "no-store"
        from_monitor = json.loads(body)
        metrics_status, metrics_headers, metrics_body = request(monitor.url + "/metrics")
        assert monitor.stop() == 0
    assert from_monitor == HEALTHY

    app = create_app(config.load(), environ={}, start_scheduler=True)
    try:
        client = app.test_client()
        response = client.get("/healthz")
        assert response.status_code == 200 and response.headers["Content-Type"] == ops.JSON
        assert response.headers["Cache-Control"] == "no-store"
        from_web = response.get_json()
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        close_app(app)
    assert from_web == from_monitor == HEALTHY
    assert shape(from_web) == shape(from_monitor)
    assert metrics_status == metrics.status_code == 200
    assert metrics_headers["Content-Type"] == metrics.headers["Content-Type"]
    assert b"multibalance_account_value" in metrics_body and b"multibalance_account_value" in metrics.get_data()


def test_monitor_errors_are_problem_bodies(config):
    paper_config(config)
    with MonitorProcess(config.root) as monitor:
        status, headers, body = request(monitor.url + "/nope")
        problem = json.loads(body)
        assert status == 404 and headers["Content-Type"] == ops.PROBLEM_JSON
        assert problem["status"] == 404 and problem["instance"] == "/nope" and problem["title"] == "Not Found"
        status, headers, body = request(monitor.url + "/metrics", method="POST")
        assert status == 405 and headers["Allow"] == "GET" and json.loads(body)["status"] == 405
        assert monitor.stop() == 0


def test_web_app_without_a_scheduler_is_healthy_and_says_so(config):
    app = create_app(paper_config(config).load(), environ={})
    try:
        body = app.test_client().get("/healthz").get_json()
    finally:
        close_app(app)
    assert body == {**HEALTHY, "scheduler": {"started": False, "running": False}}


class Scheduler:
    def __init__(self, running):
        self.running = running


class Store:
    dialect = "postgresql"

    def __init__(self, error=None):
        self.error = error

    def ping(self):
        if self.error:
            raise self.error


@pytest.mark.parametrize("scheduler, store, expected, status, body", [
    (Scheduler(True), Store(), True, 200,
     {"status": "ok", "scheduler": {"started": True, "running": True},
      "store": {"enabled": True, "ok": True, "dialect": "postgresql"}}),
    (None, None, False, 200,
     {"status": "ok", "scheduler": {"started": False, "running": False}, "store": {"enabled": False}}),
    (None, Store(), True, 503,  # expected but not started (the monitor before its scheduler runs)
     {"status": "degraded", "scheduler": {"started": False, "running": False},
      "store": {"enabled": True, "ok": True, "dialect": "postgresql"}}),
    (Scheduler(False), Store(), True, 503,  # started, then stopped
     {"status": "degraded", "scheduler": {"started": True, "running": False},
      "store": {"enabled": True, "ok": True, "dialect": "postgresql"}}),
    (Scheduler(True), Store(ConnectionRefusedError("connection to 10.0.0.1 refused; password=hunter2")), True, 503,
     {"status": "degraded", "scheduler": {"started": True, "running": True},
      "store": {"enabled": True, "ok": False, "error": "ConnectionRefusedError"}}),
])
def test_health_cases(scheduler, store, expected, status, body):
    answer = ops.health(scheduler, store, scheduler_expected=expected)
    assert answer.status == status and json.loads(answer.body) == body
    assert b"hunter2" not in answer.body and b"10.0.0.1" not in answer.body


def test_a_failing_metrics_rendering_is_a_bare_500_problem(config, monkeypatch, caplog):
    app = create_app(paper_config(config).load(), environ={})

    def broken(manager):
        raise RuntimeError(f"secret detail {TOKEN}")

    monkeypatch.setattr(ops, "render_metrics", broken)
    try:
        with app.app_context():
            manager = context().manager
        answer = ops.metrics(manager)
        response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        close_app(app)
    assert answer.status == response.status_code == 500
    assert response.mimetype == ops.PROBLEM_JSON
    assert response.get_json()["detail"] == "Internal Server Error" and TOKEN not in response.get_data(as_text=True)
    assert "rendering /metrics failed" in caplog.text
