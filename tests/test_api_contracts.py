"""What the JSON API's contract promises beyond field names (docs/api.md), through the Flask test
client on paper accounts and one account on a loopback FakeKraken, with a real SQLite store:
the snapshot split (available, holdings, cash), counts and changes, the source filter, trace ids,
the scheme-less Authorization header and admin listings over every user."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import uuid
from decimal import Decimal as D

import pytest

from bot.store import AssetRow, BalanceStore, SnapshotIn
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing
from tests.fakes import FakeKraken
from web import close_app, context, create_app

ADMIN_TOKEN = "contract-admin-token-91ab"
ALICE_TOKEN = "contract-alice-token-0c3e"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture
def kraken():
    with FakeKraken() as fake:
        yield fake


@pytest.fixture
def app(config, tmp_path, kraken):
    """alice: paper coinbase (150 USD + 0.04 ETH at 2500) and paper kraken (750 USD, with an
    older 700 USD snapshot in the store); bob: a FakeKraken account (0.01 BTC + 20 USD)."""
    url = f"sqlite:///{(tmp_path / 'history.sqlite3').as_posix()}"
    bob = kraken.add_account({"BTC": "0.01", "USD": "20"})
    config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"), database_url=url,
                    web={"tokens": {sha(ADMIN_TOKEN): "admin", sha(ALICE_TOKEN): "alice"}})
    config.user("alice", {"coinbase": {"paper": True, "balances": {"USD": "150", "ETH": "0.04"}, "prices": {"ETH": "2500"}},
                          "kraken": {"paper": True, "balances": {"USD": "750"}}})
    config.user("bob", {"kraken": broker_on(kraken, bob)})
    config.user("carol", {"kraken": {"paper": True, "balances": {"USD": "1"}}}, enabled=False)
    store = BalanceStore(url)
    earlier = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    store.add_snapshots([SnapshotIn("alice:kraken", "alice", "kraken", D("700"), "USD", "account_sync", earlier,
                                    (AssetRow("USD", D("700"), D(1), D("700")),))])
    store.close()
    app = create_app(config.load(), environ={})
    with app.app_context():
        manager = context().manager
    manager.refresh()
    manager.history.flush()
    yield app
    close_app(app)


def get(app, path, token=ADMIN_TOKEN, status=200, **headers):
    response = app.test_client().get(path, headers={"Authorization": f"Bearer {token}", **headers})
    assert response.status_code == status, response.get_data(as_text=True)
    return response


def by_account(body) -> dict:
    return {s["account_id"]: s for s in body["snapshots"]}


# --------------------------------------------------------------------------- snapshots


def test_latest_snapshots_split_available_holdings_and_cash(app):
    body = get(app, "/api/balance-snapshots").get_json()
    snaps = by_account(body)
    assert body["total_count"] == 3 == len(body["snapshots"])
    coinbase = snaps["alice:coinbase"]
    assert (coinbase["balance"], coinbase["cash_value"], coinbase["holdings_value"]) == ("250.00", "150", "100.00")
    assert coinbase["available_balance"] == "250.00"        # paper: nothing is ever on hold
    kraken = snaps["bob:kraken"]
    assert D(kraken["balance"]) == D("520") and kraken["cash_value"] == "20.0000"
    assert D(kraken["holdings_value"]) == D("500")
    assert kraken["available_balance"] is None               # an exchange account: free amounts not recorded
    assert body["total_balance_by_currency"] == {"USD": str(D("250.00") + D("750") + D(kraken["balance"]))}


def test_change_percent_is_rounded_to_two_places(app):
    snaps = by_account(get(app, "/api/balance-snapshots", ALICE_TOKEN).get_json())
    kraken = snaps["alice:kraken"]
    assert kraken["change_amount"] == "50" and kraken["change_percent"] == 7.14   # 50 / 700 = 7.142857 %
    assert snaps["alice:coinbase"]["change_amount"] is None and snaps["alice:coinbase"]["change_percent"] is None
    history = get(app, "/api/accounts/alice:kraken/balance-history").get_json()
    assert history["total_change_amount"] == "50" and history["total_change_percent"] == 7.14
    assert [s["change_percent"] for s in history["snapshots"]] == [None, 7.14]


def test_history_and_recent_snapshots_share_one_structure(app):
    history = get(app, "/api/accounts/alice:kraken/balance-history").get_json()
    recent = get(app, "/api/accounts/alice:kraken/balance-snapshots?limit=10").get_json()
    assert history["total_count"] == recent["total_count"] == 2
    assert [s["balance"] for s in history["snapshots"]] == ["700", "750"]      # oldest first
    assert [s["balance"] for s in recent["snapshots"]] == ["750", "700"]       # newest first
    for body in (history, recent):
        assert (body["start_balance"], body["end_balance"], body["currency"]) == ("700", "750", "USD")
        assert body["total_change_amount"] == "50" and body["total_change_percent"] == 7.14
        assert body["snapshots"][0]["id"].isdigit()
    assert [s["cash_value"] for s in recent["snapshots"]] == ["750", "700"]
    assert [s["holdings_value"] for s in recent["snapshots"]] == ["0", "0"]
    one = get(app, "/api/accounts/alice:kraken/balance-snapshots?limit=1").get_json()
    assert one["total_count"] == 1 and one["start_balance"] == one["end_balance"] == "750"
    assert one["total_change_amount"] == "0" and one["snapshots"][0]["change_amount"] == "50"


def test_empty_ranges_keep_the_structure(app):
    body = get(app, "/api/accounts/alice:kraken/balance-history?start_date=2020-01-01&end_date=2020-01-31").get_json()
    assert body["snapshots"] == [] and body["total_count"] == 0 and body["currency"] == "USD"
    assert body["start_balance"] is body["end_balance"] is body["total_change_percent"] is None


def test_holdings_sync_is_a_known_source(app):
    for path in ("/api/accounts/alice:kraken/balance-snapshots?source=holdings_sync",
                 "/api/accounts/alice:kraken/balance-history?source=holdings_sync"):
        body = get(app, path).get_json()
        assert body["snapshots"] == [] and body["total_count"] == 0 and body["source"] == "holdings_sync"
    body = get(app, "/api/accounts/alice:kraken/balance-snapshots?source=account_sync").get_json()
    assert [s["balance"] for s in body["snapshots"]] == ["700"]
    problem = get(app, "/api/accounts/alice:kraken/balance-snapshots?source=cron", status=400).get_json()
    assert "holdings_sync" in problem["detail"]


# --------------------------------------------------------------------------- daily closes


def test_admin_listings_cover_every_user(app):
    days = get(app, "/api/user_balances").get_json()   # admin, no user named
    assert sorted(d["user"] for d in days) == ["alice", "bob"]
    assert all(d["id"] == f"{d['user']}-{d['day']}" for d in days)
    assert {d["user"]: [p["portfolio"] for p in d["portfolioBalances"]] for d in days} == {
        "alice": ["alice:coinbase", "alice:kraken"], "bob": ["bob:kraken"]}
    own = get(app, "/api/user_balances", ALICE_TOKEN).get_json()
    assert [d["user"] for d in own] == ["alice"]
    records = get(app, "/api/account-balances?type=day").get_json()
    assert sorted(r["connection_id"] for r in records) == ["alice:coinbase", "alice:kraken", "bob:kraken"]
    assert sorted(r["connection_id"] for r in get(app, "/api/account-balances", ALICE_TOKEN).get_json()) == [
        "alice:coinbase", "alice:kraken"]
    get(app, "/api/user_balances?user=bob", ALICE_TOKEN, status=403)


def test_daily_amounts_are_numbers_with_their_digits(app):
    text = get(app, "/api/user_balances?user=alice").get_data(as_text=True)
    day, = json.loads(text, parse_float=D)
    assert day["totalBalance"] == {"amount": D("1000.00"), "currency": "USD"} and '"amount":1000.00' in text
    rows = {(r["account"], r["asset"]): (r["amount"], r["value"]) for r in day["accountBalances"]}
    assert rows[("alice:coinbase", "ETH")] == (D("0.04"), D("100.00"))
    assert {p["portfolio"]: p["value"] for p in day["portfolioBalances"]} == {
        "alice:coinbase": D("250.00"), "alice:kraken": D("750.00")}


# --------------------------------------------------------------------------- trace ids and auth


def test_every_problem_has_a_trace_id_in_body_header_and_log(app, caplog):
    caplog.set_level(logging.INFO, logger="web.request")
    client = app.test_client()
    response = client.get("/api/accounts/ghost:kraken/balance-history?start_date=2025-01-01",
                          headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    body = response.get_json()
    assert response.status_code == 404 and uuid.UUID(body["trace_id"])
    assert response.headers["X-Request-ID"] == body["trace_id"]
    line, = [r.getMessage() for r in caplog.records if r.name == "web.request"]
    assert re.fullmatch(rf"GET /api/accounts/ghost:kraken/balance-history 404 \d+\.\dms trace_id={body['trace_id']}", line)
    assert ADMIN_TOKEN not in caplog.text and "start_date" not in caplog.text
    unauthorized = client.get("/api/balance")   # a problem raised before any view
    assert unauthorized.status_code == 401
    assert unauthorized.get_json()["trace_id"] == unauthorized.headers["X-Request-ID"] != body["trace_id"]
    ok = client.get("/healthz")
    assert uuid.UUID(ok.headers["X-Request-ID"])


def test_request_lines_are_info_for_errors_and_slow_requests_debug_otherwise(app, caplog, monkeypatch):
    import web.problems

    caplog.set_level(logging.DEBUG, logger="web.request")
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/nope", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 404
    monkeypatch.setattr(web.problems, "SLOW_REQUEST_MS", 0.0)  # every request is now "slow"
    assert client.get("/healthz").status_code == 200
    lines = [(r.levelno, r.getMessage().split(" trace_id=")[0].rsplit(" ", 1)[0]) for r in caplog.records
             if r.name == "web.request"]
    assert lines == [(logging.DEBUG, "GET /healthz 200"), (logging.INFO, "GET /api/nope 404"),
                     (logging.INFO, "GET /healthz 200")]


def test_a_callers_request_id_is_kept_when_it_is_plain(app):
    client = app.test_client()
    kept = client.get("/api/nope", headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Request-ID": "abc123-def456.7_8"})
    assert kept.get_json()["trace_id"] == kept.headers["X-Request-ID"] == "abc123-def456.7_8"
    for sent in ("has space", "x" * 65, "new\\nline", "ünïcode"):
        replaced = client.get("/api/nope", headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Request-ID": sent})
        assert replaced.get_json()["trace_id"] == replaced.headers["X-Request-ID"] != sent
        assert uuid.UUID(replaced.headers["X-Request-ID"])


def test_authorization_without_scheme(app):
    client = app.test_client()
    assert client.get("/api/balance", headers={"Authorization": ALICE_TOKEN}).get_json() == {
        "netWorth": {"ETH": 0.04, "USD": 900}}
    assert client.get("/api/balance", headers={"Authorization": f"  {ADMIN_TOKEN} "}).status_code == 200
    for header in ("not-a-token", f"Basic {ALICE_TOKEN}", f"Token {ALICE_TOKEN}", "Bearer", ""):
        response = client.get("/api/balance", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.get_json()["trace_id"]


def test_problems_built_outside_the_api_get_the_trace_id_too(app, monkeypatch):
    import bot.app.ops

    def broken(manager):
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(bot.app.ops, "render_metrics", broken)  # /metrics' body comes from bot.app.ops
    response = get(app, "/metrics", status=500)
    body = response.get_json()
    assert body["title"] == "Internal Server Error" and body["trace_id"] == response.headers["X-Request-ID"]


def test_new_trace_ids_are_version_4_uuids_distinct_across_calls_and_forked_children():
    import os

    from web.problems import new_trace_id

    ids = [new_trace_id() for _ in range(2000)]
    assert len(set(ids)) == 2000 and all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child's generator is reseeded at fork: not the parent's next id
        os.write(write, new_trace_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        from_child = pipe.read()
    assert uuid.UUID(from_child).version == 4 and from_child != new_trace_id()
