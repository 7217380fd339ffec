"""What every request shares: the app's `WebContext`, who the caller is, and the CSRF check.

`identify` runs before every request: it refuses a ``Host`` the app does not answer
(`web.hosts`, 421), identifies the caller (``g.principal``, `web.auth`; a session cookie counts
only while its session id is not revoked, `web.sessions`), and on /api/* applies the rate limit
(429), requires a principal (401) and checks CSRF on unsafe methods. `check_csrf` is the one
CSRF check, used by the API (through `identify`) and by the HTML forms (``form=True``).
"""
from __future__ import annotations

import hmac
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from flask import current_app, g, request, session

from bot.config.web import WebSettings
from web import auth
from web.hosts import HostPolicy
from web.payloads import UsersPayload
from web.problems import CSRF_FAILED, HOST_NOT_ALLOWED, RATE_LIMITED, ApiProblem
from web.ratelimit import FixedWindowLimiter
from web.serving import ShellCache
from web.sessions import SESSION_KEY, SessionRevocations, SessionUnavailable, new_session_id

EXTENSION = "multibalance"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_ID_MAX = 64


@dataclass
class WebContext:
    """What the views share (``app.extensions["multibalance"]``). Everything here is either
    immutable or thread-safe by its own lock (see each class); ``scheduler_started`` is set once,
    before the server answers its first request."""

    manager: object           # bot.app.manager.MultiAccountBrokerManager
    web: WebSettings
    tokens: auth.TokenTable
    limiter: FixedWindowLimiter        # /api/*, per token (or client address)
    login_limiter: FixedWindowLimiter  # POST /login, per client address
    users_payload: UsersPayload
    owns_manager: bool
    scheduler_started: bool
    hosts: HostPolicy
    sessions: SessionRevocations
    shells: ShellCache = field(default_factory=ShellCache)  # /users shells (web.serving)
    refresher: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(2, thread_name_prefix="web-refresh"))

    def close(self) -> None:
        self.refresher.shutdown(wait=True, cancel_futures=True)
        if self.owns_manager:
            self.manager.close()


def context() -> WebContext:
    return current_app.extensions[EXTENSION]


def identify():
    """``before_request``: see the module docstring."""
    ctx = context()
    if not ctx.hosts.allows(request.host):
        raise ApiProblem(421, "This server does not answer for that Host name (use localhost, or a name in "
                              "web.allowed_hosts).", HOST_NOT_ALLOWED, "Host not allowed")
    g.principal = auth.authenticate(ctx.tokens, request.headers.get("Authorization"), _live_session(ctx),
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


def _live_session(ctx: WebContext):
    """The session, if it may identify the caller: a logged-in session whose id is missing or
    revoked is cleared (the response drops the cookie) and does not count. With an Authorization
    header the session is not looked at (`auth.authenticate` uses the header alone)."""
    if "tid" not in session or request.headers.get("Authorization") is not None:
        return session
    sid = session.get(SESSION_KEY)
    try:
        live = isinstance(sid, str) and 0 < len(sid) <= SESSION_ID_MAX and not ctx.sessions.is_revoked(sid)
    except SessionUnavailable:
        raise ApiProblem(503, "Sessions cannot be checked right now (the store does not answer); retry later "
                              "or use a bearer token.", headers={"Retry-After": "5"}) from None
    if not live:
        session.clear()
    return session


def begin_session(fingerprint: str) -> None:
    """Log the browser in as the token of ``fingerprint``: a new session (new id, new CSRF
    token); the session it replaces, if any, is revoked."""
    _revoke_current()
    session.clear()
    session.permanent = True
    session[SESSION_KEY] = new_session_id()
    session["tid"] = fingerprint
    session["csrf"] = auth.new_csrf_token()


def end_session() -> None:
    """Log out: revoke the session's id everywhere, then clear the cookie."""
    _revoke_current()
    session.clear()


def _revoke_current() -> None:
    sid = session.get(SESSION_KEY)
    if isinstance(sid, str) and 0 < len(sid) <= SESSION_ID_MAX:
        try:
            context().sessions.revoke(sid)
        except SessionUnavailable:
            raise ApiProblem(503, "The logout could not be recorded (the store does not answer); retry later.",
                             headers={"Retry-After": "5"}) from None


def require_principal():
    """The caller, or a 401 problem."""
    principal = g.get("principal")
    if principal is auth.BAD:
        raise ApiProblem(401, "The bearer token is not valid.",
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if principal is None:
        raise ApiProblem(401, "A bearer token (Authorization: Bearer ...) or a login session is required.",
                         headers={"WWW-Authenticate": "Bearer"})
    return principal


def check_csrf(form: bool = False) -> None:
    """The CSRF check of an unsafe request (403 problem when it fails).

    A request made with the session cookie (and every HTML form post, ``form=True``: the login
    form before any login, the logout form) carries the session's CSRF token in the
    ``X-CSRF-Token`` header or the ``csrf_token`` form field. A local caller without a token
    configured (admin by address) is checked by origin instead: cross-site requests are refused,
    so that a foreign page cannot act. A bearer token needs no CSRF token: a browser never
    adds one by itself.
    """
    via = getattr(g.get("principal"), "via", None)
    if form or via == "session":
        expected = session.get("csrf")
        sent = request.headers.get(auth.CSRF_HEADER) or request.form.get("csrf_token")
        if not isinstance(expected, str) or not sent or not _same(expected, sent):
            raise ApiProblem(403, "Missing or invalid CSRF token: reload the page and try again (API clients "
                                  "send the page's token in X-CSRF-Token).", CSRF_FAILED, "CSRF check failed")
    elif via == "local":
        origin = request.headers.get("Origin")
        cross = request.headers.get("Sec-Fetch-Site") == "cross-site"
        if cross or (origin and origin.rstrip("/").lower() != request.host_url.rstrip("/").lower()):
            raise ApiProblem(403, "Cross-site requests are refused.", CSRF_FAILED, "CSRF check failed")


def _same(expected: str, sent: str) -> bool:
    """Constant-time comparison of any two strings (`hmac.compare_digest` refuses non-ASCII str)."""
    return hmac.compare_digest(expected.encode("utf-8", "replace"), sent.encode("utf-8", "replace"))
