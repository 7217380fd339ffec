"""One read model behind every surface: on ONE set of states (tests/read_model_states.py: ok,
stale, error, not_configured, pending, only-unpriced, really empty), the terminal table, the
CLI's JSON, ``/api/users``, the dashboard's data (the page's embedded payload), the metrics and
the guide's summary agree on every total, partial mark, average and count; an unknown value is
never a 0 on any of them and raises no BALANCE_LOW; zero users is $0.00 over 0 users; a value
too large for the money context is one account's error, not a crash."""
from __future__ import annotations

import html
import json
import re
from decimal import Decimal as D

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.views.metrics import render_metrics
from bot.views.model import build_read_model, user_balance_summary
from bot.views.report import build_report, render_table, report_json
from tests.conftest import FAST_SETTINGS, broker_on, no_spacing
from tests.fakes import FakeOKX
from tests.read_model_states import (AVERAGE, CAPITAL, COUNTED, EXACT_CAPITAL, RANKED, STATUSES, TOTALS,
                                     UNKNOWN_ACCOUNTS, USERS, mixed_states, paper)
from web import close_app, create_app


@pytest.fixture
def mixed(config, managers):
    with mixed_states(config, managers) as (manager, system):
        app = create_app(manager=manager, environ={})   # no tokens: a loopback caller is admin
        try:
            yield manager, system, app.test_client()
        finally:
            close_app(app)


def metric_samples(body: bytes) -> dict:
    """{(name, ((label, value), ...)): value} of a scrape."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(body.decode()) for s in f.samples}


def metric(samples: dict, name: str, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def dashboard_data(client) -> dict:
    """The payload the /users page hands to dashboard.js (its embedded JSON block)."""
    page = client.get("/users")
    assert page.status_code == 200
    match = re.search(r'<script type="application/json" id="initial-data">(.*?)</script>', page.get_data(as_text=True),
                      re.S)
    return json.loads(html.unescape(match.group(1)))


def table_lines(table: str) -> dict:
    """{user: {BROKER or SUBTOTAL: text of its value column}} and the summary lines of the table."""
    users, current, summary = {}, None, {}
    for line in table.splitlines():
        if line.startswith("   User: "):
            current = users.setdefault(line.removeprefix("   User: "), {})
        elif current is not None and line.startswith("      "):
            current[line[6:23].strip()] = line[23:]
        elif ":" in line and line.startswith("   ") and line[3:26].strip().endswith(":"):
            summary[line[3:26].strip()] = line[26:]
    return {"users": users, "summary": summary}


def test_every_surface_agrees_on_totals_marks_averages_and_counts(mixed):
    manager, _, client = mixed
    report = build_report(manager)
    cli, table = report_json(report), table_lines(render_table(report))
    api = client.get("/api/users").get_json()
    page = dashboard_data(client)
    samples = metric_samples(render_metrics(manager))
    guide = user_balance_summary(build_read_model(manager))

    # per user: (total, partial) on the CLI's JSON, the API, the dashboard's data and the guide's dict
    assert {u: (cli["summary"]["user_totals"][u], cli["summary"]["user_partial"][u]) for u in TOTALS} == TOTALS
    for body in (api, page):
        assert {u["user_id"]: (u["total"], u["partial"]) for u in body["users"]} == TOTALS
        assert [u["user_id"] for u in body["users"]] == RANKED       # highest first, unknown last, ties by id
    assert [u["user_id"] for u in guide["users"]] == RANKED
    assert {u["user_id"]: (None if u["total"] is None else float(u["total"]), u["partial"])
            for u in guide["users"]} == TOTALS

    # the table: the same totals, a mark on every partial known subtotal, "unknown" for the unknown ones
    marks = {"alice": "$1,000.00", "bob": "$2,500.00 (partial)", "carol": "$100.00 (partial)", "dave": "unknown",
             "erin": "unknown", "frank": "$40.00 (partial)"}
    assert {u: lines["SUBTOTAL"] for u, lines in table["users"].items()} == marks

    # the summary: capital over the known totals, average over the users counted, partial
    assert cli["summary"]["total_user_capital"] == CAPITAL and cli["summary"]["average_per_user"] == AVERAGE
    assert (cli["summary"]["user_count"], cli["summary"]["users_counted"], cli["summary"]["partial"]) == (
        USERS, COUNTED, True)
    for body in (api, page):
        assert body["summary"] == {"total_users": USERS, "total_user_capital": CAPITAL, "users_counted": COUNTED,
                                   "average_per_user": AVERAGE, "partial": True}
    assert table["summary"] == {"Total Users:": str(USERS), "Total User Capital:": "$3,640.00 (partial)",
                                "Average per User:": "$910.00 (partial; over 4 of 6 users)"}
    assert (metric(samples, "multibalance_user_capital", currency="USD"), metric(samples, "multibalance_users"),
            metric(samples, "multibalance_users_counted"), metric(samples, "multibalance_user_capital_partial")) == (
        CAPITAL, USERS, COUNTED, 1)
    assert (guide["total_capital"], guide["user_count"], guide["users_counted"], guide["partial"]) == (
        EXACT_CAPITAL, USERS, COUNTED, True)
    assert guide["average_balance"] == D("910.00") and f"{guide['average_balance']:,.2f}" == "910.00"

    # the master: the same total everywhere, not partial
    assert cli["summary"]["master_total"] == api["master"]["total"] == page["master"]["total"] == 1234.56
    assert cli["summary"]["master_partial"] is api["master"]["partial"] is False

    # statuses and error classes (fields, not parsed): JSON accounts, API, metrics
    assert {f"{a['owner']}:{a['broker']}": a["status"] for a in cli["accounts"]} == STATUSES
    by_id = {f"{a['owner']}:{a['broker']}": a for a in cli["accounts"]}
    assert by_id["bob:kraken"]["error_class"] == "ExchangeNotAvailable" and by_id["bob:kraken"]["value"] == 2500.0
    assert by_id["carol:kraken"]["error_class"] == "AuthenticationError"
    api_users = {u["user_id"]: u for u in api["users"]}
    assert api_users["bob"]["status"]["kraken"]["error_class"] == "ExchangeNotAvailable"
    assert api_users["carol"]["status"]["kraken"]["error_class"] == "AuthenticationError"
    assert api_users["frank"]["status"]["kraken"]["status"] == "pending"
    assert table["users"]["bob"]["KRAKEN"].startswith("$2,500.00  stale ")
    assert table["users"]["bob"]["KRAKEN"].endswith("(ExchangeNotAvailable)")
    assert table["users"]["carol"]["KRAKEN"] == "unavailable (AuthenticationError)"
    assert table["users"]["frank"]["KRAKEN"] == "not read yet"
    assert metric(samples, "multibalance_fetch_errors_total", exchange="kraken", error_class="AuthenticationError") == 1
    assert metric(samples, "multibalance_fetch_errors_total", exchange="kraken", error_class="ExchangeNotAvailable") == 1
    assert metric(samples, "multibalance_alerts_fired_total", type="BALANCE_LOW") == 2      # bob's 0 and frank's 40
    assert {status: metric(samples, "multibalance_accounts", status=status)
            for status in ("ok", "stale", "error", "not_configured", "pending")} == {
        "ok": 7, "stale": 1, "error": 1, "not_configured": 1, "pending": 1}


def test_unknown_is_never_zero_on_any_surface(mixed):
    manager, system, client = mixed
    report = build_report(manager)
    cli, table = report_json(report), table_lines(render_table(report))
    api_users = {u["user_id"]: u for u in client.get("/api/users").get_json()["users"]}
    page_users = {u["user_id"]: u for u in dashboard_data(client)["users"]}
    samples = metric_samples(render_metrics(manager))
    by_id = {f"{a['owner']}:{a['broker']}": a for a in cli["accounts"]}

    # erin holds only an unpriced asset: ok, FOO listed, value unknown (null), never 0
    erin = by_id["erin:kraken"]
    assert (erin["status"], erin["value"], erin["unpriced"]) == ("ok", None, ["FOO"])
    assert erin["assets"]["FOO"] == {"amount": 3.0, "price": None, "value": None}
    assert cli["balances"]["users"]["erin"] == {"kraken": None} and cli["summary"]["user_totals"]["erin"] is None
    assert table["users"]["erin"] == {"KRAKEN": "unknown  + unpriced: FOO", "SUBTOTAL": "unknown"}
    for users in (api_users, page_users):
        assert users["erin"]["total"] is None and users["erin"]["brokers"] == {"kraken": None}
        assert users["erin"]["status"]["kraken"]["status"] == "ok"
        assert users["erin"]["status"]["kraken"]["unpriced"] == ["FOO"]
    erin_labels = {"owner": "erin", "broker": "kraken", "exchange": "kraken"}
    assert metric(samples, "multibalance_account_value", currency="USD", **erin_labels) is None           # absent, not 0
    assert metric(samples, "multibalance_account_asset_amount", asset="FOO", **erin_labels) == 3

    # every unknown account: null in JSON, absent from /metrics, "unknown"/"unavailable"/"not ..." in the table
    for account_id in UNKNOWN_ACCOUNTS:
        owner, broker = account_id.split(":")
        assert by_id[account_id]["value"] is None
        assert api_users[owner]["brokers"][broker] is None and page_users[owner]["brokers"][broker] is None
        exchange = by_id[account_id]["exchange"]
        assert metric(samples, "multibalance_account_value", currency="USD", owner=owner, broker=broker, exchange=exchange) is None
        assert "$0.00" not in table["users"][owner][broker.upper()]

    # a really empty account is 0, and is low; the unknown one never is
    bob_coinbase = {"owner": "bob", "broker": "coinbase", "exchange": "coinbase"}
    assert by_id["bob:coinbase"]["value"] == 0.0 and metric(samples, "multibalance_account_value", currency="USD", **bob_coinbase) == 0
    assert table["users"]["bob"]["COINBASE"] == "$0.00"
    open_alerts = system.open_alerts()
    assert ("BALANCE_LOW", "bob", "coinbase") in open_alerts and ("BALANCE_LOW", "frank", "coinbase") in open_alerts
    assert not any(user in ("erin", "dave") or (user, broker) in (("carol", "kraken"), ("frank", "kraken"))
                   for kind, user, broker in open_alerts if kind == "BALANCE_LOW"), open_alerts
    assert "erin" not in {a.user_id for a in system.get_recent_alerts(100)}


def test_zero_users_is_zero_capital_over_zero_users(config, managers):
    config.master({"coinbase": paper(USD=10)})
    manager = config.manager()
    managers.append(manager)
    manager.refresh()
    report = build_report(manager)
    summary = report_json(report)["summary"]
    assert (summary["user_count"], summary["users_counted"], summary["total_user_capital"],
            summary["average_per_user"], summary["partial"]) == (0, 0, 0.0, 0.0, False)
    table = table_lines(render_table(report))["summary"]
    assert table == {"Total Users:": "0", "Total User Capital:": "$0.00", "Average per User:": "$0.00"}
    guide = user_balance_summary(build_read_model(manager))
    assert (guide["user_count"], guide["total_capital"], guide["average_balance"], guide["users"]) == (0, 0, 0, [])
    assert f"${guide['total_capital']:,.2f}" == "$0.00"
    samples = metric_samples(render_metrics(manager))
    assert (metric(samples, "multibalance_users"), metric(samples, "multibalance_user_capital", currency="USD"),
            metric(samples, "multibalance_user_capital_partial")) == (0, 0, 0)
    app = create_app(manager=manager, environ={})
    try:
        body = app.test_client().get("/api/users").get_json()
    finally:
        close_app(app)
    assert body["users"] == [] and body["summary"] == {"total_users": 0, "total_user_capital": 0.0,
                                                       "users_counted": 0, "average_per_user": 0.0, "partial": False}


def test_a_value_beyond_the_money_context_is_one_accounts_error(config, managers):
    """Balances as an exchange sends them (OKX writes plain digits; the configuration bounds
    paper balances), USDT valued at its USD peg."""
    with FakeOKX() as okx:
        big, bigger, absurd, small = (okx.add_account({"USDT": usdt}) for usdt in ("1" + "0" * 26, "1" + "0" * 30,
                                                                                    "1" + "0" * 45, "5"))
        config.settings(**FAST_SETTINGS, rate_limits=no_spacing("okx"))
        config.user("whale", {"okx": broker_on(okx, big), "okx2": broker_on(okx, bigger)})  # big, but real numbers
        config.user("absurd", {"okx": broker_on(okx, absurd)})                              # beyond 1E+40
        config.user("alice", {"okx": broker_on(okx, small)})
        manager = config.manager()
        managers.append(manager)
        manager.refresh()
    states = {s.owner: s for s in manager.current_states() if s.broker == "okx"}
    assert states["absurd"].status.value == "error" and states["absurd"].value is None
    assert states["absurd"].error_class == "ValueOutOfRange" and "USD" in states["absurd"].error
    assert states["whale"].value == D(10) ** 26
    report = build_report(manager)
    table, data = render_table(report), report_json(report)
    assert "$100,000,000,000,000,000,000,000,000.00" in table                       # 1e26: printed, no crash
    assert "unavailable (ValueOutOfRange)" in table
    assert data["summary"]["user_totals"] == {"whale": 1.0001e30, "absurd": None, "alice": 5.0}
    assert data["summary"]["total_user_capital"] == 1.0001e30 and data["summary"]["users_counted"] == 2
    app = create_app(manager=manager, environ={})
    try:
        client = app.test_client()
        assert client.get("/api/users").status_code == 200 and client.get("/users").status_code == 200
        assert client.get("/metrics").status_code == 200
    finally:
        close_app(app)


def test_ranking_is_by_total_descending_ties_by_user_id_unknown_totals_last():
    from decimal import Decimal

    from bot.views.model import OwnerTotal, ReadModel, summarize

    def user(owner, total):
        return OwnerTotal(owner, owner, (), (), None if total is None else Decimal(total), total is None)

    users = (user("dora", "5"), user("carl", None), user("bob", "7.50"), user("anna", None), user("eve", "7.5"),
             user("alex", "-1"), user("ben", "0"), user("cid", "100"))  # configuration order, not by id
    model = ReadModel(0.0, "USD", "UTC", None, users, summarize(users))
    assert [u.owner for u in model.ranked] == ["cid", "bob", "eve", "dora", "ben", "alex", "anna", "carl"]
    assert [u.owner for u in model.users] == ["dora", "carl", "bob", "anna", "eve", "alex", "ben", "cid"]
