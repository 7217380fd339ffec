"""HTML pages: ``/users`` (the dashboard), ``/login`` and ``/logout``.

``/users`` renders `templates/users.html` with the viewer's ``/api/users`` body (from the same
cache as the API), then the page updates itself from ``/api/users``. A caller without a valid
session or token is sent to ``/login`` (when no token is configured, a local caller is admin and
needs no login).

``POST /login`` takes a token from the form (and the form's CSRF token, bound to the session),
starts a new session holding only the token's fingerprint and a fresh CSRF token, and redirects
to ``next`` (a local path) or ``/users``. A wrong token redirects back to ``/login`` with a
message; attempts are limited to 10 per minute per client address (429 problem beyond).
``POST /logout`` (with the CSRF token) ends the session.
"""
from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import (Blueprint, flash, g, get_flashed_messages, redirect, render_template, request, session,
                   url_for)

from web import auth, context
from web.problems import CSRF_FAILED, RATE_LIMITED, ApiProblem

bp = Blueprint("pages", __name__)

POLL_SECONDS = 15


def csrf_token() -> str:
    """The session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = auth.new_csrf_token()
    return token


def _check_form_csrf() -> None:
    expected = session.get("csrf")
    sent = request.form.get("csrf_token") or request.headers.get(auth.CSRF_HEADER)
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected, sent):
        raise ApiProblem(403, "Missing or invalid CSRF token; reload the page and try again.", CSRF_FAILED,
                         "CSRF check failed")


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("pages.users")
    parts = urlsplit(target)
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
    payload = scoped(ctx.users_payload.model(), principal.role)
    return render_template(
        "users.html",
        payload=payload,
        viewer=principal.role,
        is_admin=principal.is_admin,
        csrf_token=csrf_token(),
        login_required=not ctx.tokens.empty,
        poll_seconds=POLL_SECONDS,
    )


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
    _check_form_csrf()
    target = _safe_next(request.form.get("next"))
    token = (request.form.get("token") or "").strip()
    found = ctx.tokens.lookup(token) if token else None
    if found is None:
        flash("That token is not valid." if token else "Enter your access token.", "error")
        return redirect(url_for("pages.login", next=target), code=303)
    session.clear()
    session.permanent = True
    session["tid"] = found[1]
    session["csrf"] = auth.new_csrf_token()
    return redirect(target, code=303)


@bp.post("/logout")
def logout():
    _check_form_csrf()
    session.clear()
    return redirect(url_for("pages.login"), code=303)
