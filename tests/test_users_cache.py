"""``/api/users`` and ``/users`` from cached bytes: the rebuild rate (at most once per
``payload_max_age_seconds`` however many reads, with an injected clock), ETag / If-None-Match
(304) over real HTTP (waitress on loopback), gzip (the page's spliced stream is one valid gzip
member), and the page's fallback when the template does not show the placeholder.
"""
from __future__ import annotations

import gzip
import hashlib
import html
import http.client
import json
import os
import re
import threading
import zlib
from decimal import Decimal

import pytest

from bot.core.sources import FORCED, SCHEDULED
from bot.history.journal import make_trade
from web import close_app, create_app
from web.payloads import UsersPayload
from web.serving import EmbeddedJson, PLACEHOLDER, page_response, spliced_gzip

TOKEN = "cache-test-admin-token-5d1e"
ALICE = "cache-test-alice-token-0b3f"
PERIOD = 5.0


def write_config(config, users: int = 6):
    tokens = {hashlib.sha256(TOKEN.encode()).hexdigest(): "admin", hashlib.sha256(ALICE.encode()).hexdigest(): "u00"}
    config.settings(web={"tokens": tokens, "rate_limit_per_minute": 100_000, "payload_max_age_seconds": PERIOD})
    config.master({"kraken": {"paper": True, "balances": {"USD": "10"}}})
    for i in range(users):
        config.user(f"u{i:02d}", {"kraken": {"paper": True, "balances": {"USD": str(100 + i), "ETH": "0.5"},
                                             "prices": {"ETH": "2000"}}},
                    name=f"User <{i}> & 'co'")   # characters the page must escape
    return config


@pytest.fixture
def app(config):
    app = create_app(write_config(config).load(), environ={})
    context_of(app).manager.refresh()
    context_of(app).manager.history.flush()
    yield app
    close_app(app)


def context_of(app):
    return app.extensions["multibalance"]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def http_server(app):
    """The app behind a threaded WSGI server on a loopback port, in this process; yields (host, port)."""
    from werkzeug.serving import make_server
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", server.server_port
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def request(address, path, token=TOKEN, **headers):
    connection = http.client.HTTPConnection(*address, timeout=10)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}", **headers})
        response = connection.getresponse()
        return response.status, response.headers, response.read()  # headers: case-insensitive
    finally:
        connection.close()


def embedded(page: bytes) -> dict:
    match = re.search(rb'<script type="application/json" id="initial-data">(.*?)</script>', page, re.S)
    return json.loads(html.unescape(match.group(1).decode()))


# --- the rebuild rate ---------------------------------------------------------------------------

def test_reads_rebuild_at_most_once_per_period_under_a_burst(app):
    manager = context_of(app).manager
    clock = Clock()
    payload = UsersPayload(manager, manager.config.settings.web, clock=clock)
    state = manager.current_states()[0]
    first = payload.entry("admin")
    assert payload.builds == 1
    for _ in range(3):                          # rounds of reads, requests between them
        for _ in range(500):
            payload.state_changed(state, state, SCHEDULED)
            payload.entry("admin")
        clock.now += PERIOD / 4
    assert payload.builds == 1 and payload.entry("admin") is first   # same bytes, same ETag

    readers, start = 8, threading.Barrier(8)
    seen: list = []

    def burst() -> None:
        start.wait(timeout=30)
        for _ in range(200):
            payload.state_changed(state, state, SCHEDULED)
            seen.append(payload.entry("admin"))

    clock.now += PERIOD                          # the period has passed and reads marked it dirty
    threads = [threading.Thread(target=burst) for _ in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert payload.builds == 2                   # one rebuild for 1,600 reads and 1,600 requests
    assert {id(entry) for entry in seen} <= {id(first), id(payload.entry("admin"))}
    assert payload.entry("admin") is not first   # the new build (its bytes may be the same: same data)


def test_nothing_changed_keeps_the_bytes_and_a_journaled_trade_shows(app):
    manager = context_of(app).manager
    clock = Clock()
    payload = UsersPayload(manager, manager.config.settings.web, clock=clock)
    first = payload.entry("admin")
    clock.now += 10 * PERIOD                     # no read, no trade: nothing to rebuild
    assert payload.entry("admin") is first and payload.builds == 1
    # a trade journaled by another process (straight into the store): seen once the period is over
    manager.history.store.add_trade(make_trade("u01", "kraken", "BTC/USD", "buy", Decimal("1"), Decimal("2"),
                                               None, None, None))
    assert payload.entry("admin") is first      # within the period: the journal is not looked at
    clock.now += PERIOD
    trades = {u["user_id"]: u["total_trades"] for u in json.loads(payload.entry("admin").raw)["users"]}
    assert trades["u01"] == 1 and payload.builds == 2
    # a forced read or a trade journaled here: the very next request rebuilds
    payload.state_changed(manager.current_states()[0], None, FORCED)
    payload.entry("admin")
    assert payload.builds == 3
    payload.changed(1, None)
    payload.entry("admin")
    assert payload.builds == 4


def test_a_rebuild_makes_the_bodies_the_previous_build_served_before_publishing(app, monkeypatch):
    import web.payloads

    manager = context_of(app).manager
    payload = UsersPayload(manager, manager.config.settings.web, clock=Clock())
    old_admin = payload.entry("admin")
    old_admin.gzip()                                # admin was served gzipped, u00 identity only
    payload.entry("u00")
    encoded = []
    real_dumps = web.payloads.dumps_in_pieces
    monkeypatch.setattr(web.payloads, "dumps_in_pieces", lambda body: encoded.append(1) or real_dumps(body))
    payload.state_changed(manager.current_states()[0], None, FORCED)
    payload.model()                                 # the rebuild: both scopes made, admin's gzip too
    assert payload.builds == 2 and len(encoded) == 2
    admin, alice = payload.entry("admin"), payload.entry("u00")
    assert admin is not old_admin and admin.made_gzip and not alice.made_gzip and len(encoded) == 2
    assert json.loads(gzip.decompress(admin.gzip())) == json.loads(admin.raw)
    assert [u["user_id"] for u in json.loads(alice.raw)["users"]] == ["u00"]
    payload.entry("u01")                            # a scope not served before: made on request
    assert len(encoded) == 3


# --- ETag / 304 and gzip over real HTTP ---------------------------------------------------------

def test_api_users_etag_round_trip(app, http_server):
    status, headers, body = request(http_server, "/api/users")
    assert status == 200 and json.loads(body)["summary"]["total_users"] == 6
    etag = headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag) and headers["Cache-Control"] == "no-store"
    status, headers304, body304 = request(http_server, "/api/users", **{"If-None-Match": etag})
    assert status == 304 and body304 == b"" and headers304["ETag"] == etag
    assert "Accept-Encoding" in headers304["Vary"] and "X-RateLimit-Remaining" in headers304
    status, gz_headers, gz_body = request(http_server, "/api/users", **{"Accept-Encoding": "gzip"})
    assert status == 200 and gz_headers["Content-Encoding"] == "gzip" and gzip.decompress(gz_body) == body
    assert gz_headers["ETag"] != etag            # another representation, another strong ETag
    assert request(http_server, "/api/users", **{"Accept-Encoding": "gzip", "If-None-Match": gz_headers["ETag"]})[0] == 304
    assert request(http_server, "/api/users", **{"If-None-Match": f'"other", {etag}'})[0] == 304
    # a user's scope is another body: alice's old tag never matches the admin's
    status, alice_headers, alice_body = request(http_server, "/api/users", token=ALICE, **{"If-None-Match": etag})
    assert status == 200 and [u["user_id"] for u in json.loads(alice_body)["users"]] == ["u00"]
    context_of(app).manager.record_trade("u02", "kraken", "ETH/USD", "sell", "0.1", "2000", pnl="3")
    status, new_headers, new_body = request(http_server, "/api/users", **{"If-None-Match": etag})
    assert status == 200 and new_headers["ETag"] != etag
    assert {u["user_id"]: u["total_trades"] for u in json.loads(new_body)["users"]}["u02"] == 1


def test_users_page_is_the_cached_payload_with_etag_and_gzip(app, http_server):
    status, headers, page = request(http_server, "/users")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "Content-Security-Policy" in headers and headers["Cache-Control"] == "no-store"
    _, _, api = request(http_server, "/api/users")
    assert embedded(page) == json.loads(api)
    assert b"User <3>" not in page and "User \\u003c3\\u003e \\u0026 \\u0027co\\u0027".encode() in page
    assert PLACEHOLDER.encode() not in page
    status, gz_headers, gz_page = request(http_server, "/users", **{"Accept-Encoding": "gzip, br"})
    assert status == 200 and gz_headers["Content-Encoding"] == "gzip"
    inflater = zlib.decompressobj(wbits=31)      # exactly one gzip member, nothing after it
    unzipped = inflater.decompress(gz_page)
    assert inflater.eof and inflater.unused_data == b""
    assert embedded(unzipped) == embedded(page) and len(unzipped) == len(page)
    csrf = re.search(rb'name="csrf-token" content="([^"]*)"', unzipped).group(1)
    assert csrf   # the shell, compressed per request, is there too
    for etag, extra in ((headers["ETag"], {}), (gz_headers["ETag"], {"Accept-Encoding": "gzip"})):
        status, _, body = request(http_server, "/users", **{"If-None-Match": etag, **extra})
        # a bearer-token caller has no session: each request gets a new CSRF token, so a new page
        assert status == 200 and body
    assert request(http_server, "/users", token=ALICE)[0] == 200


def test_users_page_etag_with_a_session(app):
    client = app.test_client()
    login = client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.get_data(as_text=True)).group(1)
    assert client.post("/login", data={"token": TOKEN, "csrf_token": csrf, "next": "/users"}).status_code == 303
    first = client.get("/users")
    assert first.status_code == 200 and first.headers["ETag"]
    again = client.get("/users", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == first.headers["ETag"]
    payload = context_of(app).users_payload
    builds = payload.builds
    context_of(app).manager.refresh()            # a forced read: rebuilt at once (the same data, maybe)
    client.get("/users", headers={"If-None-Match": first.headers["ETag"]})
    assert payload.builds == builds + 1
    context_of(app).manager.record_trade("u03", "kraken", "ETH/USD", "buy", "0.1", "2000")   # new data, new tag
    changed = client.get("/users", headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and changed.headers["ETag"] != first.headers["ETag"]


def test_each_session_and_viewer_gets_its_own_shell(app):
    def logged_in(token):
        client = app.test_client()
        login = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.get_data(as_text=True)).group(1)
        assert client.post("/login", data={"token": token, "csrf_token": csrf, "next": "/users"}).status_code == 303
        return client

    def shown(client):
        page = client.get("/users").get_data(as_text=True)
        token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
        return (token.group(1) if token else None), [u["user_id"] for u in embedded(page.encode())["users"]]

    first, second, alice = logged_in(TOKEN), logged_in(TOKEN), logged_in(ALICE)
    (token_1, users_1), (token_1b, _), (token_2, users_2), (token_3, users_3) = (
        shown(first), shown(first), shown(second), shown(alice))
    assert token_1 and token_1 == token_1b and len({token_1, token_2, token_3}) == 3   # one token per session
    assert users_1 == users_2 and len(users_1) == 6 and users_3 == ["u00"]


def test_the_page_falls_back_when_the_template_hides_the_placeholder(app):
    entry = context_of(app).users_payload.entry("admin")
    with app.test_request_context("/users", headers={"Accept-Encoding": "gzip"}):
        # a template that shows only a count: the placeholder never appears, the real data is used
        response = page_response(entry, lambda payload: f"<p>{len(payload) if isinstance(payload, str) else len(payload['users'])} users</p>",
                                 lambda: json.loads(entry.raw))
    assert response.status_code == 200 and gzip.decompress(response.get_data()) == b"<p>6 users</p>"


@pytest.mark.parametrize("size", [0, 1, 70_000, 900_000])
def test_spliced_gzip_is_one_valid_member(size):
    middle = os.urandom(size // 2).hex().encode()[:size]
    head, tail = b"<html><head>" * 50, b"</script></html>" * 20
    spliced = spliced_gzip(head, EmbeddedJson(middle), tail)
    inflater = zlib.decompressobj(wbits=31)
    assert inflater.decompress(spliced) == head + middle + tail
    assert inflater.eof and inflater.unused_data == b""
    assert gzip.decompress(spliced) == head + middle + tail


def test_the_real_template_takes_the_spliced_path(app):
    from flask import render_template
    entry = context_of(app).users_payload.entry("admin")
    calls = []

    def render(payload):
        calls.append(payload)
        return render_template("users.html", payload=payload, viewer="admin", is_admin=True, csrf_token="t",
                               login_required=True, poll_seconds=15, timezone="UTC")

    with app.test_request_context("/users"):
        page = page_response(entry, render, lambda: pytest.fail("the page was rendered the slow way")).get_data()
    assert calls == [PLACEHOLDER]                # rendered once, with the placeholder only
    assert embedded(page) == json.loads(entry.raw)


def test_the_session_serializer_is_made_once_per_key_and_a_new_key_ends_old_sessions(app):
    from web.sessions import CookieSessions

    sessions = app.session_interface
    assert isinstance(sessions, CookieSessions)
    client = app.test_client()
    assert client.get("/login").status_code == 200          # makes a session (its CSRF token)
    first = sessions.get_signing_serializer(app)
    assert client.get("/login").status_code == 200 and sessions.get_signing_serializer(app) is first
    old_key = app.secret_key
    app.secret_key = b"another-secret-key-for-this-test"
    try:
        assert sessions.get_signing_serializer(app) is not first
        assert first.loads(first.dumps({"a": 1})) == {"a": 1}
        signed = first.dumps({"sid": "x"})
        with pytest.raises(Exception):
            sessions.get_signing_serializer(app).loads(signed)  # the old key's cookies are refused
    finally:
        app.secret_key = old_key
