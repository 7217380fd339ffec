"""Issue 13's web cases, each as a test: parameters that used to give a 500, DNS rebinding in
no-token mode (and ``web.allowed_hosts``), session cookies that stop working at logout (in
every process sharing the store, and after a restart), and ``X-Frame-Options`` on HTML.

The app runs through Flask's test client on a real SQLite file (and on PostgreSQL where
``BALANCES_TEST_POSTGRES_URL`` is set); the rebinding and cross-process cases also run against
``python -m web`` over real HTTP.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from web import close_app, context, create_app

ROOT = Path(__file__).resolve().parents[1]
ADMIN_TOKEN = "hardening-admin-token-3c9a51"
ALICE_TOKEN = "hardening-alice-token-77d0e2"
SECRET = "hardening-secret-key-0123456789abcdef"
PROBLEM = "application/problem+json"
DEADLINE = 30.0


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_config(config, tokens=True, **web):
    web = {"tokens": {sha(ADMIN_TOKEN): "admin", sha(ALICE_TOKEN): "alice"} if tokens else {},
           "rate_limit_per_minute": 10_000, **web}
    config.settings(web=web)
    config.master({"kraken": {"paper": True, "balances": {"USD": "5000"}}})
    config.user("alice", {"kraken": {"paper": True, "balances": {"USD": "750"}}}, name="Alice")
    return config


@pytest.fixture
def app(config):
    app = create_app(write_config(config).load(), environ={})
    yield app
    close_app(app)


def bearer(token=ADMIN_TOKEN):
    return {"Authorization": f"Bearer {token}"}


def problem(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json(force=True)
    assert body["status"] == status and body["instance"] == response.request.path
    return body


# --- parameters that gave a 500 ---------------------------------------------------------------

BAD_PARAMETERS = [
    ("/api/accounts/alice:kraken/balance-snapshots?limit=²", "limit"),             # "²".isdigit() is True
    ("/api/accounts/alice:kraken/balance-snapshots?limit=٣", "limit"),             # int("٣") == 3
    ("/api/accounts/alice:kraken/balance-history?end_date=9999-12-31", "end_date"),
    ("/api/accounts/alice:kraken/balance-history?start_date=0001-01-01T00:00:00%2B05:00", "start_date"),
    ("/api/accounts/alice:kraken/balance-history?end_date=0001-01-01T00:00:00%2B05:00", "end_date"),
    ("/api/accounts/alice:kraken/balance-history?end_date=0001-01-01", "end_date"),
    ("/api/accounts/alice:kraken/balance-history?end_date=9999-12-31T23:59:59-05:00", "end_date"),
    ("/api/accounts/alice:kraken/balance-history?start_date=٢٠٢٥-٠١-٠١", "start_date"),
    ("/api/user_balances?user=alice&to=99991231", "to"),
    ("/api/user_balances?user=alice&to=00010105", "to"),
    ("/api/user_balances?user=alice&from=２０２５０１０１", "from"),                    # full-width digits
    ("/api/account-balances?user=alice&date=9999-12-31", "date"),
    ("/api/account-balances?user=alice&date=0001-01-01&type=month", "date"),
    ("/api/account-balances?user=alice&date=2025-0101", "date"),                   # mixed forms
]


@pytest.mark.parametrize("path, param", BAD_PARAMETERS)
def test_bad_parameter_is_a_400_naming_it(app, path, param):
    body = problem(app.test_client().get(path, headers=bearer()), 400)
    assert body["type"] == "/problems/invalid-parameter"
    assert body["invalid_params"][0]["name"] == param and param in body["detail"]


def test_dates_at_the_edges_of_the_span_are_answered(app):
    client = app.test_client()
    for path in ("/api/accounts/alice:kraken/balance-history?start_date=9998-12-01&end_date=9998-12-31",
                 "/api/accounts/alice:kraken/balance-history?start_date=1970-01-01T00:00:00%2B05:00"
                 "&end_date=1970-01-02",
                 "/api/user_balances?user=alice&from=19700101&to=19700105",
                 "/api/account-balances?user=alice&date=99981231&type=month"):
        response = client.get(path, headers=bearer())
        assert response.status_code == 200, (path, response.get_data(as_text=True))
    body = client.get("/api/accounts/alice:kraken/balance-snapshots?limit=100", headers=bearer()).get_json()
    assert body["limit"] == 100


def test_a_malformed_next_is_not_a_500(app):
    client = app.test_client()
    for target in ("//[", "http://[::1", "//[::1/x"):
        response = client.get("/login", query_string={"next": target})
        assert response.status_code == 200
        assert 'name="next" value="/users"' in response.get_data(as_text=True), target


def test_a_non_ascii_csrf_token_is_a_403_not_a_500(app):
    client = app.test_client()
    client.get("/login")
    body = problem(client.post("/login", data={"token": ALICE_TOKEN, "csrf_token": "é€"}), 403)
    assert body["type"] == "/problems/csrf-failed"
    body = problem(client.post("/logout", headers={"X-CSRF-Token": "\xe9t\xe9"}), 403)
    assert body["type"] == "/problems/csrf-failed"


# --- DNS rebinding ------------------------------------------------------------------------------------

LOOPBACK_HOSTS = ["localhost", "localhost:5000", "LOCALHOST.", "127.0.0.1", "127.0.0.1:8080", "127.1.2.3",
                  "[::1]", "[::1]:5000", "[::ffff:127.0.0.1]:5000"]
FOREIGN_HOSTS = ["rebind.evil.example", "rebind.evil.example:5000", "localhost.evil.example", "127.0.0.1.nip.io",
                 "10.0.0.7", "[::2]", "localhost:abc", "local host", "[::1", "ex\u00e4mple.com", ""]


@pytest.fixture
def open_app(config):
    """No token configured: every loopback caller is admin."""
    app = create_app(write_config(config, tokens=False).load(), environ={})
    yield app
    close_app(app)


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
def test_without_tokens_loopback_host_names_are_answered(open_app, host):
    client = open_app.test_client()
    assert client.get("/api/users", headers={"Host": host}).status_code == 200
    origin = "http://" + host
    response = client.post("/api/refresh", headers={"Host": host, "Origin": origin})
    assert response.status_code == 200 and response.get_json()["complete"] is True


@pytest.mark.parametrize("host", FOREIGN_HOSTS)
def test_without_tokens_a_foreign_host_is_refused(open_app, host):
    client = open_app.test_client()
    manager = context_of(open_app).manager
    assert manager.current_states() == []  # never read
    for method, path, headers in (("GET", "/api/users", {}), ("GET", "/api/balance", {}), ("GET", "/users", {}),
                                  ("GET", "/metrics", {}),
                                  ("POST", "/api/refresh", {"Origin": f"http://{host}"})):  # a "same-origin" POST
        body = problem(client.open(path, method=method, headers={"Host": host, **headers}), 421)
        assert body["type"] == "/problems/host-not-allowed" and body["title"] == "Host not allowed"
    assert manager.current_states() == []  # the refused refresh read nothing
    assert client.post("/api/refresh", headers={"Origin": "http://localhost"}).status_code == 200
    assert len(manager.current_states()) == 2


def test_with_tokens_any_host_is_answered_unless_allowed_hosts_is_set(config):
    write_config(config)
    app = create_app(config.load(), environ={})
    try:
        assert app.test_client().get("/api/users", headers={"Host": "balances.example", **bearer()}).status_code == 200
    finally:
        close_app(app)
    write_config(config, allowed_hosts=["Balances.Example", "10.1.2.3", "[fd00::1]"])
    app = create_app(config.load(), environ={})
    try:
        client = app.test_client()
        for host in ("balances.example", "BALANCES.EXAMPLE:8443", "10.1.2.3:80", "[fd00::1]:5000", "localhost:5000"):
            assert client.get("/api/users", headers={"Host": host, **bearer()}).status_code == 200, host
        for host in ("rebind.evil.example", "sub.balances.example", "10.1.2.4"):
            problem(client.get("/api/users", headers={"Host": host, **bearer()}), 421)
            problem(client.get("/healthz", headers={"Host": host}), 421)
    finally:
        close_app(app)


def test_without_tokens_allowed_hosts_add_names(config):
    write_config(config, tokens=False, allowed_hosts=["dashboard.internal"])
    app = create_app(config.load(), environ={})
    try:
        client = app.test_client()
        assert client.get("/api/users", headers={"Host": "dashboard.internal:5000"}).status_code == 200
        problem(client.get("/api/users", headers={"Host": "rebind.evil.example"}), 421)
    finally:
        close_app(app)


@pytest.mark.parametrize("value", [["localhost:5000"], ["https://x.example/?key=pasted-secret-1"], ["a/b"], [""], [7],
                                   ["ex\u00e4mple.com"], ["fe80::1:80:zz"], "x.example"])
def test_bad_allowed_hosts_are_refused(config, value):
    from bot.config import ConfigError
    write_config(config, allowed_hosts=value)
    with pytest.raises(ConfigError) as error:
        config.load()
    assert "settings.json" in str(error.value) and "'web.allowed_hosts" in str(error.value)
    assert "pasted-secret-1" not in str(error.value)


def raw_request(base: str, method: str, path: str, headers: dict) -> tuple[int, dict, bytes]:
    """One HTTP request with exactly these headers (http.client sends our Host, not its own)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


class WebProcess:
    """``python -m web`` on a free loopback port (a real waitress server in its own process)."""

    def __init__(self, config_dir):
        env = {k: v for k, v in os.environ.items() if not k.startswith("BALANCES_")}
        self.proc = subprocess.Popen([sys.executable, "-m", "web", "--config", str(config_dir), "--port", "0",
                                      "--no-scheduler"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()  # blocks until the server printed its address (or exited)
        assert line.startswith("listening on "), (line, self._stop())
        self.base = line.split(" ", 2)[2].rstrip("/")

    def _stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        _, err = self.proc.communicate(timeout=DEADLINE)
        return err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        err = self._stop()
        assert self.proc.returncode == 0 and "Traceback" not in err, err


def test_rebinding_over_real_http(config):
    write_config(config, tokens=False)
    with WebProcess(config.root) as server:
        port = server.base.rsplit(":", 1)[1]
        status, headers, body = raw_request(server.base, "GET", "/api/users", {"Host": "rebind.evil.example"})
        assert status == 421 and headers["Content-Type"] == PROBLEM
        assert json.loads(body)["type"] == "/problems/host-not-allowed" and b"alice" not in body
        status, _, _ = raw_request(server.base, "POST", "/api/refresh", {
            "Host": f"rebind.evil.example:{port}", "Origin": f"http://rebind.evil.example:{port}", "Content-Length": "0"})
        assert status == 421
        status, _, body = raw_request(server.base, "GET", "/api/users", {"Host": "localhost:5000"})
        assert status == 200 and json.loads(body)["master"] is not None
        status, _, _ = raw_request(server.base, "POST", "/api/refresh", {
            "Host": f"localhost:{port}", "Origin": f"http://localhost:{port}", "Content-Length": "0"})
        assert status == 200


# --- logout revokes the session -----------------------------------------------------------------------

def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, token=ALICE_TOKEN) -> str:
    """Log ``client`` in through the form; returns the page's CSRF token."""
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"token": token, "csrf_token": csrf_from(page), "next": "/users"})
    assert response.status_code == 303 and response.headers["Location"] == "/users"
    return csrf_from(client.get("/users").get_data(as_text=True))


def cookie_of(client) -> str:
    return client.get_cookie("multibalance_session").value


def with_cookie(app, cookie):
    client = app.test_client()
    client.set_cookie("multibalance_session", cookie)
    return client


def context_of(app):
    with app.app_context():
        return context()


def test_a_cookie_captured_before_logout_is_refused_after(app):
    client = app.test_client()
    csrf = login(client)
    captured = cookie_of(client)
    assert with_cookie(app, captured).get("/api/users").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    replay = with_cookie(app, captured)
    problem(replay.get("/api/users"), 401)
    assert replay.get("/users").status_code == 302
    problem(replay.post("/api/refresh", headers={"X-CSRF-Token": csrf}), 401)
    assert replay.get_cookie("multibalance_session") is None  # the dead cookie was dropped in the answer
    # logging in again works, with a new session
    again = app.test_client()
    login(again)
    assert cookie_of(again) != captured and again.get("/api/users").status_code == 200


def test_a_new_login_revokes_the_session_it_replaces(app):
    client = app.test_client()
    login(client)
    first = cookie_of(client)
    login(client, ADMIN_TOKEN)
    problem(with_cookie(app, first).get("/api/users"), 401)
    assert client.get("/api/users").get_json()["master"] is not None  # the new session is admin


def test_a_signed_session_without_a_session_id_is_refused(app):
    """A cookie signed with the app's key but made without a session id (the old format)."""
    fingerprint = context_of(app).tokens.lookup(ALICE_TOKEN)[1]
    with app.test_request_context():
        cookie = app.session_interface.get_signing_serializer(app).dumps({"tid": fingerprint, "csrf": "x"})
    problem(with_cookie(app, cookie).get("/api/users"), 401)


def test_revocation_holds_across_processes_and_restarts(config, database_url):
    """Two apps on one database (as two processes are) with one secret key: a logout in one is
    honoured by the other, and by an app started afterwards."""
    write_config(config)
    config.settings(database_url=database_url, web={"tokens": {sha(ALICE_TOKEN): "alice"}, "secret_key": SECRET})
    first, second = create_app(config.load(), environ={}), create_app(config.load(), environ={})
    try:
        client = first.test_client()
        csrf = login(client)
        captured = cookie_of(client)
        assert with_cookie(second, captured).get("/api/users").status_code == 200
        assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
        problem(with_cookie(second, captured).get("/api/users"), 401)
    finally:
        close_app(first)
        close_app(second)
    restarted = create_app(config.load(), environ={})
    try:
        problem(with_cookie(restarted, captured).get("/api/users"), 401)
        fresh = restarted.test_client()
        login(fresh)
        assert fresh.get("/api/users").status_code == 200
    finally:
        close_app(restarted)


def test_revocation_is_honoured_by_another_server_process(config):
    write_config(config)
    config.settings(web={"tokens": {sha(ALICE_TOKEN): "alice"}, "secret_key": SECRET})
    app = create_app(config.load(), environ={})
    try:
        client = app.test_client()
        csrf = login(client)
        captured = cookie_of(client)
        with WebProcess(config.root) as server:
            cookie = {"Host": "localhost", "Cookie": f"multibalance_session={captured}"}
            assert raw_request(server.base, "GET", "/api/users", cookie)[0] == 200
            assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
            status, headers, _ = raw_request(server.base, "GET", "/api/users", cookie)
            assert status == 401 and headers["Content-Type"] == PROBLEM
    finally:
        close_app(app)


def test_a_store_that_cannot_answer_fails_closed(app):
    client = app.test_client()
    login(client)
    store = context_of(app).manager.history.store

    def broken(session_id):
        raise OSError("database is gone")

    store.session_revoked = broken
    response = client.get("/api/users")
    body = problem(response, 503)
    assert "database is gone" not in body["detail"] and response.headers["Retry-After"] == "5"
    assert client.get("/api/users", headers=bearer(ALICE_TOKEN)).status_code == 200  # a bearer token still works


def test_without_a_store_revocation_is_kept_in_memory(config):
    from bot.app.manager import MultiAccountBrokerManager
    manager = MultiAccountBrokerManager(write_config(config).load(environ={}), history=False)
    app = create_app(manager=manager, environ={})
    try:
        client = app.test_client()
        csrf = login(client)
        captured = cookie_of(client)
        client.post("/logout", data={"csrf_token": csrf})
        problem(with_cookie(app, captured).get("/api/users"), 401)
    finally:
        close_app(app)
        manager.close()


# --- headers ------------------------------------------------------------------------------------------

def test_html_responses_forbid_framing(app):
    client = app.test_client()
    for path in ("/login", "/users"):
        response = client.get(path, headers=bearer())
        assert response.mimetype == "text/html", path
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in client.get("/api/users", headers=bearer()).headers


def test_revocations_expire_with_the_session_lifetime(store):
    from bot.store import sessions
    now = dt.datetime.now(dt.timezone.utc)
    with store._writer.begin() as connection:  # a revocation made two hours ago
        sessions.revoke(connection, "old-session", now - dt.timedelta(hours=2), now - dt.timedelta(days=1))
    store.revoke_session("recent-session", dt.timedelta(hours=3))
    store.revoke_session("recent-session", dt.timedelta(hours=3))  # twice is harmless
    assert store.session_revoked("old-session") and store.session_revoked("recent-session")
    assert not store.session_revoked("other")
    store.revoke_session("new-session", dt.timedelta(hours=1))  # forgets revocations older than an hour
    assert not store.session_revoked("old-session")
    assert store.session_revoked("recent-session") and store.session_revoked("new-session")
    with pytest.raises(ValueError):
        store.revoke_session("x" * 65, dt.timedelta(hours=1))
    with pytest.raises(ValueError):
        store.revoke_session("x", dt.timedelta(0))
