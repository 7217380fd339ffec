"""The Flask app: the ``/users`` dashboard, the JSON API, ``/metrics`` and ``/healthz``.

``create_app(config=None, *, manager=None, config_dir=None, start_scheduler=False)`` is the
application factory (importing this package does no work). It uses ``manager`` if given (the
caller keeps owning it), else builds a `MultiAccountBrokerManager` on ``config`` (a loaded
`bot.config.Config`) or ``config_dir`` and owns it: `close_app(app)` closes what the app owns.

Blueprints: `web.pages` (/users, /login, /logout), `web.api` (/api/*), `web.ops` (/metrics,
/healthz). Every request is identified first (`web.auth`); /api/* is rate limited per token
(`web.ratelimit`) and answers 401 without a valid token; every error is an RFC 9457 problem
(`web.problems`). Views read ``manager.current_states()`` and the store, never an exchange.

Other WSGI servers: ``waitress-serve --call 'web:create_app'`` (configuration from
``$BALANCES_CONFIG``), with ``$BALANCES_API_TOKENS`` or ``web.tokens`` set when not on loopback.
"""
from __future__ import annotations

import datetime as dt
import hmac
import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Mapping

from flask import Flask, current_app, g, request, session

from bot.config.web import WebSettings
from web import auth, problems
from web.payloads import UsersPayload
from web.problems import CSRF_FAILED, RATE_LIMITED, ApiProblem
from web.ratelimit import FixedWindowLimiter

log = logging.getLogger(__name__)

SECRET_ENV = "BALANCES_WEB_SECRET"
EXTENSION = "multibalance"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                           "frame-ancestors 'none'; form-action 'self'")


@dataclass
class WebContext:
    """What the views share (``app.extensions["multibalance"]``). Everything here is either
    immutable or thread-safe by its own lock (see each class)."""

    manager: object           # bot.app.manager.MultiAccountBrokerManager
    web: WebSettings
    tokens: auth.TokenTable
    limiter: FixedWindowLimiter        # /api/*, per token (or client address)
    login_limiter: FixedWindowLimiter  # POST /login, per client address
    users_payload: UsersPayload
    owns_manager: bool
    scheduler_started: bool
    refresher: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(2, thread_name_prefix="web-refresh"))

    def close(self) -> None:
        self.refresher.shutdown(wait=True, cancel_futures=True)
        if self.owns_manager:
            self.manager.close()


def context() -> WebContext:
    return current_app.extensions[EXTENSION]


def create_app(config=None, *, manager=None, config_dir=None, start_scheduler: bool = False,
               environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app (see the module docstring). ``environ`` (default ``os.environ``) supplies
    ``BALANCES_API_TOKENS`` and ``BALANCES_WEB_SECRET``. Raises bot.config.ConfigError for a bad
    configuration, web.auth.TokenConfigError for a malformed ``$BALANCES_API_TOKENS``."""
    from bot.app.manager import MultiAccountBrokerManager
    from bot.history.journal import load_sample_trades
    from web import api, ops, pages  # they import this module's helpers

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
        manager.add_listener(users_payload.changed)
        manager.add_trade_listener(users_payload.changed)
        if start_scheduler:
            manager.start_scheduler()
    except BaseException:
        if owns:
            manager.close()
        raise

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret,
        SESSION_COOKIE_NAME="multibalance_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=web.secure_cookies,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=web.session_hours),
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.extensions[EXTENSION] = WebContext(
        manager=manager, web=web, tokens=tokens,
        limiter=FixedWindowLimiter(web.rate_limit_per_minute),
        login_limiter=FixedWindowLimiter(10),
        users_payload=users_payload, owns_manager=owns, scheduler_started=start_scheduler)

    problems.register(app)
    app.before_request(_identify)
    app.after_request(_headers)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(ops.bp)
    return app


def close_app(app: Flask) -> None:
    """Stop the app's refresh workers and close the manager if the app built it."""
    app.extensions[EXTENSION].close()


def _identify():
    """Identify the caller (``g.principal``); on /api/*: rate limit, then require a valid token,
    then CSRF on unsafe methods made with the session cookie."""
    ctx = context()
    g.principal = auth.authenticate(ctx.tokens, request.headers.get("Authorization"), session,
                                    request.remote_addr)
    if not request.path.startswith("/api/"):
        return None
    principal = g.principal
    key = principal.key if isinstance(principal, auth.Principal) else "ip:" + (request.remote_addr or "?")
    decision = ctx.limiter.hit(key)
    g.rate = decision
    if not decision.allowed:
        raise ApiProblem(429, f"Rate limit of {decision.limit} requests per minute exceeded; retry in "
                              f"{decision.retry_after} s.", RATE_LIMITED, "Too Many Requests",
                         headers={"Retry-After": str(decision.retry_after)})
    require_principal()
    if request.method not in SAFE_METHODS:
        check_csrf()
    return None


def require_principal():
    """The caller, or a 401 problem."""
    principal = g.get("principal")
    if principal is auth.BAD:
        raise ApiProblem(401, "The bearer token is not valid.", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if principal is None:
        raise ApiProblem(401, "A bearer token (Authorization: Bearer ...) or a login session is required.",
                         headers={"WWW-Authenticate": "Bearer"})
    return principal


def check_csrf() -> None:
    """Unsafe requests made with the session cookie carry the session's CSRF token in the
    ``X-CSRF-Token`` header (or a ``csrf_token`` form field); without any token configured,
    cross-site requests are refused (local callers are admin, so a foreign page must not act)."""
    principal = g.get("principal")
    via = getattr(principal, "via", None)
    if via == "session":
        expected = session.get("csrf")
        sent = request.headers.get(auth.CSRF_HEADER) or request.form.get("csrf_token")
        if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected, sent):
            raise ApiProblem(403, "Missing or invalid CSRF token (send the page's token in X-CSRF-Token).",
                             CSRF_FAILED, "CSRF check failed")
    elif via == "local":
        origin = request.headers.get("Origin")
        cross = request.headers.get("Sec-Fetch-Site") == "cross-site"
        if cross or (origin and origin.rstrip("/") != request.host_url.rstrip("/")):
            raise ApiProblem(403, "Cross-site requests are refused.", CSRF_FAILED, "CSRF check failed")


def _headers(response):
    rate = g.get("rate")
    if rate is not None:
        response.headers.update(rate.headers())
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response

