"""The dashboard with 40 users in a real browser (Chromium via Playwright: tests/browser_support.py):
the request budget, the charts' axes, a single-user login and the mobile layout.

One served app for the module: 40 paper users (u00..u39) with 45 days of daily closes and
recent snapshots each, settings.timezone America/New_York, the API's default rate limit (100
requests a minute per token), tokens for admin and for u00. u00's balance is flat at
$80,114.13 for all 45 days (the "repeated y label" case of issue 14) and u00 has trades.
Each test opens its own browser context (its own cookies and localStorage).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import re
from decimal import Decimal as D

import pytest

from tests.browser_support import WAIT_MS, Traffic, launch, require_browser, screenshot, serve

require_browser()

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from bot.store import DailyRow, SnapshotIn  # noqa: E402
from tests.conftest import ConfigBuilder  # noqa: E402
from web import close_app, create_app  # noqa: E402

ADMIN_TOKEN = "admin-token-for-scale-tests"
U00_TOKEN = "u00-token-for-scale-tests"
USERS = [f"u{i:02d}" for i in range(40)]
FLAT = D("80114.13")
ZONE = "America/New_York"
DAYS = 45


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def balance_of(i: int, back: int) -> D:
    return FLAT if i == 0 else D(1000 + 37 * i) + D(back % 7) * 11


def seed(store, today: dt.date) -> None:
    for i, user in enumerate(USERS):
        for back in range(1, DAYS):
            value = balance_of(i, back)
            store.upsert_daily(user, today - dt.timedelta(days=back),
                               [DailyRow(account_id=f"{user}:kraken", asset="USD", amount=value, price=D(1), value=value,
                                         base_currency="USD", account_status="ok")], state="final")
    now = dt.datetime.now(dt.timezone.utc)
    store.add_snapshots([SnapshotIn(account_id=f"{user}:kraken", owner=user, broker="kraken",
                                    balance=balance_of(i, hours), currency="USD", source="scheduled_sync",
                                    captured_at=now - dt.timedelta(hours=hours))
                         for i, user in enumerate(USERS) for hours in (6, 4, 2)])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    config = ConfigBuilder(tmp_path_factory.mktemp("scale") / "config")
    config.settings(timezone=ZONE, web={"tokens": {sha(ADMIN_TOKEN): "admin", sha(U00_TOKEN): "u00"}})
    for i, user in enumerate(USERS):
        config.user(user, {"kraken": {"paper": True, "balances": {"USD": str(balance_of(i, 0))}}}, name=f"User {i:02d}")
    app = create_app(config.load(), environ={})
    try:
        manager = app.extensions["multibalance"].manager
        seed(manager.history.store, manager.history.today())
        manager.refresh()
        manager.history.flush()
        for n in range(3):
            manager.record_trade("u00", "kraken", "BTC/USDT:USDT-PERPETUAL", "sell", "0.00012345", "98765.4321",
                                 pnl=f"-{n}1234.56")
        with serve(app) as url:
            yield url
    finally:
        close_app(app)


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def new_page(browser, width=1440, height=900):
    context = browser.new_context(viewport={"width": width, "height": height}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.traffic = Traffic(page)
    return page


@pytest.fixture
def page(browser):
    page = new_page(browser)
    yield page
    page.context.close()


@pytest.fixture
def phone(browser):
    page = new_page(browser, 390, 844)
    yield page
    page.context.close()


def login(page, site: str, token: str) -> None:
    page.goto(site + "/users")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("#token", token)
    page.click("#login")
    expect(page).to_have_url(site + "/users")
    loaded(page)


def loaded(page) -> None:
    expect(page.locator("#dashboard")).to_have_attribute("data-loaded", "true")


def canvas(page, user: str):
    return page.locator(f'.user-card[data-user-id="{user}"] canvas')


def assert_clean(page) -> None:
    assert page.traffic.problems == []
    assert page.traffic.errors() == []


def test_one_history_request_per_page_and_no_429_on_a_reload(page, site):
    login(page, site, ADMIN_TOKEN)
    expect(page.locator(".user-card")).to_have_count(40)
    expect(canvas(page, "u00")).to_have_attribute("data-chart-ready", "true")
    traffic = page.traffic
    assert len(traffic.api("/api/users/history")) == 1
    assert traffic.api("/api/user_balances") == [] and [u for u in traffic.api() if "/api/accounts/" in u] == []

    page.reload()                                          # within the same minute as the first load
    loaded(page)
    for i, user in enumerate(USERS):                        # every card's chart, from the one bundle
        page.locator(f'.user-card[data-user-id="{user}"]').scroll_into_view_if_needed()
        expect(canvas(page, user)).to_have_attribute("data-chart-ready", "true")
    assert len(traffic.api("/api/users/history")) == 2      # one per page load, for 40 charts
    assert len(traffic.api()) <= 4                          # plus at most a poll of /api/users per load
    assert [s for s, _, _ in traffic.responses if s == 429] == []
    history = [h for s, u, h in traffic.responses if "/api/users/history" in u]
    assert int(history[-1]["x-ratelimit-remaining"]) >= 100 - 4
    assert_clean(page)


def test_a_single_user_login_has_no_fleet_wide_tiles(page, site):
    login(page, site, U00_TOKEN)
    expect(page.locator(".user-card")).to_have_count(1)
    expect(page.locator("#tile-users")).to_be_hidden()
    expect(page.locator("#tile-average")).to_be_hidden()
    expect(page.locator("#toolbar")).to_be_hidden()
    expect(page.locator("#tile-capital")).to_be_visible()
    expect(page.locator("#tile-capital .label")).to_have_text("Your capital")
    expect(page.locator("#sum-capital")).to_have_text("$80,114.13")
    expect(page.locator("#fleet-total")).to_have_text("1 account")
    expect(page.locator('#fleet [data-count="ok"] .count')).to_have_text("1")
    expect(page.locator("#fleet button")).to_have_count(0)   # counts, not filters, for one user
    expect(canvas(page, "u00")).to_have_attribute("data-chart-ready", "true")
    users = page.evaluate("Object.keys(window.multibalanceDashboard.feed.data.users)")
    assert users == ["u00"]                                 # the bundle is scoped to the caller
    assert len(page.traffic.api("/api/users/history")) == 1
    assert_clean(page)


CHART = """(c) => {
    const chart = Chart.getChart(c);
    const data = chart.data.datasets.flatMap(d => d.data.map(p => p.x));
    return {y: chart.scales.y.ticks.map(t => t.label), x: chart.scales.x.ticks.map(t => t.label),
            xv: chart.scales.x.ticks.map(t => t.value), min: chart.scales.x.min, max: chart.scales.x.max,
            lastX: Math.max(...data), now: Date.now(), title: chart.options.scales.x.title.text,
            midnights: chart.scales.x.ticks.map(t => new Intl.DateTimeFormat('en-US',
                {timeZone: '%s', hourCycle: 'h23', hour: '2-digit', minute: '2-digit'}).format(t.value))};
}""" % ZONE


def test_chart_ticks_are_distinct_dated_in_the_zone_and_never_in_the_future(page, site):
    login(page, site, ADMIN_TOKEN)
    expect(page.locator("#timezone")).to_have_text(f"times in {ZONE}")
    for user in ("u00", "u01"):                             # u00 flat at $80,114.13, u01 moving
        canvas(page, user).scroll_into_view_if_needed()
        expect(canvas(page, user)).to_have_attribute("data-chart-ready", "true")
        axes = canvas(page, user).evaluate(CHART)
        assert len(axes["y"]) >= 3 and len(set(axes["y"])) == len(axes["y"]), axes["y"]
        assert all(label.startswith("$") for label in axes["y"])
        assert 4 <= len(axes["x"]) <= 8, axes["x"]          # 45 days: a tick a week, not two ticks
        assert len(set(axes["x"])) == len(axes["x"])
        assert all(re.fullmatch(r"[A-Z][a-z]{2} \d{1,2}", label) for label in axes["x"]), axes["x"]
        assert set(axes["midnights"]) == {"00:00"}          # ticks on midnights in the configured zone
        assert axes["lastX"] <= axes["max"] <= axes["now"]  # ends now: never in the future
        assert axes["max"] - axes["min"] >= (DAYS - 2) * 86_400_000
        assert axes["title"] == f"time zone: {ZONE}"
    flat = canvas(page, "u00").evaluate(CHART)["y"]
    assert any(label.startswith("$80,1") for label in flat), flat
    assert_clean(page)


def fits(page) -> dict:
    """Whether the page is as wide as the screen, and what sticks out (outside scroll boxes)."""
    return page.evaluate("""() => {
        const out = [];
        for (const e of document.querySelectorAll('body *')) {
            if (e.closest('.scroll-x') || e.closest('[hidden]')) continue;
            const r = e.getBoundingClientRect();
            if (r.width && (r.right > innerWidth + 0.5 || r.left < -0.5)) out.push(e.tagName + '.' + e.className);
        }
        return {scrollWidth: document.documentElement.scrollWidth, innerWidth: innerWidth, outside: out};
    }""")


SCROLLER = """(wrap) => {
    const box = wrap.querySelector('.scroll-x');
    const before = box.scrollLeft;
    box.scrollLeft = box.scrollWidth;
    const moved = box.scrollLeft - before;
    const last = box.querySelector('thead th:last-child').getBoundingClientRect();
    const right = box.getBoundingClientRect().right;
    box.scrollLeft = 0;
    return {overflowX: getComputedStyle(box).overflowX, scrollWidth: box.scrollWidth, clientWidth: box.clientWidth,
            moved: moved, lastVisibleAtEnd: last.right <= right + 1, overflowing: wrap.classList.contains('overflowing')};
}"""


def test_the_mobile_layout_fits_and_wide_tables_scroll_visibly(phone, browser, site):
    login(phone, site, ADMIN_TOKEN)
    expect(phone.locator("#users")).to_be_visible()
    expect(canvas(phone, "u00")).to_have_attribute("data-chart-ready", "true")
    layout = fits(phone)
    assert layout["scrollWidth"] <= layout["innerWidth"] and layout["outside"] == [], layout

    trades = phone.locator('.user-card[data-user-id="u00"] .scroll-wrap')
    expect(trades.locator("table.trades tbody tr")).to_have_count(3)
    expect(trades).to_have_class(re.compile(r"\boverflowing\b"))
    expect(trades.locator(".scroll-hint")).to_be_visible()
    box = trades.evaluate(SCROLLER)
    assert box["overflowX"] == "auto" and box["scrollWidth"] > box["clientWidth"] and box["moved"] > 0, box
    assert box["lastVisibleAtEnd"], box                     # the P&L column is reachable
    screenshot(phone, "scale-top-390")
    trades.scroll_into_view_if_needed()
    screenshot(phone, "scale-card-390")

    phone.click("#view-table")
    expect(phone.locator("#users-tbody tr")).to_have_count(40)
    layout = fits(phone)
    assert layout["scrollWidth"] <= layout["innerWidth"] and layout["outside"] == [], layout
    table = phone.locator("#users-table-box")
    expect(table).to_have_class(re.compile(r"\boverflowing\b"))
    box = table.evaluate(SCROLLER)
    assert box["scrollWidth"] > box["clientWidth"] and box["moved"] > 0 and box["lastVisibleAtEnd"], box
    screenshot(phone, "scale-table-390")
    assert_clean(phone)

    desk = new_page(browser)
    try:
        login(desk, site, ADMIN_TOKEN)
        expect(canvas(desk, "u00")).to_have_attribute("data-chart-ready", "true")
        layout = fits(desk)
        assert layout["scrollWidth"] <= layout["innerWidth"], layout
        screenshot(desk, "scale-cards-1440")
        desk.click("#view-table")
        screenshot(desk, "scale-table-1440")
        assert_clean(desk)
    finally:
        desk.context.close()
