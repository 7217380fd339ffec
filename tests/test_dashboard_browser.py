"""The /users dashboard in a real browser: Debian's Chromium driven by Python Playwright.

The app (`web.create_app`) is served by werkzeug's threaded WSGI server on 127.0.0.1 (a free
port) in a thread of the test process, so a test can change what the page shows: alice's kraken
account lives on a loopback FakeKraken whose balance the test changes; the other accounts are
paper accounts. Tokens are configured (as SHA-256 hashes in settings), so the browser logs in
through the login page like a person would.

Browser: ``/usr/bin/chromium`` (Debian package ``chromium``), headless, launched by Playwright's
Python package with ``executable_path`` (no browser is ever downloaded: never run ``playwright
install``). Without Playwright or Chromium the module is skipped, unless
``MULTIBALANCE_REQUIRE_BROWSER=1`` (CI) turns that into a failure.

Every test fails on a console error, an uncaught page error, a failed request or an HTTP error
response seen by the page. Waiting is done with Playwright's auto-waiting ``expect`` (with a
timeout), never with sleeps; the 15-second poll is driven with Playwright's fake clock.
``$DASHBOARD_SCREENSHOT`` names where the first test saves a full-page screenshot.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import threading
from decimal import Decimal as D

import pytest

from tests.conftest import FAST_SETTINGS, broker_on, no_spacing
from tests.fakes import FakeKraken

from tests.browser_support import launch, require_browser

require_browser()

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from bot.store import DailyRow, SnapshotIn  # noqa: E402
from web import close_app, create_app  # noqa: E402

ADMIN_TOKEN = "admin-token-for-browser-tests"
ALICE_TOKEN = "alice-token-for-browser-tests"
EVIL_NAME = "<script>alert(1)</script>"
WAIT_MS = 15_000
BLUE = (37, 99, 235)  # the daily-close line colour (#2563eb) in dashboard.js


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def paper(**balances) -> dict:
    return {"paper": True, "balances": {k: str(v) for k, v in balances.items()}}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


class Site:
    """The served app and what a test needs to change behind it."""

    def __init__(self, app, server, kraken, alice_kraken):
        self.app, self.server, self.kraken, self.alice_kraken = app, server, kraken, alice_kraken
        self.url = f"http://127.0.0.1:{server.server_port}"

    @property
    def manager(self):
        return self.app.extensions["multibalance"].manager

    def set_alice_kraken_usd(self, amount: str) -> None:
        self.kraken.set_balance(self.alice_kraken["api_key"], "USD", amount)


def seed_history(store, today: dt.date) -> None:
    """Five final daily closes and a few snapshots of alice, so her chart has lines to draw."""
    for back, total in enumerate(["900", "920", "950", "940", "980"], start=1):
        day = today - dt.timedelta(days=6 - back)
        rows = [DailyRow(account_id="alice:kraken", asset="USD", amount=D(total) - 250, price=D(1),
                         value=D(total) - 250, base_currency="USD", account_status="ok"),
                DailyRow(account_id="alice:coinbase", asset="USD", amount=D(250), price=D(1), value=D(250),
                         base_currency="USD", account_status="ok")]
        store.upsert_daily("alice", day, rows, state="final")
    now = dt.datetime.now(dt.timezone.utc)
    snaps = []
    for hours, kraken_value in [(5, "700"), (3, "720"), (1, "740")]:
        at = now - dt.timedelta(hours=hours)
        snaps.append(SnapshotIn(account_id="alice:kraken", owner="alice", broker="kraken", balance=D(kraken_value),
                                currency="USD", source="scheduled_sync", captured_at=at))
        snaps.append(SnapshotIn(account_id="alice:coinbase", owner="alice", broker="coinbase", balance=D(250),
                                currency="USD", source="scheduled_sync", captured_at=at))
    store.add_snapshots(snaps)


@pytest.fixture
def site(config):
    """Master $1,234.56; bob $2,500.00; alice $1,000.00 (coinbase paper $250 + kraken fake $750,
    two trades); evil ($5.00, named <script>alert(1)</script>); carol (binance without credentials:
    not configured, total unknown). All accounts read once before the page is opened."""
    from werkzeug.serving import make_server

    with FakeKraken() as kraken:
        alice_kraken = kraken.add_account({"USD": "750"})
        config.settings(**FAST_SETTINGS, rate_limits=no_spacing("kraken"),
                        web={"tokens": {sha(ADMIN_TOKEN): "admin", sha(ALICE_TOKEN): "alice"}})
        config.master({"coinbase": paper(USD="1234.56")})
        config.user("alice", {"coinbase": paper(USD=250), "kraken": broker_on(kraken, alice_kraken)}, name="Alice")
        config.user("bob", {"kraken": paper(USD=2500)}, name="Bob")
        config.user("evil", {"kraken": paper(USD=5)}, name=EVIL_NAME)
        config.user("carol", {"binance": {"api_key_env": "NO_SUCH_KEY", "api_secret_env": "NO_SUCH_SECRET"}},
                    name="Carol")
        app = create_app(config.load(), environ={})
        try:
            manager = app.extensions["multibalance"].manager
            seed_history(manager.history.store, manager.history.today())
            manager.refresh()
            manager.history.flush()
            manager.record_trade("alice", "kraken", "BTC/USD", "buy", "0.01", "50000")
            manager.record_trade("alice", "kraken", "BTC/USD", "sell", "0.01", "50500", pnl="5")
            server = make_server("127.0.0.1", 0, app, threaded=True)
            thread = threading.Thread(target=server.serve_forever, name="dashboard-server", daemon=True)
            thread.start()
            try:
                yield Site(app, server, kraken, alice_kraken)
            finally:
                server.shutdown()
                thread.join()
                server.server_close()
        finally:
            close_app(app)


class Watch:
    """Everything that went wrong in the page: console errors, page errors, failed requests,
    HTTP errors, dialogs."""

    def __init__(self, page):
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1300, "height": 1000}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.watch = Watch(page)
    yield page
    context.close()


def login(page, site, token: str) -> None:
    page.goto(site.url + "/users")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fusers$|/login\?next=/users$"))
    page.fill("#token", token)
    page.click("#login")
    expect(page).to_have_url(site.url + "/users")
    expect(page.locator("#dashboard")).to_have_attribute("data-loaded", "true")


def card(page, user_id: str):
    return page.locator(f'.user-card[data-user-id="{user_id}"]')


def broker_line(page, user_id: str, broker: str):
    return card(page, user_id).locator(f'li.broker[data-broker="{broker}"]')


def assert_clean(page) -> None:
    assert page.watch.problems == []
    assert page.watch.dialogs == []


# --------------------------------------------------------------------------- tests


def test_dashboard_shows_the_right_numbers_and_draws_the_chart(page, site):
    login(page, site, ADMIN_TOKEN)

    expect(page.locator("#sum-users")).to_have_text("4")
    expect(page.locator("#sum-capital")).to_have_text("$3,505.00")
    expect(page.locator("#sum-average")).to_have_text("$1,168.33")   # over the 3 known totals, not 4 (issue 12)
    expect(page.locator("#sum-average-note")).to_have_text("over 3 of 4 users")
    expect(page.locator("#sum-capital-partial")).to_be_visible()     # carol's total is unknown
    expect(page.locator("#viewer")).to_have_text("admin")

    master = page.locator("#master")
    expect(master).to_be_visible()
    expect(master.locator('[data-field="master-total"]')).to_have_text("$1,234.56")
    expect(master.locator('li.broker[data-broker="coinbase"] .broker-value')).to_have_text("$1,234.56")

    # sorted by total, highest first; the unknown total last
    expect(page.locator(".user-card")).to_have_count(4)
    ids = page.locator(".user-card").evaluate_all("cards => cards.map(c => c.dataset.userId)")
    assert ids == ["bob", "alice", "evil", "carol"]

    alice = card(page, "alice")
    expect(alice.locator(".user-name")).to_have_text("Alice")
    expect(alice.locator('[data-field="total"]')).to_have_text("$1,000.00")
    expect(broker_line(page, "alice", "coinbase").locator(".broker-value")).to_have_text("$250.00")
    expect(broker_line(page, "alice", "kraken").locator(".broker-value")).to_have_text("$750.00")
    expect(broker_line(page, "alice", "kraken").locator(".badge")).to_have_text("ok")
    expect(alice.locator('[data-field="total_trades"]')).to_have_text("2")
    expect(alice.locator('[data-field="win_rate"]')).to_have_text("100.0%")
    expect(alice.locator('[data-field="daily_pnl"]')).to_have_text("+$5.00")
    expect(alice.locator('[data-field="total_pnl"]')).to_have_text("+$5.00")
    trades = alice.locator("table.trades tbody tr")
    expect(trades).to_have_count(2)
    expect(trades.first.locator("td").nth(3)).to_have_text("sell")       # newest first
    expect(trades.first.locator("td").nth(6)).to_have_text("+$5.00")

    expect(card(page, "bob").locator('[data-field="total"]')).to_have_text("$2,500.00")
    expect(card(page, "bob").locator('[data-field="total_trades"]')).to_have_text("0")
    expect(card(page, "bob").locator('[data-field="win_rate"]')).to_have_text("\u2014")

    # unknown is "unknown"/"—", never $0.00
    carol = card(page, "carol")
    expect(carol.locator('[data-field="total"]')).to_have_text("unknown")
    expect(broker_line(page, "carol", "binance").locator(".badge")).to_have_text("not configured")
    expect(broker_line(page, "carol", "binance").locator(".broker-value")).to_have_text("\u2014")
    expect(broker_line(page, "carol", "binance").locator(".reason")).to_contain_text("NO_SUCH_KEY")
    expect(carol).not_to_contain_text("$0.00")

    # the chart: Chart.js holds both series and the daily-close line is on the canvas
    canvas = alice.locator("canvas")
    expect(canvas).to_have_attribute("data-chart-ready", "true")
    lengths = canvas.evaluate("c => Chart.getChart(c).data.datasets.map(d => d.data.length)")
    assert lengths[0] >= 6          # five final closes + today's provisional one
    assert lengths[1] >= 3          # the seeded snapshots (and the live read)
    blue = canvas.evaluate("""(c, rgb) => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4)
            if (d[i + 3] > 200 && Math.abs(d[i] - rgb[0]) < 20 && Math.abs(d[i + 1] - rgb[1]) < 20
                && Math.abs(d[i + 2] - rgb[2]) < 20) n++;
        return n;
    }""", list(BLUE))
    assert blue > 50
    expect(card(page, "bob").locator("canvas")).to_have_attribute("data-chart-ready", "true")

    shot = os.environ.get("DASHBOARD_SCREENSHOT")
    if shot:
        page.screenshot(path=shot, full_page=True)
    assert_clean(page)


def test_refresh_button_updates_a_card_without_reloading(page, site):
    login(page, site, ADMIN_TOKEN)
    page.evaluate("window.__sameDocument = true")
    expect(card(page, "alice").locator('[data-field="total"]')).to_have_text("$1,000.00")

    site.set_alice_kraken_usd("2750")
    page.click("#refresh")               # POST /api/refresh with the page's CSRF header, then /api/users

    expect(card(page, "alice").locator('[data-field="total"]')).to_have_text("$3,000.00")
    expect(broker_line(page, "alice", "kraken").locator(".broker-value")).to_have_text("$2,750.00")
    expect(page.locator("#sum-capital")).to_have_text("$5,505.00")
    expect(page.locator(".user-card").first).to_have_attribute("data-user-id", "alice")   # re-sorted
    assert page.evaluate("window.__sameDocument") is True
    assert_clean(page)


def test_the_page_polls_the_api_and_shows_a_stale_account(page, site):
    page.clock.install()                 # the 15 s poll timer is driven by the test, not waited for
    login(page, site, ADMIN_TOKEN)
    page.evaluate("window.__sameDocument = true")

    site.set_alice_kraken_usd("100")
    site.manager.refresh()               # the server learns the new balance; the page is not told
    page.clock.fast_forward(16_000)
    expect(card(page, "alice").locator('[data-field="total"]')).to_have_text("$350.00")

    site.kraken.inject("http_500", site.alice_kraken["api_key"], count=10)
    site.manager.refresh()               # the read fails: the last good value is kept, marked stale
    page.clock.fast_forward(16_000)
    badge = broker_line(page, "alice", "kraken").locator(".badge")
    expect(badge).to_have_text(re.compile(r"^stale \d+[smhd] \(ExchangeNotAvailable\)$"))
    expect(badge).to_have_attribute("title", re.compile("ExchangeNotAvailable"))
    expect(broker_line(page, "alice", "kraken").locator(".broker-value")).to_have_text("$100.00")
    assert page.evaluate("window.__sameDocument") is True
    assert_clean(page)


def test_a_user_token_sees_only_that_user_and_logs_out(page, site):
    page.goto(site.url + "/login")
    page.fill("#token", "not-a-token")
    page.click("#login")
    expect(page.locator(".login-error")).to_have_text("That token is not valid.")

    login(page, site, ALICE_TOKEN)
    expect(page.locator("#viewer")).to_have_text("alice")
    expect(page.locator(".user-card")).to_have_count(1)
    expect(card(page, "alice").locator('[data-field="total"]')).to_have_text("$1,000.00")
    expect(page.locator("#master")).to_be_hidden()
    expect(page.locator("#sum-users")).to_have_text("1")
    expect(page.locator("#sum-capital")).to_have_text("$1,000.00")
    expect(card(page, "alice").locator("canvas")).to_have_attribute("data-chart-ready", "true")
    expect(page.locator("body")).not_to_contain_text("Bob")

    page.click("#logout")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto(site.url + "/users")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    assert_clean(page)


def test_a_user_named_like_a_script_is_shown_as_text(page, site):
    login(page, site, ADMIN_TOKEN)
    evil = card(page, "evil")
    expect(evil.locator(".user-name")).to_have_text(EVIL_NAME)
    expect(evil.locator(".user-name")).to_be_visible()
    assert evil.locator(".user-name script").count() == 0
    assert page.locator("#users script").count() == 0
    expect(evil.locator('[data-field="total"]')).to_have_text("$5.00")
    expect(evil.locator("canvas")).to_have_attribute("data-chart-ready", "true")
    page.click("#refresh")               # re-rendered from /api/users: still text
    expect(page.locator("#refresh")).to_have_text("Refresh")
    expect(evil.locator(".user-name")).to_have_text(EVIL_NAME)
    assert page.watch.dialogs == []
    assert_clean(page)
