"""What the dashboard's browser test modules share: Chromium through Playwright, a served app,
and a record of every request and response the page makes.

Browser: ``/usr/bin/chromium`` (Debian package ``chromium``) driven by Python Playwright with
``executable_path`` (never ``playwright install``). Import `require_browser()` first thing in a
test module: without Playwright or Chromium the module is skipped, unless
``MULTIBALANCE_REQUIRE_BROWSER=1`` (CI) turns that into an error.

``$DASHBOARD_SCREENSHOTS`` names a directory where `screenshot` saves PNGs of the viewport (for
a person to look at; nothing asserts on them and they are never committed).
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
WAIT_MS = 15_000


def require_browser() -> None:
    """Skip the calling module (or fail under MULTIBALANCE_REQUIRE_BROWSER=1) without a browser."""
    why = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        why = "the Python package playwright is not installed (pip install -e '.[dev]')"
    if why is None and not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing (apt-get install chromium)"
    if why:
        if os.environ.get("MULTIBALANCE_REQUIRE_BROWSER") == "1":
            raise RuntimeError(f"browser tests required but {why}")
        pytest.skip(why, allow_module_level=True)


def launch(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)


@contextmanager
def serve(app):
    """Serve ``app`` on 127.0.0.1 (a free port) from a thread; yield its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="dashboard-test-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


class Traffic:
    """Every request the page sent and every response it got, and what went wrong (console
    errors, page errors, failed requests). Playwright calls the handlers on the test's thread."""

    def __init__(self, page):
        self.requests: list[str] = []
        self.responses: list[tuple[int, str, dict]] = []
        self.problems: list[str] = []
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("response", lambda r: self.responses.append((r.status, r.url, r.headers)))
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"request failed: {r.url} {r.failure}"))

    def api(self, path: str | None = None) -> list[str]:
        """The /api/ requests (those to ``path`` exactly, query aside, when given)."""
        urls = [u for u in self.requests if "/api/" in u]
        if path is not None:
            urls = [u for u in urls if u.split("?", 1)[0].endswith(path)]
        return urls

    def errors(self) -> list[tuple[int, str]]:
        return [(status, url) for status, url, _ in self.responses if status >= 400]


def screenshot(page, name: str, full_page: bool = False) -> None:
    folder = os.environ.get("DASHBOARD_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)
