"""HTML pages: ``/users`` (the dashboard), ``/login`` and ``/logout``.

``/users`` renders `templates/users.html` with the viewer's ``/api/users`` body (from the same
cache as the API: the cached bytes are spliced into the rendered shell, with ETag and gzip, see
`web.serving`) and settings.timezone, then the page updates itself from ``/api/users`` and
draws its charts from one ``/api/users/history`` request. A caller without a valid
session or token is sent to ``/login`` (when no token is configured, a local caller is admin and
needs no login).

``POST /login`` takes a token from the form (and the form's CSRF token, bound to the session),
starts a new session holding only a fresh session id, the token's fingerprint and a fresh CSRF
token (`web.context.begin_session`), and redirects to ``next`` (a local path) or ``/users``. A
wrong token redirects back to ``/login`` with a message; attempts are limited to 10 per minute
per client address (429 problem beyond).
``POST /logout`` (with the CSRF token) ends the session for good: its id is revoked server-side
(`web.sessions`), so a copy of the cookie stops working too. Both forms pass the one CSRF check,
`web.context.check_csrf`.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import (Blueprint, flash, g, get_flashed_messages, redirect, render_template, request, session,
                   url_for)

from web import auth
from web.context import begin_session, check_csrf, context, end_session
from web.problems import RATE_LIMITED, ApiProblem

bp = Blueprint("pages", __name__)

POLL_SECONDS = 15


def csrf_token() -> str:
    """The session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = auth.new_csrf_token()
    return token


def _safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else ``/users`` (no open redirect)."""
    if not target:
        return url_for("pages.users")
    try:
        parts = urlsplit(target)
    except ValueError:  # e.g. "//[" (an unterminated IPv6 host)
        return url_for("pages.users")
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("pages.users")
    return target


@bp.get("/")
def index():
    return redirect(url_for("pages.users"))


@bp.get("/users")
def users():
    principal = g.principal
    if not isinstance(principal, auth.Principal):
        return redirect(url_for("pages.login", next=request.full_path.rstrip("?")))
    ctx = context()
    from web.payloads import scoped
    from web.serving import PLACEHOLDER, page_response
    entry = ctx.users_payload.entry(principal.role)  # the cached bytes, spliced into the page (web.serving)
    inputs = dict(viewer=principal.role, is_admin=principal.is_admin, csrf_token=csrf_token(),
                  login_required=not ctx.tokens.empty, poll_seconds=POLL_SECONDS,
                  timezone=ctx.manager.config.settings.timezone)

    def render(payload) -> str:
        if isinstance(payload, str) and payload == PLACEHOLDER:  # the shell: the same for the same inputs
            key = (request.script_root, *inputs.values())
            return ctx.shells.get(key, lambda: render_template("users.html", payload=payload, **inputs))
        return render_template("users.html", payload=payload, **inputs)

    return page_response(entry, render, lambda: scoped(ctx.users_payload.model(), principal.role))


@bp.get("/login")
def login():
    ctx = context()
    return render_template(
        "login.html",
        csrf_token=csrf_token(),
        errors=get_flashed_messages(category_filter=["error"]),
        next=_safe_next(request.args.get("next")),
        tokens_configured=not ctx.tokens.empty,
        logged_in=getattr(g.principal, "via", None) == "session",
    )


@bp.post("/login")
def login_post():
    ctx = context()
    decision = ctx.login_limiter.hit("login:" + (request.remote_addr or "?"))
    if not decision.allowed:
        raise ApiProblem(429, f"Too many login attempts; retry in {decision.retry_after} s.", RATE_LIMITED,
                         "Too Many Requests", headers={"Retry-After": str(decision.retry_after)})
    check_csrf(form=True)
    target = _safe_next(request.form.get("next"))
    token = (request.form.get("token") or "").strip()
    found = ctx.tokens.lookup(token) if token else None
    if found is None:
        flash("That token is not valid." if token else "Enter your access token.", "error")
        return redirect(url_for("pages.login", next=target), code=303)
    begin_session(found[1])
    return redirect(target, code=303)


@bp.post("/logout")
def logout():
    check_csrf(form=True)
    end_session()
    return redirect(url_for("pages.login"), code=303)
