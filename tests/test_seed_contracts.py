"""Our JSON against the source documents: every field their examples show, with their JSON types.

The documents are kept verbatim in tests/data/seeds/; each example is extracted from the text as
written (the user-balances draft has comments, blank values and trailing commas, which
`seed_json` tolerates) and compared recursively with our real output: the Flask app's test
client on a configuration of paper accounts with a real SQLite store, and the CLI's export.

Comparison rules (`mismatches`): every key of the example must be in our object (we may add
more); a number must be a number, a string a string, a boolean a boolean, an object an object,
an array an array whose every element matches the union of the example's elements. A blank value
in the example (``"value": ,``) accepts any type. ``null`` is accepted only where the document
says a field is nullable (`NULLABLE`). Identifier fields the examples show as numbers
(``12345678``) are strings here (our users, accounts and close ids are names: `IDENTIFIERS`).
Objects keyed by data (currency codes) are compared by their values' type (`KEYED_BY_DATA`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from decimal import Decimal as D
from pathlib import Path

import pytest

from bot.app.cli import main as cli_main
from bot.store import AssetRow, BalanceStore, SnapshotIn
from web import close_app, context, create_app

SEEDS = Path(__file__).parent / "data" / "seeds"
ADMIN_TOKEN = "seed-admin-token-3c9a"
ALICE_TOKEN = "seed-alice-token-77d1"
NULLABLE = {"available_balance", "holdings_value", "cash_value", "change_amount", "change_percent"}
IDENTIFIERS = {"id", "user", "account", "portfolio"}
KEYED_BY_DATA = {"netWorth", "total_balance_by_currency"}
ANY = object()  # a blank value in an example
LONG_DOT = "100.123456789012345678"  # more digits than a float keeps


# --------------------------------------------------------------------------- extracting examples

def _lenient(text: str) -> str:
    text = re.sub(r"(?<=[\s,])//[^\n]*", "", text)     # // comments (not the // of a URL)
    text = re.sub(r":\s*(?=[,}\]])", lambda _: ': "\\u0000ANY"', text)  # blank values
    return re.sub(r",(\s*[}\]])", r"\1", text)          # trailing commas


def _any(value):
    if value == "\u0000ANY":
        return ANY
    if isinstance(value, dict):
        return {k: _any(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_any(v) for v in value]
    return value


def seed_json(name: str) -> list:
    """Every top-level JSON value (object or array) written in the seed's text, in order."""
    text = _lenient((SEEDS / name).read_text())
    decoder, found, index = json.JSONDecoder(), [], 0
    while True:
        match = re.search(r"^[ \t]*[\[{]", text[index:], re.MULTILINE)
        if match is None:
            return found
        start = index + match.end() - 1
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            index = start + 1
            continue
        if isinstance(value, (dict, list)) and value:
            found.append(_any(value))
        index = end


def _kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, D)):  # Decimal: parsed with parse_float=Decimal
        return "number"
    return {str: "string", dict: "object", list: "array", type(None): "null"}[type(value)]


def _union(elements: list):
    """The example elements of an array as one expected element (objects: union of keys)."""
    objects = [e for e in elements if isinstance(e, dict)]
    if len(objects) != len(elements):
        return elements[0]
    merged: dict = {}
    for element in objects:
        for key, value in element.items():
            if merged.get(key) is None or merged[key] is ANY:  # the first example that shows a value
                merged[key] = value
    return merged


def mismatches(expected, actual, path: str = "$") -> list[str]:
    """What in ``actual`` does not have the example's fields and types (see the module docstring)."""
    field = path.rsplit(".", 1)[-1].split("[", 1)[0]
    if expected is ANY or expected is None:  # blank, or only ever shown as null: any type
        return []
    if actual is None:
        return [] if field in NULLABLE else [f"{path}: null where the example has {_kind(expected)}"]
    if field in IDENTIFIERS and _kind(expected) in ("number", "string"):
        return [] if isinstance(actual, str) else [f"{path}: identifier is {_kind(actual)}"]
    if _kind(expected) != _kind(actual):
        return [f"{path}: {_kind(actual)} where the example has {_kind(expected)}"]
    problems = []
    if isinstance(expected, dict):
        if field in KEYED_BY_DATA:
            sample = next(iter(expected.values()), ANY)
            for key, value in actual.items():
                problems += mismatches(sample, value, f"{path}.{key}")
        else:
            for key, value in expected.items():
                if key not in actual:
                    problems.append(f"{path}.{key}: missing")
                else:
                    problems += mismatches(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, list) and expected:
        if not actual:
            problems.append(f"{path}: empty where the example has elements")
        element = _union(expected)
        for index, value in enumerate(actual):
            problems += mismatches(element, value, f"{path}[{index}]")
    return problems


# --------------------------------------------------------------------------- the app


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_seed_config(config, tmp_path):
    url = f"sqlite:///{(tmp_path / 'history.sqlite3').as_posix()}"
    config.settings(database_url=url, web={"tokens": {sha(ADMIN_TOKEN): "admin", sha(ALICE_TOKEN): "alice"}})
    config.master({"kraken": {"paper": True, "balances": {"USD": "5000"}}})
    config.user("alice", {"coinbase": {"paper": True, "balances": {"USD": "150", "ETH": "0.04"},
                                       "prices": {"ETH": "2500"}},
                          "kraken": {"paper": True, "balances": {"USD": "750"}}}, name="Alice")
    config.user("bob", {"kraken": {"paper": True, "balances": {"USD": "2000", "DOT": LONG_DOT}, "prices": {"DOT": "5"}}},
                name="Bob")
    return url


@pytest.fixture
def seeded(config, tmp_path):
    """An app whose store has an older snapshot of alice:kraken (700 USD), then one read of
    every account: so alice:kraken's newest snapshot has a change (+50, +7.142857 %)."""
    url = write_seed_config(config, tmp_path)
    store = BalanceStore(url)
    earlier = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
    store.add_snapshots([SnapshotIn("alice:kraken", "alice", "kraken", D("700"), "USD", "account_sync", earlier,
                                    (AssetRow("USD", D("700"), D(1), D("700")),))])
    store.close()
    app = create_app(config.load(), environ={})
    manager = context_of(app).manager
    manager.refresh()
    manager.history.flush()
    yield app
    close_app(app)


def context_of(app):
    with app.app_context():
        return context()


def get(app, path, token=ADMIN_TOKEN, **headers):
    response = app.test_client().get(path, headers={"Authorization": f"Bearer {token}", **headers})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def example(name: str, has: str):
    """The first example of seed ``name`` whose (first) object has the key ``has``, non-empty."""
    for value in seed_json(name):
        first = value[0] if isinstance(value, list) else value
        if isinstance(first, dict) and first.get(has):
            return value
    raise AssertionError(f"no example with {has!r} in {name}")


# --------------------------------------------------------------------------- the comparisons


def test_examples_are_extracted_from_the_seed_text():
    """The extraction finds what the documents show (so a comparison below cannot pass on nothing)."""
    daily = example("000_user_balances.txt", "portfolioBalances")
    assert daily[0]["totalBalance"] == {"amount": 39293.29, "currency": "GBP"} and daily[0]["portfolioBalances"][0]["value"] is ANY
    assert example("001_net_worth.txt", "netWorth") == {"netWorth": {"ARS": 125000.50, "USD": 5430.25, "EUR": 1200.00}}
    schema, sample = seed_json("002_account_balance.txt")[:2]
    assert schema["data"][0]["account_balance"] == "number" and sample["object_class"] == "bank"
    snapshots = [v for v in seed_json("003_balance_snapshots.txt") if "snapshots" in v]
    assert [v["total_count"] for v in snapshots] == [1, 2]
    assert example("003_balance_snapshots.txt", "trace_id")["trace_id"] == "abc123-def456-ghi789"
    assert mismatches({"a": 1}, {"a": "1"}) == ["$.a: string where the example has number"]
    assert mismatches({"a": [{"b": True}]}, {"a": [{}]}) == ["$.a[0].b: missing"]


def test_daily_user_balances_match_seed_000(seeded):
    seed = example("000_user_balances.txt", "portfolioBalances")
    ours = get(seeded, "/api/user_balances?user=alice").get_json()
    assert ours and mismatches([seed[0]], ours) == []
    day = ours[0]
    assert re.fullmatch(r"alice-\d{8}", day["id"]) and day["id"] == f"alice-{day['day']}"
    assert [p["portfolio"] for p in day["portfolioBalances"]] == ["alice:coinbase", "alice:kraken"]
    assert {p["portfolio"]: p["value"] for p in day["portfolioBalances"]} == {"alice:coinbase": 250.0, "alice:kraken": 750.0}
    assert all(p["currency"] == "USD" and p["time"].endswith("Z") for p in day["portfolioBalances"])


def test_net_worth_matches_seed_001(seeded):
    seed = example("001_net_worth.txt", "netWorth")
    ours = get(seeded, "/api/balance", ALICE_TOKEN).get_json()
    assert ours == {"netWorth": {"ETH": 0.04, "USD": 900}} and mismatches(seed, ours) == []
    response = get(seeded, "/api/balance")
    exact = json.loads(response.get_data(as_text=True), parse_float=D)["netWorth"]
    assert exact == {"DOT": D(LONG_DOT), "ETH": D("0.04"), "USD": D(7900)}  # every digit


def test_account_balance_records_match_seed_002(seeded, capsys):
    schema, sample = seed_json("002_account_balance.txt")[:2]
    ours = get(seeded, "/api/account-balances?user=alice&type=day").get_json()
    assert ours and mismatches(sample, ours[0]) == []
    declared = {"string": "string", "number": "number", "boolean": "boolean"}
    for record in ours:
        assert {k: declared[v] for k, v in schema.items() if k != "data"} == {
            k: _kind(record[k]) for k in schema if k != "data"}
        assert all({k: declared[v] for k, v in schema["data"][0].items()} == {k: _kind(line[k]) for k in schema["data"][0]}
                   for line in record["data"])
        assert record["object_class"] == "account-balance" and record["currency"] == "USD"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00\.000Z", record["balance_date"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["object_creation_date"])
    # the CLI's export writes the same records, amounts with every digit
    config_dir = str(context_of(seeded).manager.config.directory)
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert cli_main(["--config", config_dir, "--export", "account-balance", "--user", "bob", "--date", today, "--json"]) == 0
    exported, = json.loads(capsys.readouterr().out, parse_float=D)
    assert mismatches(sample, exported) == [] and exported["connection_id"] == "bob:kraken"
    dot, = (line for line in exported["data"] if line["account_currency"] == "DOT")
    assert dot["account_balance"] == D(LONG_DOT)


def test_snapshot_endpoints_match_seed_003(seeded):
    latest, history = [v for v in seed_json("003_balance_snapshots.txt") if "snapshots" in v]
    ours_latest = get(seeded, "/api/balance-snapshots", ALICE_TOKEN).get_json()
    assert mismatches(latest, ours_latest) == []
    ours_history = get(seeded, "/api/accounts/alice:kraken/balance-history").get_json()
    assert mismatches(history, ours_history) == []
    # "List recent snapshots ... Same structure as Balance History response."
    ours_recent = get(seeded, "/api/accounts/alice:kraken/balance-snapshots").get_json()
    assert mismatches(history, ours_recent) == []
    assert set(history) <= set(ours_recent) and set(ours_history) - {"start_date", "end_date"} == set(ours_recent) - {"limit"}


def test_problem_bodies_match_seed_003(seeded):
    seed = example("003_balance_snapshots.txt", "trace_id")
    response = seeded.test_client().get("/api/accounts/ghost:kraken/balance-history",
                                        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    body = response.get_json()
    assert mismatches(seed, body) == []
    assert body["trace_id"] == response.headers["X-Request-ID"]
