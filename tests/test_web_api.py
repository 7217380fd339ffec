"""The Flask app through its test client: every endpoint, every error code, the auth matrix,
scoping, rate limiting, RFC 9457 bodies, the login session and CSRF, and the cache of /api/users.

Accounts are paper accounts (no network) except where a test needs to count exchange calls:
there a loopback FakeKraken stands behind alice's account.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from decimal import Decimal

import pytest

from bot.config import ConfigError
from web import close_app, context, create_app
from web.auth import TokenConfigError
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing
from tests.fakes import FakeKraken

D = Decimal
ADMIN_TOKEN = "admin-token-5f0c2b0a9d"
ALICE_TOKEN = "alice-token-8e41aa93c2"
BOB_TOKEN = "bob-token-0b7d11f6e4"        # from the environment
CAROL_TOKEN = "carol-token-7a0e0f5b61"
TOKENS = (ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, CAROL_TOKEN)
PROBLEM_FIELDS = {"type", "title", "status", "detail", "instance"}


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_config(config, web=None, **settings):
    web = {"tokens": {sha(ADMIN_TOKEN): "admin", sha(ALICE_TOKEN): "alice", sha(CAROL_TOKEN): "carol"},
           **(web or {})}
    config.settings(web=web, **settings)
    config.master({"kraken": {"paper": True, "balances": {"USD": "5000"}}})
    config.user("alice", {"coinbase": {"paper": True, "balances": {"USD": "150", "ETH": "0.04"}, "prices": {"ETH": "2500"}},
                          "kraken": {"paper": True, "balances": {"USD": "750"}}}, name="Alice")
    config.user("bob", {"kraken": {"paper": True, "balances": {"USD": "2000", "DOT": "100"}, "prices": {"DOT": "5"}}},
                name="Bob")
    config.user("carol", {"okx": {"api_key_env": "CAROL_OKX_KEY", "api_secret_env": "CAROL_OKX_SECRET",
                                  "passphrase_env": "CAROL_OKX_PASS"}}, name="<script>alert(1)</script>")
    config.user("dave", {"kraken": {"paper": True, "balances": {"USD": "1"}}}, enabled=False)
    return config


def make_app(config, environ=None):
    env = {"BALANCES_API_TOKENS": f"{BOB_TOKEN}=bob"} if environ is None else environ
    return create_app(config.load(), environ=env)


@pytest.fixture
def app(config):
    app = make_app(write_config(config))
    context_of(app).manager.refresh()
    context_of(app).manager.history.flush()
    yield app
    close_app(app)


@pytest.fixture
def client(app):
    return app.test_client()


def context_of(app):
    with app.app_context():
        return context()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response, status):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert PROBLEM_FIELDS <= set(body) and body["status"] == status
    assert body["instance"] == response.request.path
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and 'File "' not in text
    return body


# --- /api/users ---------------------------------------------------------------------------------

def test_users_payload_for_admin(client):
    response = client.get("/api/users", headers=bearer(ADMIN_TOKEN))
    assert response.status_code == 200 and response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"timestamp", "base_currency", "users", "master", "summary"}
    assert body["base_currency"] == "USD"
    assert [u["user_id"] for u in body["users"]] == ["bob", "alice", "carol"]  # by total; unknown last; dave disabled
    bob, alice, carol = body["users"]
    assert set(alice) == {"user_id", "name", "enabled", "total", "partial", "brokers", "status", "total_trades",
                          "win_rate", "daily_pnl", "total_pnl", "recent_trades"}
    assert alice["total"] == 1000.0 and alice["brokers"] == {"coinbase": 250.0, "kraken": 750.0}
    assert bob["total"] == 2500.0
    assert set(alice["status"]["kraken"]) == {"status", "age_seconds", "error", "error_class", "fetched_at",
                                              "unpriced"}
    assert alice["partial"] is False and alice["status"]["kraken"]["error_class"] is None
    assert alice["status"]["kraken"]["status"] == "ok"
    assert carol["total"] is None and carol["brokers"] == {"okx": None} and carol["partial"] is True
    assert carol["status"]["okx"]["status"] == "not_configured"
    assert "CAROL_OKX_KEY" in carol["status"]["okx"]["error"]  # names the variable, never a value
    assert alice["total_trades"] == 0 and alice["win_rate"] is None and alice["recent_trades"] == []
    assert body["master"]["total"] == 5000.0 and body["master"]["brokers"] == {"kraken": 5000.0}
    # the average is over the users whose total is known (issue 12): carol's unknown total is not a 0
    assert body["summary"] == {"total_users": 3, "total_user_capital": 3500.0, "users_counted": 2,
                               "average_per_user": 1750.0, "partial": True}


def test_users_payload_for_a_user_lists_only_them(client):
    body = client.get("/api/users", headers=bearer(ALICE_TOKEN)).get_json()
    assert [u["user_id"] for u in body["users"]] == ["alice"]
    assert body["master"] is None
    assert body["summary"] == {"total_users": 1, "total_user_capital": 1000.0, "users_counted": 1,
                               "average_per_user": 1000.0, "partial": False}
    body = client.get("/api/users", headers=bearer(BOB_TOKEN)).get_json()
    assert [u["user_id"] for u in body["users"]] == ["bob"]


def test_users_payload_trade_figures_and_cache_invalidation(app, client):
    manager = context_of(app).manager
    first = client.get("/api/users", headers=bearer(ADMIN_TOKEN)).get_json()
    assert first["users"][1]["total_trades"] == 0
    now = dt.datetime.now(dt.timezone.utc)
    manager.record_trade("alice", "kraken", "BTC/USD", "buy", D("0.01"), D("50000"), timestamp=now - dt.timedelta(minutes=3))
    manager.record_trade("alice", "kraken", "BTC/USD", "sell", D("0.01"), D("51000"), pnl=D("10.005"), fee=D("0.1"),
                         timestamp=now - dt.timedelta(minutes=2))
    manager.record_trade("alice", "coinbase", "ETH/USD", "sell", "0.5", "2000", pnl="-4", timestamp=now - dt.timedelta(days=3))
    alice = client.get("/api/users", headers=bearer(ALICE_TOKEN)).get_json()["users"][0]
    assert alice["total_trades"] == 3 and alice["win_rate"] == 0.5
    assert alice["total_pnl"] == 6.01 and alice["daily_pnl"] == 10.01  # base-currency numbers, rounded like the CLI
    newest = alice["recent_trades"][0]
    assert newest["side"] == "sell" and newest["amount"] == "0.01" and newest["pnl"] == "10.005"
    assert newest["price"] == "51000" and newest["fee"] == "0.1" and newest["executed_at"].endswith("Z")
    assert [t["symbol"] for t in alice["recent_trades"]] == ["BTC/USD", "BTC/USD", "ETH/USD"]


def test_users_payload_is_built_once_per_change(app, client):
    payload = context_of(app).users_payload
    for _ in range(5):
        client.get("/api/users", headers=bearer(ADMIN_TOKEN))
        client.get("/api/users", headers=bearer(ALICE_TOKEN))
    builds = payload.builds
    assert builds == 1
    context_of(app).manager.refresh()  # every read calls the listener: the next request rebuilds
    client.get("/api/users", headers=bearer(ADMIN_TOKEN))
    assert payload.builds == builds + 1


def test_users_payload_gzip(client):
    import gzip
    response = client.get("/api/users", headers={**bearer(ADMIN_TOKEN), "Accept-Encoding": "gzip, deflate"})
    assert response.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in response.headers["Vary"]
    plain = client.get("/api/users", headers=bearer(ADMIN_TOKEN)).get_data()
    assert gzip.decompress(response.get_data()) == plain


def test_views_never_call_the_exchange(config, managers):
    with FakeKraken() as kraken:
        creds = kraken.add_account({"USD": "10"})
        config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"),
                        web={"tokens": {sha(ADMIN_TOKEN): "admin"}})
        config.user("alice", {"kraken": broker_on(kraken, creds)})
        app = create_app(config.load(), environ={})
        try:
            client = app.test_client()
            body = client.get("/api/users", headers=bearer(ADMIN_TOKEN)).get_json()
            assert body["users"][0]["status"]["kraken"]["status"] == "pending"  # never read: no read started
            assert kraken.private_calls() == []
            assert client.post("/api/refresh", headers=bearer(ADMIN_TOKEN)).status_code == 200
            calls = len(kraken.private_calls())
            assert calls == 1
            for _ in range(3):
                for path in ("/api/users", "/api/balance", "/api/balance-snapshots", "/users", "/metrics", "/healthz",
                             "/api/accounts/alice:kraken/balance-snapshots", "/api/user_balances?user=alice"):
                    assert client.get(path, headers=bearer(ADMIN_TOKEN)).status_code == 200, path
            assert len(kraken.private_calls()) == calls
            kraken.set_balance(creds["api_key"], "USD", "25")
            assert client.post("/api/refresh", headers=bearer(ADMIN_TOKEN)).status_code == 200
            assert client.get("/api/users", headers=bearer(ADMIN_TOKEN)).get_json()["users"][0]["total"] == 25.0
        finally:
            close_app(app)


# --- the auth matrix -------------------------------------------------------------------------------

CREDENTIALS = {"none": None, "bad": "not-a-token", "admin": ADMIN_TOKEN, "own": ALICE_TOKEN, "other": BOB_TOKEN}
#      method, path,                                                  none bad admin own other
MATRIX = [
    ("GET", "/api/users",                                              401, 401, 200, 200, 200),
    ("GET", "/api/balance",                                            401, 401, 200, 200, 200),
    ("GET", "/api/balance-snapshots",                                  401, 401, 200, 200, 200),
    ("GET", "/api/accounts/alice:kraken/balance-history",              401, 401, 200, 200, 403),
    ("GET", "/api/accounts/alice:kraken/balance-snapshots",            401, 401, 200, 200, 403),
    ("GET", "/api/user_balances?user=alice",                           401, 401, 200, 200, 403),
    ("GET", "/api/account-balances?user=alice&type=month",             401, 401, 200, 200, 403),
    ("POST", "/api/refresh",                                           401, 401, 200, 200, 200),
    ("GET", "/metrics",                                                401, 401, 200, 403, 403),
    ("GET", "/healthz",                                                200, 200, 200, 200, 200),
    ("GET", "/users",                                                  302, 302, 200, 200, 200),
    ("GET", "/api/nope",                                               401, 401, 404, 404, 404),
]


@pytest.mark.parametrize("method, path, expected", [(m, p, e) for m, p, *e in MATRIX],
                         ids=[f"{m} {p}" for m, p, *_ in MATRIX])
def test_auth_matrix(client, method, path, expected):
    for (who, token), status in zip(CREDENTIALS.items(), expected):
        response = client.open(path, method=method, headers=bearer(token) if token else {})
        assert response.status_code == status, (who, response.get_data(as_text=True))
        if status >= 400:
            body = assert_problem(response, status)
            if status == 401:
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert body["title"] == "Unauthorized"
        if status == 302:
            assert response.headers["Location"].startswith("/login?next=")


def test_authorization_header_must_be_bearer(client):
    assert_problem(client.get("/api/users", headers={"Authorization": f"Basic {ALICE_TOKEN}"}), 401)
    assert_problem(client.get("/api/users", headers={"Authorization": "Bearer"}), 401)
    assert client.get("/api/users", headers={"Authorization": f"bearer   {ALICE_TOKEN}"}).status_code == 200


# --- scoping -----------------------------------------------------------------------------------------

def test_balance_is_scoped(client):
    # numbers, as in the source document (exact digits: see tests/test_seed_contracts.py)
    assert client.get("/api/balance", headers=bearer(ALICE_TOKEN)).get_json() == {"netWorth": {"ETH": 0.04, "USD": 900}}
    assert client.get("/api/balance", headers=bearer(BOB_TOKEN)).get_json() == {"netWorth": {"DOT": 100, "USD": 2000}}
    assert client.get("/api/balance", headers=bearer(CAROL_TOKEN)).get_json() == {"netWorth": {}}
    admin = client.get("/api/balance", headers=bearer(ADMIN_TOKEN)).get_json()["netWorth"]
    assert admin == {"DOT": 100, "ETH": 0.04, "USD": 7900}


def test_balance_snapshots_are_scoped(client):
    body = client.get("/api/balance-snapshots", headers=bearer(ALICE_TOKEN)).get_json()
    assert sorted(s["account_id"] for s in body["snapshots"]) == ["alice:coinbase", "alice:kraken"]
    assert body["total_balance_by_currency"] == {"USD": "1000.00"} or body["total_balance_by_currency"] == {"USD": "1000"}
    snap = body["snapshots"][0]
    assert set(snap) == {"id", "account_id", "balance", "available_balance", "holdings_value", "cash_value",
                         "currency", "source", "captured_at", "created_at", "change_amount", "change_percent"}
    assert isinstance(snap["balance"], str) and snap["source"] == "initial_connection"
    assert body["total_count"] == 2
    admin = client.get("/api/balance-snapshots", headers=bearer(ADMIN_TOKEN)).get_json()
    assert len(admin["snapshots"]) == 4 and admin["total_count"] == 4  # master + alice ×2 + bob (carol never read)


def test_refresh_is_scoped(app, client):
    before = {s.account_id: s.fetched_at for s in context_of(app).manager.current_states()}
    body = client.post("/api/refresh", headers=bearer(ALICE_TOKEN)).get_json()
    assert body["complete"] is True
    assert sorted(a["account_id"] for a in body["accounts"]) == ["alice:coinbase", "alice:kraken"]
    after = {s.account_id: s.fetched_at for s in context_of(app).manager.current_states()}
    assert after["bob:kraken"] == before["bob:kraken"] and after["master:kraken"] == before["master:kraken"]
    admin = client.post("/api/refresh", headers=bearer(ADMIN_TOKEN)).get_json()
    assert len(admin["accounts"]) == 5
    carol = client.post("/api/refresh", headers=bearer(CAROL_TOKEN)).get_json()
    assert [a["status"] for a in carol["accounts"]] == ["not_configured"]


def test_account_endpoints_forbid_and_not_found(client):
    assert_problem(client.get("/api/accounts/bob:kraken/balance-snapshots", headers=bearer(ALICE_TOKEN)), 403)
    assert_problem(client.get("/api/accounts/master:kraken/balance-snapshots", headers=bearer(ALICE_TOKEN)), 403)
    assert_problem(client.get("/api/accounts/bob:nope/balance-history", headers=bearer(ALICE_TOKEN)), 403)
    assert_problem(client.get("/api/accounts/alice:nope/balance-history", headers=bearer(ALICE_TOKEN)), 404)
    assert_problem(client.get("/api/accounts/ghost:kraken/balance-snapshots", headers=bearer(ADMIN_TOKEN)), 404)
    assert_problem(client.get("/api/accounts/dave:kraken/balance-snapshots", headers=bearer(ADMIN_TOKEN)), 404)
    assert_problem(client.get("/api/user_balances?user=ghost", headers=bearer(ADMIN_TOKEN)), 404)
    assert_problem(client.get("/api/user_balances?user=bob", headers=bearer(ALICE_TOKEN)), 403)
    assert client.get("/api/accounts/master:kraken/balance-snapshots", headers=bearer(ADMIN_TOKEN)).status_code == 200


# --- history endpoints --------------------------------------------------------------------------------

def test_account_snapshots_and_history(client):
    body = client.get("/api/accounts/alice:kraken/balance-snapshots?limit=5", headers=bearer(ALICE_TOKEN)).get_json()
    assert body["account_id"] == "alice:kraken" and body["limit"] == 5
    assert [s["balance"] for s in body["snapshots"]] == ["750"]
    assert client.get("/api/accounts/alice:kraken/balance-snapshots?source=manual_sync",
                      headers=bearer(ALICE_TOKEN)).get_json()["snapshots"] == []
    history = client.get("/api/accounts/alice:kraken/balance-history", headers=bearer(ALICE_TOKEN)).get_json()
    assert history["start_balance"] == history["end_balance"] == "750"
    assert history["total_change_amount"] == "0" and history["total_change_percent"] == 0.0
    assert len(history["snapshots"]) == 1
    today = dt.datetime.now(dt.timezone.utc).date()
    for start, end in ((today.isoformat(), today.isoformat()), (f"{today}T00:00:00Z", f"{today.year + 1}-01-01T00:00:00+01:00")):
        ranged = client.get(f"/api/accounts/alice:kraken/balance-history?start_date={start}&end_date={end}",
                            headers=bearer(ALICE_TOKEN)).get_json()
        assert len(ranged["snapshots"]) == 1, (start, end)
    assert_problem(client.get("/api/accounts/alice:kraken/balance-history?start_date=2000-01-01",
                              headers=bearer(ALICE_TOKEN)), 400)  # more than 3660 days
    past = client.get("/api/accounts/alice:kraken/balance-history?start_date=2020-01-01&end_date=2020-01-31",
                      headers=bearer(ALICE_TOKEN)).get_json()
    assert past["snapshots"] == [] and past["start_balance"] is None and past["total_change_percent"] is None


def test_user_balances_and_account_balances(client):
    today = dt.datetime.now(dt.timezone.utc).date()
    days = client.get("/api/user_balances", headers=bearer(ALICE_TOKEN)).get_json()  # own user by default
    assert [d["day"] for d in days] == [today.strftime("%Y%m%d")]
    day = days[0]
    assert day["user"] == "alice" and day["baseCurrency"] == "USD"
    assert day["totalBalance"] == {"amount": 1000.00, "currency": "USD"}  # a number, as in the source document
    assert {(a["account"], a["asset"]) for a in day["accountBalances"]} == {
        ("alice:coinbase", "USD"), ("alice:coinbase", "ETH"), ("alice:kraken", "USD")}
    ranged = client.get(f"/api/user_balances?user=alice&from={today:%Y%m%d}&to={today:%Y%m%d}",
                        headers=bearer(ADMIN_TOKEN)).get_json()
    assert ranged == days
    records = client.get(f"/api/account-balances?user=alice&date={today}&type=day", headers=bearer(ALICE_TOKEN)).get_json()
    assert sorted(r["connection_id"] for r in records) == ["alice:coinbase", "alice:kraken"]
    record = next(r for r in records if r["connection_id"] == "alice:kraken")
    assert record["object_category"] == "account-balance" and record["object_type"] == "day"
    assert record["balance_date"] == f"{today.isoformat()}T00:00:00.000Z" and record["user"] == "alice"
    assert record["data"] == [{"account_id": "alice:kraken:USD", "account_name": "KRAKEN USD", "account_currency": "USD",
                               "account_active": True, "account_balance": 750}]
    month = client.get(f"/api/account-balances?user=alice&date={today:%Y%m%d}&type=month",
                       headers=bearer(ALICE_TOKEN)).get_json()
    assert {r["object_type"] for r in month} == {"month"}
    assert client.get("/api/account-balances?user=alice&date=2020-01-01", headers=bearer(ALICE_TOKEN)).get_json() == []


# --- 400s -----------------------------------------------------------------------------------------------

BAD_REQUESTS = [
    ("/api/accounts/alice:kraken/balance-snapshots?limit=0", "limit"),
    ("/api/accounts/alice:kraken/balance-snapshots?limit=101", "limit"),
    ("/api/accounts/alice:kraken/balance-snapshots?limit=ten", "limit"),
    ("/api/accounts/alice:kraken/balance-snapshots?limit=-1", "limit"),
    ("/api/accounts/alice:kraken/balance-snapshots?source=cron", "source"),
    ("/api/accounts/alice:kraken/balance-history?source=cron", "source"),
    ("/api/accounts/alice:kraken/balance-history?start_date=2025-13-01", "start_date"),
    ("/api/accounts/alice:kraken/balance-history?start_date=yesterday", "start_date"),
    ("/api/accounts/alice:kraken/balance-history?end_date=2025-01-01T10:00:00", "end_date"),  # no offset
    ("/api/accounts/alice:kraken/balance-history?start_date=2025-02-01&end_date=2025-01-01", "start_date"),
    ("/api/user_balances?user=alice&from=20250230", "from"),
    ("/api/user_balances?user=alice&from=2025-01-01x", "from"),
    ("/api/user_balances?user=alice&from=20250201&to=20250101", "from"),
    # ("/api/user_balances", "user") is no longer a 400: an admin who names no user lists every
    # user (tests/test_seed_contracts.py::test_admin_listings_cover_every_user)
    ("/api/account-balances?user=alice&type=week", "type"),
    ("/api/account-balances?user=alice&date=31/01/2025", "date"),
]


@pytest.mark.parametrize("path, param", BAD_REQUESTS)
def test_bad_parameters_are_400(client, path, param):
    body = assert_problem(client.get(path, headers=bearer(ADMIN_TOKEN)), 400)
    assert body["type"] == "/problems/invalid-parameter"
    assert body["invalid_params"][0]["name"] == param
    assert "X-RateLimit-Limit" in client.get(path, headers=bearer(ADMIN_TOKEN)).headers


# --- other errors --------------------------------------------------------------------------------------

def test_unknown_routes_and_methods(client):
    body = assert_problem(client.get("/nope"), 404)
    assert body["type"] == "about:blank" and body["title"] == "Not Found"
    assert_problem(client.get("/api/nope", headers=bearer(ADMIN_TOKEN)), 404)
    response = client.post("/api/users", headers=bearer(ADMIN_TOKEN))
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]
    assert_problem(client.get("/api/refresh", headers=bearer(ADMIN_TOKEN)), 405)
    assert_problem(client.delete("/healthz"), 405)


def test_unhandled_exception_is_a_bare_500(config):
    app = make_app(write_config(config))
    try:
        @app.get("/api/boom")
        def boom():
            raise RuntimeError(f"secret detail {ALICE_TOKEN}")

        response = app.test_client().get("/api/boom", headers=bearer(ADMIN_TOKEN))
        body = assert_problem(response, 500)
        assert body["detail"] == "Internal Server Error"
        assert ALICE_TOKEN not in response.get_data(as_text=True) and "RuntimeError" not in response.get_data(as_text=True)
        assert response.headers["X-RateLimit-Limit"] == "100"
    finally:
        close_app(app)


# --- rate limiting --------------------------------------------------------------------------------------

def test_rate_limit_per_token(config):
    app = make_app(write_config(config, web={"rate_limit_per_minute": 3}))
    try:
        client = app.test_client()
        remaining = []
        for _ in range(3):
            response = client.get("/api/balance", headers=bearer(ALICE_TOKEN))
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Limit"] == "3"
            remaining.append(response.headers["X-RateLimit-Remaining"])
            reset = int(response.headers["X-RateLimit-Reset"])
        assert remaining == ["2", "1", "0"]
        now = dt.datetime.now(dt.timezone.utc).timestamp()
        assert now < reset <= now + 61
        response = client.get("/api/users", headers=bearer(ALICE_TOKEN))
        body = assert_problem(response, 429)
        assert body["type"] == "/problems/rate-limited"
        assert 1 <= int(response.headers["Retry-After"]) <= 60
        assert response.headers["X-RateLimit-Remaining"] == "0"
        # another token has its own budget; anonymous callers are counted per address
        assert client.get("/api/balance", headers=bearer(BOB_TOKEN)).headers["X-RateLimit-Remaining"] == "2"
        for _ in range(3):
            assert_problem(client.get("/api/balance", headers=bearer("wrong")), 401)
        assert_problem(client.get("/api/balance", headers=bearer("wrong")), 429)
        assert client.get("/healthz").status_code == 200  # not an API route: not limited
    finally:
        close_app(app)


def test_rate_limiter_windows():
    from web.ratelimit import FixedWindowLimiter
    now = [100.0]
    limiter = FixedWindowLimiter(2, window=60, clock=lambda: now[0], wall=lambda: 1000.0, sweep_at=2)
    assert [limiter.hit("a").allowed for _ in range(3)] == [True, True, False]
    decision = limiter.hit("a")
    assert decision.retry_after == 60 and decision.headers()["X-RateLimit-Reset"] == "1060"
    now[0] += 30
    assert limiter.hit("a").retry_after == 30
    assert limiter.hit("b").allowed
    now[0] += 30
    assert limiter.hit("a").allowed and limiter.hit("a").remaining == 0  # a new window for "a"
    now[0] += 30
    assert limiter.hit("c").allowed and set(limiter._windows) == {"a", "c"}  # "b"'s expired window was swept


# --- login, session, CSRF -----------------------------------------------------------------------------

def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, token, next_path="/users"):
    page = client.get(f"/login?next={next_path}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    return client.post("/login", data={"token": token, "csrf_token": csrf_from(page.get_data(as_text=True)),
                                       "next": next_path})


def test_login_session_and_logout(client):
    response = login(client, ALICE_TOKEN)
    assert response.status_code == 303 and response.headers["Location"] == "/users"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and cookie.startswith("multibalance_session=")
    assert ALICE_TOKEN not in cookie and sha(ALICE_TOKEN) not in cookie
    page = client.get("/users")
    assert page.status_code == 200 and "Alice" in page.get_data(as_text=True)
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    body = client.get("/api/users").get_json()
    assert [u["user_id"] for u in body["users"]] == ["alice"]
    assert_problem(client.get("/api/accounts/bob:kraken/balance-snapshots"), 403)
    # POSTs with the cookie need the session's CSRF token
    body = assert_problem(client.post("/api/refresh"), 403)
    assert body["type"] == "/problems/csrf-failed"
    assert_problem(client.post("/api/refresh", headers={"X-CSRF-Token": "forged"}), 403)
    token = csrf_from(page.get_data(as_text=True))
    assert client.post("/api/refresh", headers={"X-CSRF-Token": token}).status_code == 200
    assert_problem(client.post("/logout", data={}), 403)
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert_problem(client.get("/api/users"), 401)
    assert client.get("/users").status_code == 302


def test_login_failures(client):
    response = login(client, "wrong-token")
    assert response.status_code == 303 and response.headers["Location"].startswith("/login")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "That token is not valid." in page
    assert_problem(client.post("/login", data={"token": ALICE_TOKEN, "csrf_token": "forged"}), 403)
    assert_problem(client.get("/api/users"), 401)
    # an open redirect is not possible
    assert login(client, ALICE_TOKEN, next_path="//evil.example/").headers["Location"] == "/users"


def test_login_attempts_are_limited(client):
    page = client.get("/login").get_data(as_text=True)
    token = csrf_from(page)
    for _ in range(10):
        assert client.post("/login", data={"token": "guess", "csrf_token": token}).status_code == 303
    response = client.post("/login", data={"token": ALICE_TOKEN, "csrf_token": token})
    assert_problem(response, 429)
    assert "Retry-After" in response.headers


def test_session_survives_a_restart_but_not_its_token(config):
    """With a fixed secret_key a session outlives the process; removing the token ends it."""
    secret = "s" * 32
    with_alice = {sha(ADMIN_TOKEN): "admin", sha(ALICE_TOKEN): "alice"}
    write_config(config)
    cookies = []
    for tokens, status in ((with_alice, 200), (with_alice, 200), ({sha(ADMIN_TOKEN): "admin"}, 401)):
        config.settings(web={"tokens": tokens, "secret_key": secret})
        app = make_app(config, environ={})
        try:
            client = app.test_client()
            if not cookies:
                login(client, ALICE_TOKEN)
                cookies.append(client.get_cookie("multibalance_session").value)
            client.set_cookie("multibalance_session", cookies[0])
            assert client.get("/api/users").status_code == status
        finally:
            close_app(app)


# --- no token configured -----------------------------------------------------------------------------

def test_without_tokens_local_callers_are_admin(config):
    write_config(config, web={"tokens": {}})
    app = create_app(config.load(), environ={})
    try:
        client = app.test_client()
        body = client.get("/api/users").get_json()
        assert len(body["users"]) == 3 and body["master"] is not None
        assert client.get("/metrics").status_code == 200
        assert client.post("/api/refresh").status_code == 200
        assert client.get("/users").status_code == 200
        assert_problem(client.post("/api/refresh", headers={"Origin": "https://evil.example"}), 403)
        assert_problem(client.post("/api/refresh", headers={"Sec-Fetch-Site": "cross-site"}), 403)
        remote = app.test_client()
        remote.environ_base["REMOTE_ADDR"] = "10.0.0.7"
        assert_problem(remote.get("/api/users"), 401)
        assert_problem(remote.get("/metrics"), 401)
        assert remote.get("/users").status_code == 302
        ipv6 = app.test_client()
        ipv6.environ_base["REMOTE_ADDR"] = "::1"
        assert ipv6.get("/api/balance").status_code == 200
    finally:
        close_app(app)


def test_public_metrics_setting(config):
    app = make_app(write_config(config, web={"public_metrics": True}))
    try:
        assert app.test_client().get("/metrics").status_code == 200
    finally:
        close_app(app)


# --- healthz, metrics -----------------------------------------------------------------------------------

def test_healthz_and_metrics(client):
    body = client.get("/healthz").get_json()
    assert body == {"status": "ok", "scheduler": {"started": False, "running": False},
                    "store": {"enabled": True, "ok": True, "dialect": "sqlite"}}
    metrics = client.get("/metrics", headers=bearer(ADMIN_TOKEN))
    assert metrics.status_code == 200 and metrics.mimetype == "text/plain"
    assert b"multibalance_" in metrics.get_data()


def test_healthz_reports_a_broken_store(app, client):
    store = context_of(app).manager.history.store

    def broken():
        raise OSError("database is gone")

    store.ping = broken
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "degraded" and response.get_json()["store"]["ok"] is False


# --- secrets ---------------------------------------------------------------------------------------

def test_tokens_never_in_logs_or_pages(config, caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app(write_config(config))
    try:
        client = app.test_client()
        login(client, ALICE_TOKEN)
        outputs = [client.get("/users").get_data(as_text=True), client.get("/api/users").get_data(as_text=True)]
        for token in TOKENS:
            outputs.append(client.get("/api/users", headers=bearer(token)).get_data(as_text=True))
            outputs.append(client.get("/metrics", headers=bearer(token)).get_data(as_text=True))
        login(app.test_client(), "wrong-" + ADMIN_TOKEN)
        text = caplog.text + "".join(outputs)
        for token in TOKENS:
            assert token not in text and sha(token) not in text
        assert "CAROL_OKX_KEY" in text  # the variable's name is fine; no value exists
    finally:
        close_app(app)


def test_user_supplied_strings_are_escaped(client):
    page = client.get("/users", headers=bearer(ADMIN_TOKEN)).get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page
    # as HTML text, or inside the embedded JSON with < escaped (the browser test checks what shows)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page or "\\u003cscript\\u003ealert(1)" in page


# --- configuration ------------------------------------------------------------------------------------

@pytest.mark.parametrize("web, field", [
    ({"colour": "red"}, "web.colour"),
    ({"tokens": {ALICE_TOKEN: "alice"}}, "web.tokens"),                   # a token, not its hash
    ({"tokens": {sha(ALICE_TOKEN): "mallory"}}, "web.tokens"),            # no such user
    ({"tokens": []}, "web.tokens"),
    ({"rate_limit_per_minute": 0}, "web.rate_limit_per_minute"),
    ({"rate_limit_per_minute": "100"}, "web.rate_limit_per_minute"),
    ({"sample_trades": "yes"}, "web.sample_trades"),
    ({"recent_trades": 51}, "web.recent_trades"),
    ({"secret_key": "short"}, "web.secret_key"),
    ({"payload_max_age_seconds": 0}, "web.payload_max_age_seconds"),
])
def test_bad_web_settings_are_refused(config, web, field):
    config.settings(web=web).user("alice", {"kraken": {"paper": True}})
    with pytest.raises(ConfigError) as error:
        config.load()
    message = str(error.value)
    assert "settings.json" in message and f"'{field}" in message
    assert ALICE_TOKEN not in message


@pytest.mark.parametrize("value", ["justatoken", "=alice", "tok=", f"{ALICE_TOKEN}=mallory"])
def test_bad_token_environment_is_refused(config, value):
    write_config(config)
    with pytest.raises(TokenConfigError) as error:
        create_app(config.load(), environ={"BALANCES_API_TOKENS": value})
    assert "BALANCES_API_TOKENS" in str(error.value) and ALICE_TOKEN not in str(error.value)
    assert "justatoken" not in str(error.value)


def test_environment_tokens_with_spaces_and_equals(config):
    write_config(config)
    app = create_app(config.load(), environ={"BALANCES_API_TOKENS": " abc==def=alice , x y=admin ,"})
    try:
        client = app.test_client()
        assert [u["user_id"] for u in client.get("/api/users", headers=bearer("abc==def")).get_json()["users"]] == ["alice"]
        assert client.get("/metrics", headers=bearer("x y")).status_code == 200
    finally:
        close_app(app)


def test_sample_trades_setting(config):
    import shutil
    from pathlib import Path
    write_config(config, web={"sample_trades": True})
    config.user("bob", {"kraken": {"paper": True, "balances": {"USD": "1"}}})
    shutil.copy(Path(__file__).resolve().parents[1] / "config" / "sample_trades.json", config.root)
    app = make_app(config)
    try:
        body = app.test_client().get("/api/users", headers=bearer(ADMIN_TOKEN)).get_json()
        assert {u["user_id"]: u["total_trades"] for u in body["users"]} == {"alice": 4, "bob": 4, "carol": 0}
    finally:
        close_app(app)


def test_users_payload_under_concurrent_readers_and_changes(app):
    import gzip
    import json
    import threading
    payload = context_of(app).users_payload
    stop = threading.Event()
    errors, bodies = [], []

    def read(role):
        try:
            while not stop.is_set():
                body = payload.body(role, gzipped=role == "bob")
                bodies.append(json.loads(gzip.decompress(body) if role == "bob" else body))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    readers = [threading.Thread(target=read, args=(role,)) for role in ("admin", "alice", "bob", "admin")]
    for thread in readers:
        thread.start()
    changes = 0
    while len(bodies) < 400 and not errors:
        payload.changed()
        changes += 1
        payload.body("admin")
    stop.set()
    for thread in readers:
        thread.join()
    assert not errors
    assert 1 <= payload.builds <= changes + 1
    assert {len(b["users"]) for b in bodies} <= {1, 3}
