"""``GET /api/users/history`` over real HTTP (the app served by werkzeug on loopback, a real
SQLite store): the shape, the instants of the closes in settings.timezone, the summed snapshot
series, scoping per token, parameters and gzip. Nothing reads an exchange: the history is
written to the store directly and the accounts are paper ones.
"""
from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal as D
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from bot.store import DailyRow, SnapshotIn
from tests.browser_support import serve
from web import close_app, create_app

ADMIN_TOKEN = "admin-token-bundle-3c9e"
ALICE_TOKEN = "alice-token-bundle-77a1"
ZONE = "Asia/Tokyo"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def row(account: str, value: str | None, status: str = "ok", asset: str = "USD") -> DailyRow:
    amount = D(value) if value is not None else D(1)
    return DailyRow(account_id=account, asset=asset, amount=amount, price=None if value is None else D(1),
                    value=None if value is None else D(value), base_currency="USD", account_status=status)


def snap(account: str, balance: str, at: dt.datetime, currency: str = "USD") -> SnapshotIn:
    owner, broker = account.split(":")
    return SnapshotIn(account_id=account, owner=owner, broker=broker, balance=D(balance), currency=currency,
                      source="scheduled_sync", captured_at=at)


@pytest.fixture
def site(config):
    config.settings(timezone=ZONE, web={"tokens": {sha(ADMIN_TOKEN): "admin", sha(ALICE_TOKEN): "alice"}})
    config.master({"kraken": {"paper": True, "balances": {"USD": "5000"}}})
    config.user("alice", {"coinbase": {"paper": True, "balances": {"USD": "250"}},
                          "kraken": {"paper": True, "balances": {"USD": "750"}}}, name="Alice")
    config.user("bob", {"kraken": {"paper": True, "balances": {"USD": "2000"}}}, name="Bob")
    config.user("dave", {"kraken": {"paper": True, "balances": {"USD": "1"}}}, enabled=False)
    app = create_app(config.load(), environ={})
    try:
        store = app.extensions["multibalance"].manager.history.store
        today = dt.datetime.now(ZoneInfo(ZONE)).date()
        store.upsert_daily("alice", today - dt.timedelta(days=2),
                           [row("alice:coinbase", "250"), row("alice:kraken", "700.005")], state="final")
        store.upsert_daily("alice", today - dt.timedelta(days=1),
                           [row("alice:coinbase", "250"), row("alice:kraken", "720", status="stale")], state="final")
        store.upsert_daily("alice", today, [row("alice:coinbase", "250"), row("alice:kraken", "750"),
                                            row("alice:kraken", None, asset="FOO")])
        store.upsert_daily("alice", today - dt.timedelta(days=60), [row("alice:kraken", "1")], state="final")
        now = dt.datetime.now(dt.timezone.utc)
        hours = lambda h: now - dt.timedelta(hours=h)  # noqa: E731
        store.add_snapshots([snap("alice:kraken", "700", hours(3)), snap("alice:coinbase", "250", hours(2.5)),
                             snap("alice:kraken", "720.10", hours(2)), snap("alice:kraken", "5000", hours(1), "EUR"),
                             snap("bob:kraken", "2000", hours(1)), snap("master:kraken", "5000", hours(1))])
        with serve(app) as url:
            yield url, today
    finally:
        close_app(app)


def get(url: str, token: str | None, gzip_ok: bool = False):
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if gzip_ok:
        headers["Accept-Encoding"] = "gzip"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def body_of(url: str, token: str | None = ADMIN_TOKEN) -> dict:
    status, _, raw = get(url, token)
    assert status == 200, raw
    return json.loads(raw)


def test_every_visible_user_in_one_body_with_closes_at_the_zones_midnights(site):
    url, today = site
    body = body_of(url + "/api/users/history")
    assert set(body) == {"timestamp", "base_currency", "timezone", "from", "to", "days", "limit", "users"}
    assert body["timezone"] == ZONE and body["base_currency"] == "USD" and body["days"] == 45 and body["limit"] == 30
    assert body["to"] == today.isoformat() and body["from"] == (today - dt.timedelta(days=44)).isoformat()
    assert sorted(body["users"]) == ["alice", "bob"]        # enabled users only; no master, no dave
    assert body["users"]["bob"]["closes"] == []

    closes = body["users"]["alice"]["closes"]               # the 60-day-old close is outside the 45 days
    assert [c["day"] for c in closes] == [(today - dt.timedelta(days=n)).isoformat() for n in (2, 1, 0)]
    assert [c["total"] for c in closes] == [950.01, 970.0, 1000.0]   # summed exactly, rounded at the boundary
    assert [c["state"] for c in closes] == ["final", "final", "provisional"]
    assert [c["partial"] for c in closes] == [False, True, True]     # a stale row; an unpriced row
    tokyo = ZoneInfo(ZONE)
    midnight = dt.datetime.combine(today - dt.timedelta(days=1), dt.time(), tokyo)   # end of the day before
    assert dt.datetime.fromisoformat(closes[0]["at"].replace("Z", "+00:00")) == midnight
    generated = dt.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
    assert dt.datetime.fromisoformat(closes[2]["at"].replace("Z", "+00:00")) == generated   # today: now, not later


def test_points_sum_the_accounts_once_each_has_a_snapshot(site):
    url, _ = site
    users = body_of(url + "/api/users/history")["users"]
    # kraken 700 alone (coinbase not seen yet): no point; then 700 + 250; then 720.10 + 250; the
    # EUR snapshot (another currency than the base) is left out
    assert [p["total"] for p in users["alice"]["points"]] == [950.0, 970.1]
    ats = [p["at"] for p in users["alice"]["points"]]
    assert ats == sorted(ats)
    assert [p["total"] for p in users["bob"]["points"]] == [2000.0]

    limited = body_of(url + "/api/users/history?limit=1&days=1")
    assert limited["limit"] == 1 and limited["days"] == 1
    assert [c["state"] for c in limited["users"]["alice"]["closes"]] == ["provisional"]
    # kraken's newest snapshot is in EUR: without it no sum is alice's total, so no points
    # (never coinbase's 250 alone); bob's newest is in USD
    assert limited["users"]["alice"]["points"] == []
    assert [p["total"] for p in limited["users"]["bob"]["points"]] == [2000.0]
    two = body_of(url + "/api/users/history?limit=2")["users"]["alice"]["points"]
    assert [p["total"] for p in two] == [970.1]             # kraken 720.10 (2 h) + coinbase 250 (2.5 h)


def test_a_user_token_sees_only_itself_and_bad_parameters_are_named(site):
    url, _ = site
    alice = body_of(url + "/api/users/history", ALICE_TOKEN)
    assert list(alice["users"]) == ["alice"]

    status, headers, raw = get(url + "/api/users/history", None)
    assert status == 401 and headers["Content-Type"] == "application/problem+json"
    for query, name in (("days=0", "days"), ("days=367", "days"), ("days=%C2%B2", "days"), ("limit=101", "limit"),
                        ("limit=x", "limit")):
        status, headers, raw = get(url + "/api/users/history?" + query, ADMIN_TOKEN)
        problem = json.loads(raw)
        assert status == 400, (query, problem)
        assert [p["name"] for p in problem["invalid_params"]] == [name]
    status, headers, _ = get(url + "/api/users/history?days=366&limit=100", ADMIN_TOKEN)
    assert status == 200 and int(headers["X-RateLimit-Limit"]) == 100


def test_the_body_is_gzipped_when_the_client_accepts_it(site):
    url, _ = site
    status, headers, raw = get(url + "/api/users/history", ADMIN_TOKEN, gzip_ok=True)
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in headers["Vary"]
    assert json.loads(gzip.decompress(raw)) ["users"]["bob"]["points"][0]["total"] == 2000.0


PARAMETER_TEXT = st.one_of(st.sampled_from(["", "0", "1", "45", "100", "101", "366", "367", "-1", "1e2", " 1", "²",
                                            "１０", "9" * 30]), st.text(max_size=8))


@settings(max_examples=40,  # under the 100 requests a minute of the token deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.none() | PARAMETER_TEXT, limit=st.none() | PARAMETER_TEXT)
def test_any_parameter_is_a_body_or_a_400_naming_it(site, days, limit):
    url, _ = site
    query = {k: v for k, v in (("days", days), ("limit", limit)) if v is not None}
    status, headers, raw = get(url + "/api/users/history?" + urllib.parse.urlencode(query), ADMIN_TOKEN)
    assert status in (200, 400), (query, status)
    if status == 400:
        assert headers["Content-Type"] == "application/problem+json"
        assert json.loads(raw)["invalid_params"][0]["name"] in query
    else:
        body = json.loads(raw)
        assert 1 <= body["days"] <= 366 and 1 <= body["limit"] <= 100
