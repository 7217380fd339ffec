"""The dashboard's fleet tile, failing-first order, unpriced assets and the compact table view,
in a real browser (Chromium via Playwright: tests/browser_support.py).

The page is served from the states of tests/read_model_states.py (no tokens: a loopback caller
is admin) plus three journaled trades, so every status is on the page:

    master  coinbase ok                    bob    kraken stale, coinbase ok (0.00)   P&L -3
    alice   coinbase ok, kraken ok  P&L +5 carol  kraken error, coinbase ok
    dave    binance not configured         erin   kraken ok, holds only FOO (unpriced)
    frank   coinbase ok, kraken pending    P&L +10

Server order (by total): bob, alice, carol, frank, dave, erin.
"""
from __future__ import annotations

import pytest

from tests.browser_support import WAIT_MS, Traffic, launch, require_browser, screenshot, serve

require_browser()

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.read_model_states import mixed_states  # noqa: E402
from web import close_app, create_app  # noqa: E402

SERVER_ORDER = ["bob", "alice", "carol", "frank", "dave", "erin"]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def site(config, managers):
    with mixed_states(config, managers) as (manager, _):
        manager.record_trade("alice", "kraken", "BTC/USD", "sell", "0.01", "50500", pnl="5")
        manager.record_trade("bob", "kraken", "ETH/USD", "sell", "1", "2000", pnl="-3")
        manager.record_trade("frank", "coinbase", "SOL/USD", "sell", "2", "100", pnl="10")
        app = create_app(manager=manager, environ={})
        try:
            with serve(app) as url:
                yield url
        finally:
            close_app(app)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.traffic = Traffic(page)
    yield page
    context.close()


def open_dashboard(page, url: str) -> None:
    page.goto(url + "/users")
    expect(page.locator("#dashboard")).to_have_attribute("data-loaded", "true")


def history_settled(page) -> None:
    """Wait until the page's history request has been answered (a reload would abort it)."""
    page.wait_for_function("() => { const d = window.multibalanceDashboard;"
                           " return d && d.feed.data !== null && !d.feed.loading; }")


def card_ids(page) -> list[str]:
    return page.locator(".user-card:visible").evaluate_all("cards => cards.map(c => c.dataset.userId)")


def row_ids(page) -> list[str]:
    return page.locator("#users-tbody tr").evaluate_all("rows => rows.map(r => r.dataset.userId)")


def count_of(page, status: str):
    return page.locator(f'#fleet [data-count="{status}"] .count')


def assert_clean(page) -> None:
    assert page.traffic.problems == []
    assert page.traffic.errors() == []


def test_the_fleet_tile_counts_accounts_by_status_and_filters_on_click(page, site):
    open_dashboard(page, site)

    expect(page.locator("#fleet-total")).to_have_text("11 accounts")
    expected = {"ok": "7", "stale": "1", "error": "1", "not_configured": "1", "pending": "1", "unpriced": "1"}
    for status, n in expected.items():
        expect(count_of(page, status)).to_have_text(n)
    expect(page.locator('#fleet [data-count="error"]')).to_contain_text("1 failing")
    expect(page.locator('#fleet [data-count="not_configured"]')).to_contain_text("1 not configured")
    expect(page.locator('#fleet [data-count="pending"]')).to_be_visible()   # shown because it is not 0
    expect(page.locator("#fleet")).to_have_class("metric fleet has-failing")

    page.click('#fleet button[data-filter="error"]')
    expect(page.locator(".user-card:visible")).to_have_count(1)
    assert card_ids(page) == ["carol"]
    expect(page.locator("#filter-status")).to_have_value("error")
    expect(page.locator("#shown-count")).to_have_text("showing 1 of 6 users")
    page.click('#fleet button[data-filter="error"]')                        # again: everyone
    expect(page.locator(".user-card:visible")).to_have_count(6)
    assert_clean(page)


def test_failing_users_and_accounts_come_first_and_unpriced_assets_show(page, site):
    open_dashboard(page, site)

    # failing (carol: an account in error), then stale (bob), then the server's order by total
    assert card_ids(page) == ["carol", "bob", "alice", "frank", "dave", "erin"]
    expect(page.locator('.user-card[data-user-id="carol"]')).to_have_class("card user-card failing")
    expect(page.locator('.user-card[data-user-id="bob"]')).to_have_class("card user-card stale")

    # within a card, the failing account's line comes before the others (the module in the page)
    order = page.evaluate("""async () => {
        const m = await import('/static/dashboard/status.js');
        return m.brokerOrder({a: 1, b: null, c: 2, d: 3},
                             {a: {status: 'ok'}, b: {status: 'pending'}, c: {status: 'error'}, d: {status: 'stale'}});
    }""")
    assert order == ["c", "d", "a", "b"]

    erin = page.locator('.user-card[data-user-id="erin"]')
    expect(erin.locator("li.broker .reason.unpriced")).to_have_text("unpriced: FOO")
    expect(erin.locator('[data-field="total"]')).to_have_text("unknown")
    expect(erin).not_to_contain_text("$0.00")
    assert_clean(page)


def test_the_table_view_sorts_filters_and_is_remembered(page, site):
    open_dashboard(page, site)
    expect(page.locator("#users")).to_be_visible()
    expect(page.locator("#view-cards")).to_have_attribute("aria-pressed", "true")

    page.click("#view-table")
    expect(page.locator("#users-table")).to_be_visible()
    expect(page.locator("#users")).to_be_hidden()
    expect(page.locator("#users-tbody tr")).to_have_count(6)
    assert row_ids(page) == ["carol", "bob", "alice", "frank", "dave", "erin"]   # failing first here too

    carol = page.locator('#users-tbody tr[data-user-id="carol"]')
    expect(carol.locator('[data-field="status"]')).to_contain_text("error (AuthenticationError)")
    expect(page.locator('#users-tbody tr[data-user-id="erin"] [data-field="status"]')).to_contain_text("unpriced: FOO")
    expect(page.locator('#users-tbody tr[data-user-id="dave"] [data-field="total"]')).to_have_text("unknown")
    expect(page.locator('#users-tbody tr[data-user-id="frank"] [data-field="total_pnl"]')).to_have_text("+$10.00")

    page.click('button[data-sort="name"]')
    assert row_ids(page) == ["alice", "bob", "carol", "dave", "erin", "frank"]
    expect(page.locator('th[data-sort-key="name"]')).to_have_attribute("aria-sort", "ascending")
    page.click('button[data-sort="name"]')
    assert row_ids(page) == ["frank", "erin", "dave", "carol", "bob", "alice"]
    expect(page.locator('th[data-sort-key="name"]')).to_have_attribute("aria-sort", "descending")

    page.click('button[data-sort="total"]')                                 # highest first, unknown last
    assert row_ids(page) == ["bob", "alice", "carol", "frank", "dave", "erin"]
    page.click('button[data-sort="total"]')                                 # lowest first, unknown still last
    assert row_ids(page) == ["frank", "carol", "alice", "bob", "dave", "erin"]

    page.click('button[data-sort="status"]')    # worst first: error, stale, not read yet, not configured, ok
    assert row_ids(page) == ["carol", "bob", "frank", "dave", "alice", "erin"]

    page.click('button[data-sort="pnl"]')                                   # highest P&L first, unknown last
    assert row_ids(page) == ["frank", "alice", "bob", "carol", "dave", "erin"]
    expect(page.locator("#sort")).to_have_value("pnl")

    page.fill("#filter-text", "AR")                                         # id or name, any case
    assert row_ids(page) == ["carol"]
    page.fill("#filter-text", "Eri")
    assert row_ids(page) == ["erin"]
    page.fill("#filter-text", "")
    page.select_option("#filter-status", "stale")
    assert row_ids(page) == ["bob"]
    page.select_option("#filter-status", "ok")                              # every account ok
    assert row_ids(page) == ["alice", "erin"]
    page.fill("#filter-text", "nobody")
    expect(page.locator("#users-none")).to_be_visible()
    expect(page.locator("#users-tbody tr")).to_have_count(0)

    screenshot(page, "fleet-table-1440")
    history_settled(page)                                                   # asked for when the cards showed
    page.reload()                                                           # the choice is remembered
    expect(page.locator("#dashboard")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#users-table")).to_be_visible()
    expect(page.locator("#view-table")).to_have_attribute("aria-pressed", "true")
    assert page.evaluate("localStorage.getItem('multibalance.dashboard.view')") == "table"
    page.click("#view-cards")
    history_settled(page)
    page.reload()
    expect(page.locator("#dashboard")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#users")).to_be_visible()
    expect(page.locator("#users-table-box")).to_be_hidden()
    screenshot(page, "fleet-cards-1440")
    assert_clean(page)
