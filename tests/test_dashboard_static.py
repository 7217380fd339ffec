"""The dashboard's static files as files: small modules, data only through textContent (no HTML
sinks anywhere), nothing loaded from outside the server, every module the entry point imports
present and served with a JavaScript type (ES modules are refused otherwise)."""
from __future__ import annotations

import re
from pathlib import Path

from web import close_app, create_app

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
SCRIPTS = sorted([STATIC / "dashboard.js", *(STATIC / "dashboard").glob("*.js")])
HTML_SINKS = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function")
IMPORT = re.compile(r'^import .* from "(\./[^"]+)";$', re.M)
COMMENTS = re.compile(r"/\*.*?\*/|(?<![:\\])//[^\n]*", re.S)   # block comments and // to the line's end


def code_of(script: Path) -> str:
    """The script without its comments (they may name what the code must never do)."""
    return COMMENTS.sub("", script.read_text())


def test_every_module_is_small_and_has_no_html_sink():
    assert len(SCRIPTS) >= 5
    for script in SCRIPTS:
        text = script.read_text()
        assert len(text.splitlines()) < 400, script
        code = code_of(script)
        assert "export " in code or "import " in code, script     # the stripping left the code
        assert not HTML_SINKS.search(code), script
        assert "http://" not in text and "https://" not in text, script


def test_the_templates_and_stylesheet_load_nothing_from_elsewhere():
    for path in [*TEMPLATES.glob("*.html"), STATIC / "dashboard.css"]:
        text = path.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert "@import" not in text and "url(http" not in text, path


def test_every_import_resolves_and_is_served_as_javascript(config):
    config.settings()
    config.user("alice", {"kraken": {"paper": True, "balances": {"USD": "1"}}})
    app = create_app(config.load(), environ={})
    try:
        client = app.test_client()
        for script in SCRIPTS:
            for target in IMPORT.findall(script.read_text()):
                module = (script.parent / target).resolve()
                assert module.is_file(), (script, target)
                response = client.get("/static/" + module.relative_to(STATIC).as_posix())
                assert response.status_code == 200
                assert response.mimetype in ("text/javascript", "application/javascript"), response.mimetype
        page = client.get("/users").get_data(as_text=True)
        assert '<script type="module" src="/static/dashboard.js">' in page
    finally:
        close_app(app)

