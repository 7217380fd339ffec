"""The Flask app: the ``/users`` dashboard, the JSON API, ``/metrics`` and ``/healthz``.

``create_app(config=None, *, manager=None, config_dir=None, start_scheduler=False)`` is the
application factory (importing this package does no work). It uses ``manager`` if given (the
caller keeps owning it), else builds a `MultiAccountBrokerManager` on ``config`` (a loaded
`bot.config.Config`) or ``config_dir`` and owns it: `close_app(app)` closes what the app owns.

Blueprints: `web.pages` (/users, /login, /logout), `web.api` (/api/*), `web.ops` (/metrics,
/healthz). Every request first passes `web.context.identify`: the ``Host`` check (DNS
rebinding, `web.hosts`), the caller (`web.auth`, sessions revocable at logout: `web.sessions`),
and on /api/* the rate limit per token (`web.ratelimit`), 401 without a valid token, and the
CSRF check. Every error is an RFC 9457 problem (`web.problems`). Views read
``manager.current_states()`` and the store, never an exchange. HTML responses carry a
Content-Security-Policy and ``X-Frame-Options: DENY``.

Other WSGI servers: ``waitress-serve --call 'web:create_app'`` (configuration from
``$BALANCES_CONFIG``), with ``$BALANCES_API_TOKENS`` or ``web.tokens`` set when not on loopback.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
from typing import Mapping

from flask import Flask, g, request

from web import auth, problems
from web.context import EXTENSION, WebContext, check_csrf, context, identify, require_principal
from web.hosts import HostPolicy
from web.payloads import UsersPayload
from web.ratelimit import FixedWindowLimiter
from web.sessions import CookieSessions, SessionRevocations

__all__ = ["EXTENSION", "WebContext", "check_csrf", "close_app", "context", "create_app", "require_principal"]

log = logging.getLogger(__name__)

SECRET_ENV = "BALANCES_WEB_SECRET"
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                           "frame-ancestors 'none'; form-action 'self'")


def create_app(config=None, *, manager=None, config_dir=None, start_scheduler: bool = False,
               environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app (see the module docstring). ``environ`` (default ``os.environ``) supplies
    ``BALANCES_API_TOKENS`` and ``BALANCES_WEB_SECRET``. Raises bot.config.ConfigError for a bad
    configuration, web.auth.TokenConfigError for a malformed ``$BALANCES_API_TOKENS``."""
    from bot.app.manager import MultiAccountBrokerManager
    from bot.history.journal import load_sample_trades
    from web import api, ops, pages  # they import this package's helpers

    environ = os.environ if environ is None else environ
    owns = manager is None
    if owns:
        manager = MultiAccountBrokerManager(config, config_dir=config_dir)
    try:
        manager.open()
        config = manager.config
        web = config.settings.web
        hashes = dict(web.tokens)
        hashes.update(auth.parse_env_tokens(environ.get(auth.TOKENS_ENV), {u.user_id for u in config.users}))
        secret = (web.secret_key or environ.get(SECRET_ENV) or "").encode() or secrets.token_bytes(32)
        tokens = auth.TokenTable(hashes, secret)
        if web.sample_trades and manager.history is not None:
            sample = config.directory / "sample_trades.json"
            if sample.is_file():
                written = load_sample_trades(manager.history.store, sample, [u.user_id for u in config.users])
                if written:
                    log.info("loaded %d SAMPLE trades from %s into the empty journal", written, sample)
        users_payload = UsersPayload(manager, web)
        manager.add_listener(users_payload.state_changed)
        manager.add_trade_listener(users_payload.changed)
        if start_scheduler:
            manager.start_scheduler()
    except BaseException:
        if owns:
            manager.close()
        raise

    lifetime = dt.timedelta(hours=web.session_hours)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_NAME="multibalance_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=web.secure_cookies,
        PERMANENT_SESSION_LIFETIME=lifetime,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.session_interface = CookieSessions()
    app.extensions[EXTENSION] = WebContext(
        manager=manager, web=web, tokens=tokens,
        limiter=FixedWindowLimiter(web.rate_limit_per_minute),
        login_limiter=FixedWindowLimiter(10),
        users_payload=users_payload, owns_manager=owns, scheduler_started=start_scheduler,
        hosts=HostPolicy.for_settings(not tokens.empty, web.allowed_hosts),
        sessions=SessionRevocations(None if manager.history is None else manager.history.store, lifetime))

    problems.register(app)
    app.before_request(identify)
    app.after_request(_headers)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(ops.bp)
    return app


def close_app(app: Flask) -> None:
    """Stop the app's refresh workers and close the manager if the app built it."""
    app.extensions[EXTENSION].close()


def _headers(response):
    rate = g.get("rate")
    if rate is not None:
        response.headers.update(rate.headers())
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
