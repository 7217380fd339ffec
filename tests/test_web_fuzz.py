"""A parameter fuzz over every endpoint of the web app (hypothesis): whatever the query, form,
path segment, header or credential, the answer is never a 5xx, and every 4xx is an RFC 9457
problem (``application/problem+json``, its ``status`` the response's); a 400 names one of the
endpoint's parameters.

Bounded: 100 examples per endpoint, no deadline, no example database (nothing written to the
tree) and derandomized, so that CI runs the same examples every time; the whole module takes a
few seconds. The values mix free text with the shapes that used to break the parsers: Unicode
digits (``"²".isdigit()`` is True), dates at and beyond the ends of ``datetime``, offsets up to a
day, malformed ``Host`` names and URLs.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import ConfigBuilder
from web import close_app, create_app

ADMIN_TOKEN = "fuzz-admin-token-5d1c07"
ALICE_TOKEN = "fuzz-alice-token-a9e3f4"
PROBLEM = "application/problem+json"

FUZZ = settings(max_examples=100, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def build(root, tokens: bool):
    config = ConfigBuilder(root)
    config.settings(web={"tokens": {sha(ADMIN_TOKEN): "admin", sha(ALICE_TOKEN): "alice"} if tokens else {},
                         "rate_limit_per_minute": 1_000_000})
    config.master({"kraken": {"paper": True, "balances": {"USD": "5000"}}})
    config.user("alice", {"kraken": {"paper": True, "balances": {"USD": "750", "ETH": "1"}, "prices": {"ETH": "2000"}},
                          "coinbase": {"paper": True, "balances": {"USD": "250"}}})
    config.user("bob", {"kraken": {"paper": True, "balances": {"USD": "2000"}}})
    app = create_app(config.load(), environ={})
    manager = app.extensions["multibalance"].manager
    manager.refresh()
    manager.history.flush()
    return app


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = build(tmp_path_factory.mktemp("fuzz") / "config", tokens=True)
    yield app
    close_app(app)


@pytest.fixture(scope="module")
def open_app(tmp_path_factory):
    """No token configured: loopback callers are admin, only loopback Host names are answered."""
    app = build(tmp_path_factory.mktemp("fuzz-open") / "config", tokens=False)
    yield app
    close_app(app)


# --- values -------------------------------------------------------------------------------------

offsets = st.integers(-1439, 1439).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
dates = st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31))
instants = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59), timezones=offsets)
UNICODE_DIGITS = ["²", "¹²", "₂", "①", "⑴", "٣", "１０", "𝟗", "৩", "1\u200b", "Ⅻ"]  # isdigit() True, int() may fail
INTEGER_EDGES = ["", " ", "0", "1", "-1", "+1", " 1", "100", "101", "1e2", "0x10", "1.0", "9" * 40, *UNICODE_DIGITS]
DATE_EDGES = ["9999-12-31", "99991231", "0001-01-01", "00010101", "00010105", "0000-00-00", "2025-02-29",
              "20250230", "2025-13-01", "2025-0101", "1969-12-31", "1970-01-01", "9998-12-31", "٢٠٢٥-٠١-٠١",
              "２０２５０１０１", "0001-01-01T00:00:00+05:00", "0001-01-01T00:00:00-05:00", "9999-12-31T23:59:59-05:00",
              "9999-12-31T23:59:59.999999+23:59", "2025-01-01T10:00:00", "2025-01-01T10:00:00Z",
              "2025-01-01T10:00:00 05:00", "2025-01-01T25:00:00Z", "2025-W01-1", "2025-001", "T", "Z", "today"]
CHOICE_EDGES = ["", "day", "month", "week", "DAY", "initial_connection", "manual_sync", "scheduled_sync", "cron",
                "alice", "bob", "master", "admin", "ghost", "..", "alice:kraken", "ALICE", "alice\x00", "\x00"]
URL_EDGES = ["/", "/users", "/users?x=1", "//evil.example/", "//[", "http://[::1", "//[::1/x", "\\\\evil",
             "/\\evil", "https://evil.example", "javascript:alert(1)", "/%2F%2Fevil", "users"]

# Per parameter: mostly the edges of its kind (sampled_from is listed twice to weigh it), then
# values of its kind, then any text.
integer_values = st.one_of(st.sampled_from(INTEGER_EDGES), st.sampled_from(INTEGER_EDGES),
                           st.integers(-10**6, 10**6).map(str), st.text(max_size=6))
date_values = st.one_of(st.sampled_from(DATE_EDGES), st.sampled_from(DATE_EDGES), dates.map(dt.date.isoformat),
                        dates.map(lambda d: d.strftime("%Y%m%d").zfill(8)), instants.map(dt.datetime.isoformat),
                        st.text(max_size=26))
choice_values = st.one_of(st.sampled_from(CHOICE_EDGES), st.text(max_size=12))
url_values = st.one_of(st.sampled_from(URL_EDGES), st.text(max_size=20))
KINDS = {"limit": integer_values, "start_date": date_values, "end_date": date_values, "from": date_values,
         "to": date_values, "date": date_values, "source": choice_values, "type": choice_values,
         "user": choice_values, "next": url_values}
values = st.one_of(integer_values, date_values, choice_values, url_values)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255, blacklist_characters="\x7f"), max_size=40)
account_ids = st.one_of(st.sampled_from(["alice:kraken", "alice:coinbase", "bob:kraken", "master:kraken",
                                         "alice:nope", "ghost:kraken", "alice", ":", "alice:kraken:USD"]),
                        st.text(min_size=1, max_size=20))
VALID_ACCOUNTS = st.sampled_from(["alice:kraken", "alice:coinbase", "bob:kraken", "master:kraken"])

CREDENTIALS = st.sampled_from(["admin", "alice", "none", "bad", "malformed"])


def query(names: tuple[str, ...]):
    """A query dict: any of ``names`` (each with values of its kind) and an unknown parameter."""
    return st.fixed_dictionaries({}, optional={**{name: KINDS[name] for name in names}, "junk": values})


def headers_for(who: str) -> dict:
    return {"admin": {"Authorization": f"Bearer {ADMIN_TOKEN}"}, "alice": {"Authorization": f"Bearer {ALICE_TOKEN}"},
            "bad": {"Authorization": "Bearer not-a-token"}, "malformed": {"Authorization": "Basic \xe9\xe9"},
            "none": {}}[who]


_addresses = itertools.count(1)


def fresh_client(app):
    """A client with its own address (the login limiter counts per address)."""
    n = next(_addresses)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"127.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
    return client


def check(response, params: tuple[str, ...] = ()) -> None:
    status = response.status_code
    text = response.get_data(as_text=True)
    assert status < 500, (status, text)
    if status >= 400:
        assert response.mimetype == PROBLEM, (status, response.mimetype, text)
        body = json.loads(text)
        assert body["status"] == status and {"type", "title", "detail", "instance"} <= set(body)
        if status == 400:
            assert body["invalid_params"][0]["name"] in params, body
    assert "Traceback" not in text


# --- the API ------------------------------------------------------------------------------------

GET_ENDPOINTS = [
    ("/api/users", ()),
    ("/api/balance", ()),
    ("/api/balance-snapshots", ()),
    ("/api/user_balances", ("user", "from", "to")),
    ("/api/account-balances", ("user", "date", "type")),
    ("/metrics", ()),
    ("/healthz", ()),
    ("/users", ()),
    ("/login", ("next",)),
]


PARAMETER_CALLERS = st.sampled_from(["admin", "admin", "alice"])  # callers who get past auth to the parsers


@pytest.mark.parametrize("path, params", GET_ENDPOINTS, ids=[p for p, _ in GET_ENDPOINTS])
def test_get_endpoint_parameters(app, path, params):
    @FUZZ
    @given(args=query(params), who=PARAMETER_CALLERS)
    def run(args, who):
        check(fresh_client(app).get(path, query_string=args, headers=headers_for(who)), params)

    run()


ACCOUNT_ENDPOINTS = [("balance-history", ("start_date", "end_date", "source")),
                     ("balance-snapshots", ("limit", "source"))]


@pytest.mark.parametrize("kind, params", ACCOUNT_ENDPOINTS, ids=[k for k, _ in ACCOUNT_ENDPOINTS])
def test_account_endpoint_parameters(app, kind, params):
    @FUZZ
    @given(account=VALID_ACCOUNTS, args=query(params), who=PARAMETER_CALLERS)
    def run(account, args, who):
        check(fresh_client(app).get(f"/api/accounts/{account}/{kind}", query_string=args, headers=headers_for(who)),
              params)

    run()


@pytest.mark.parametrize("kind", [k for k, _ in ACCOUNT_ENDPOINTS])
def test_account_paths(app, kind):
    @FUZZ
    @given(account=account_ids, who=CREDENTIALS)
    def run(account, who):
        check(fresh_client(app).get(f"/api/accounts/{quote(account, safe=':')}/{kind}", headers=headers_for(who)))

    run()


def test_credentials_and_headers(app):
    """Any credential (none, bad, malformed, a user's) and any Accept-Encoding, on every GET path."""
    paths = dict(GET_ENDPOINTS, **{"/api/accounts/alice:kraken/balance-snapshots": (), "/api/nope": (),
                                   "/static/dashboard.js": ()})

    @FUZZ
    @given(path=st.sampled_from(sorted(paths)), who=CREDENTIALS, encoding=header_text, authorization=header_text)
    def run(path, who, encoding, authorization):
        headers = {**headers_for(who), "Accept-Encoding": encoding}
        if who == "malformed":
            headers["Authorization"] = authorization
        check(fresh_client(app).get(path, headers=headers), paths[path])

    run()


def test_refresh(app):
    @FUZZ
    @given(who=CREDENTIALS, origin=header_text, fetch_site=st.sampled_from(["", "same-origin", "cross-site", "none"]),
           csrf=header_text, args=query(()))
    def run(who, origin, fetch_site, csrf, args):
        headers = {**headers_for(who), "Origin": origin, "Sec-Fetch-Site": fetch_site, "X-CSRF-Token": csrf}
        check(fresh_client(app).post("/api/refresh", query_string=args, headers=headers))

    run()


# --- the forms ----------------------------------------------------------------------------------

def login(client, token=ALICE_TOKEN) -> str:
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/login", data={"token": token, "csrf_token": csrf}).status_code == 303
    return csrf


def test_login_form(app):
    @FUZZ
    @given(form=st.fixed_dictionaries({}, optional={"token": st.one_of(values, st.just(ALICE_TOKEN)),
                                                     "csrf_token": values, "next": values}),
           use_page_token=st.booleans())
    def run(form, use_page_token):
        client = fresh_client(app)
        page = client.get("/login").get_data(as_text=True)
        if use_page_token:
            form = {**form, "csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)}
        response = client.post("/login", data=form)
        check(response)
        if response.status_code == 303:
            assert response.headers["Location"].startswith("/")  # never an open redirect
            assert not response.headers["Location"].startswith("//")

    run()


def test_logout_form(app):
    @FUZZ
    @given(field=values, header=header_text, as_header=st.booleans(), logged_in=st.booleans())
    def run(field, header, as_header, logged_in):
        client = fresh_client(app)
        if logged_in:
            login(client)
        response = (client.post("/logout", headers={"X-CSRF-Token": header}) if as_header
                    else client.post("/logout", data={"csrf_token": field}))
        check(response)

    run()


# --- the Host header ----------------------------------------------------------------------------

hosts = st.one_of(st.sampled_from(["localhost", "localhost:5000", "127.0.0.1", "[::1]:80", "[::1", "[]", "[::1]x",
                                   ":", ":80", "localhost:", "localhost:99999999", "rebind.evil.example",
                                   "LOCALHOST", "127.0.0.1.", "0x7f000001", "2130706433", "127.1", "::1"]),
                  header_text)


def test_host_header(open_app):
    @FUZZ
    @given(host=hosts, path=st.sampled_from(["/api/users", "/api/balance", "/users", "/metrics", "/healthz",
                                             "/login"]))
    def run(host, path):
        response = fresh_client(open_app).get(path, headers={"Host": host})
        check(response)
        assert response.status_code in (200, 421), (host, response.status_code)

    run()
