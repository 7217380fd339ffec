"""The JSON API (``/api/*``). Shapes, parameters and errors: docs/api.md.

Every view here runs after `web.context.identify` (Host, valid token or session, rate limit,
CSRF), so ``g.principal`` is set. A user token sees only that user's accounts: another owner's
account is 403, an account that is not configured is 404. Bad parameters are 400 problems naming
the parameter (dates must lie in 1970-01-01..9998-12-31, digits are ASCII). Views read the manager's current states and the store only; ``POST /api/refresh`` is
the one view that causes exchange reads (on the manager's fetch workers, waited for up to
``request_timeout_seconds`` × (retries + 1)).
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import time
from concurrent.futures import TimeoutError as FutureTimeout
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, g, request

from bot.config import MASTER_OWNER
from bot.core.money import MONEY, money_number
from bot.core.timefmt import iso, iso_utc
from bot.views import exact_json
from bot.views.history_report import account_balance_records, period, user_balances_json
from bot.store import FILTER_SOURCES
from web import context, serving
from web.history_bundle import DEFAULT_DAYS, DEFAULT_POINTS, MAX_DAYS, history_bundle
from web.payloads import net_worth, series_body, snapshot_json
from web.problems import ApiProblem, bad_parameter

bp = Blueprint("api", __name__, url_prefix="/api")

DEFAULT_SNAPSHOT_LIMIT = 30
DEFAULT_HISTORY_DAYS = 30
DEFAULT_USER_BALANCE_DAYS = 30
MAX_RANGE_DAYS = 3660
EARLIEST_DAY, LATEST_DAY = dt.date(1970, 1, 1), dt.date(9998, 12, 31)  # accepted dates (see _in_span)
_DIGITS = re.compile(r"[0-9]{1,9}")
_DATE = re.compile(r"(?P<y>[0-9]{4})(?P<sep>-?)(?P<m>[0-9]{2})(?P=sep)(?P<d>[0-9]{2})")  # YYYY-MM-DD, YYYYMMDD


# --------------------------------------------------------------------------- helpers


def _config():
    return context().manager.config


def _store():
    history = context().manager.history
    if history is None:
        raise ApiProblem(503, "The history store is not enabled in this server.")
    return history.store


def _zone() -> ZoneInfo:
    return ZoneInfo(_config().settings.timezone)


def _visible_account_ids() -> list[str]:
    principal = g.principal
    return [a.account_id for a in _config().accounts() if principal.can_see(a.owner)]


def _account(account_id: str) -> str:
    """``account_id`` if the caller may see it: 403 for another owner's, 404 for an unknown one."""
    owner = account_id.split(":", 1)[0]
    if not g.principal.can_see(owner):
        raise ApiProblem(403, "This account belongs to another user.")
    if account_id not in {a.account_id for a in _config().accounts()}:
        raise ApiProblem(404, "No such account (expected <owner>:<broker> of a configured account).")
    return account_id


def _user(param: str = "user") -> str:
    """The user named by ``param`` (default: the caller's own user; admin must name one)."""
    principal = g.principal
    user = request.args.get(param)
    if user is None or user == "":
        if principal.is_admin:
            raise bad_parameter(param, f"'{param}' is required for an admin token.")
        user = principal.role
    if not principal.can_see(user) or user == MASTER_OWNER:
        raise ApiProblem(403, "That user's data belongs to another user.")
    if user not in {u.user_id for u in _config().users}:
        raise ApiProblem(404, "No such user.")
    return user


def _source() -> str | None:
    source = request.args.get("source")
    if source is None or source == "":
        return None
    if source not in FILTER_SOURCES:
        raise bad_parameter("source", f"unknown source; one of {', '.join(FILTER_SOURCES)}.")
    return source


def _limit(default: int = DEFAULT_SNAPSHOT_LIMIT) -> int:
    return _count("limit", default, 100)


def _count(name: str, default: int, maximum: int) -> int:
    """The integer parameter ``name`` in 1..``maximum`` (``default`` when absent)."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= maximum:  # ASCII digits: "²".isdigit() is True
        raise bad_parameter(name, f"{name} must be an integer from 1 to {maximum}.")
    return int(raw)


def _in_span(name: str, day: dt.date) -> None:
    """Dates outside [EARLIEST_DAY, LATEST_DAY] are refused: the range arithmetic (a day's end,
    a default start, a UTC offset) then never leaves what `datetime` can represent."""
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise bad_parameter(name, f"{name} must be between {EARLIEST_DAY} and {LATEST_DAY}.")


def _day(name: str, raw: str) -> dt.date:
    """A date, YYYY-MM-DD or YYYYMMDD (ASCII digits), within the span."""
    match = _DATE.fullmatch(raw)
    try:
        day = dt.date(int(match["y"]), int(match["m"]), int(match["d"])) if match else None
    except ValueError:  # 2025-02-30
        day = None
    if day is None:
        raise bad_parameter(name, f"{name} must be a date, YYYY-MM-DD or YYYYMMDD.")
    _in_span(name, day)
    return day


def _instant(name: str, raw: str | None, end: bool) -> dt.datetime | None:
    """A date (the whole day in settings.timezone: its start, or for ``end`` its last instant)
    or an ISO-8601 datetime with an offset, within the span."""
    if raw is None or raw == "":
        return None
    if len(raw) in (8, 10) and "T" not in raw:
        day = _day(name, raw)
        return dt.datetime.combine(day, dt.time.max if end else dt.time(), _zone())
    try:
        if not raw.isascii():
            raise ValueError(raw)
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise bad_parameter(name, f"{name} must be a date (YYYY-MM-DD) or an ISO-8601 datetime with an offset.") from None
    if value.tzinfo is None:
        raise bad_parameter(name, f"{name} must include a time zone offset (e.g. Z or +01:00).")
    _in_span(name, value.date())  # its own offset's date: the UTC one is at most a day away
    return value


def _range(start_name: str, end_name: str, default_days: int, days_only: bool = False):
    if days_only:
        today = dt.datetime.now(_zone()).date()
        end = _day(end_name, request.args[end_name]) if request.args.get(end_name) else today
        start = (_day(start_name, request.args[start_name]) if request.args.get(start_name)
                 else end - dt.timedelta(days=default_days))
    else:
        end = _instant(end_name, request.args.get(end_name), end=True) or dt.datetime.now(dt.timezone.utc)
        start = _instant(start_name, request.args.get(start_name), end=False) or end - dt.timedelta(days=default_days)
    if start > end:
        raise bad_parameter(start_name, f"{start_name} is after {end_name}.")
    if end - start > dt.timedelta(days=MAX_RANGE_DAYS):
        raise bad_parameter(start_name, f"the range may span at most {MAX_RANGE_DAYS} days.")
    return start, end


def _json(body) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), mimetype="application/json")


# --------------------------------------------------------------------------- endpoints


@bp.get("/users")
def users():
    """The dashboard's data, from cache (see web.payloads.UsersPayload), with ETag and gzip (web.serving)."""
    return serving.json_response(context().users_payload.entry(g.principal.role))


@bp.get("/users/history")
def users_history():
    """Every visible user's chart data in one body: the daily closes of the last ``days`` days
    and the total at the ``limit`` newest snapshots of its accounts (web.history_bundle)."""
    days, limit = _count("days", DEFAULT_DAYS, MAX_DAYS), _limit(DEFAULT_POINTS)
    config = _config()
    users = [u.user_id for u in config.enabled_users() if g.principal.can_see(u.user_id)]
    body = json.dumps(history_bundle(_store(), config, users, days, limit), separators=(",", ":")).encode()
    return _maybe_gzip(body)


def _maybe_gzip(body: bytes) -> Response:
    """``body`` as JSON, gzip-compressed when the request accepts it."""
    response = Response(body, mimetype="application/json")
    response.headers["Vary"] = "Accept-Encoding, Authorization, Cookie"
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response.set_data(gzip.compress(body, compresslevel=5))
        response.headers["Content-Encoding"] = "gzip"
    return response


def _exact_json(body) -> Response:
    """``body`` with its Decimals as exact JSON numbers (bot.views.exact_json)."""
    return Response(exact_json.dumps(body), mimetype="application/json")


def _users() -> list[str]:
    """The users a listing covers: the one named by ``user`` (or the caller's own); for an admin
    who names none, every configured user."""
    if g.principal.is_admin and not request.args.get("user"):
        return [u.user_id for u in _config().users]
    return [_user()]


def _paper_ids() -> set[str]:
    """The simulated accounts (their whole balance is available: see docs/api.md)."""
    return {a.account_id for a in _config().accounts() if a.broker.paper}


def _series(columns, head: dict, newest_first: bool = False) -> Response:
    """A snapshot list's body (web.payloads.series_body: JSON text straight from the store's columns)."""
    body = series_body(columns, columns.account_id in _paper_ids(), _config().settings.base_currency, head,
                       newest_first)
    return Response(body, mimetype="application/json")


@bp.get("/balance")
def balance():
    """``{"netWorth": {ASSET: amount}}``: the caller's holdings summed per asset, unconverted."""
    ctx = context()
    ids = set(_visible_account_ids())
    states = [s for s in ctx.manager.current_states() if s.account_id in ids]
    known = {s.account_id for s in states if s.value is not None or s.holdings}
    history = ctx.manager.history
    missing = sorted(ids - known)
    return _exact_json({"netWorth": net_worth(states, None if history is None else history.store, missing)})


@bp.get("/balance-snapshots")
def balance_snapshots():
    """The newest snapshot of each of the caller's accounts, and their sum per currency."""
    store = _store()
    snapshots = store.latest_snapshots(_visible_account_ids())
    cash = store.snapshot_cash([s.id for s in snapshots])
    paper = _paper_ids()
    totals: dict = {}
    for s in snapshots:
        totals[s.currency] = MONEY.add(totals[s.currency], s.balance) if s.currency in totals else s.balance
    return _json({"snapshots": [snapshot_json(s, cash.get(s.id), s.account_id in paper) for s in snapshots],
                  "total_count": len(snapshots),
                  "total_balance_by_currency": {c: str(v) for c, v in sorted(totals.items())}})


@bp.get("/accounts/<path:account_id>/balance-history")
def balance_history(account_id: str):
    """Snapshots captured in [start_date, end_date], oldest first, with the range's change."""
    account_id = _account(account_id)
    source = _source()
    start, end = _range("start_date", "end_date", DEFAULT_HISTORY_DAYS)
    columns = _store().snapshot_history_columns(account_id, start, end, source)
    return _series(columns, {"account_id": account_id, "start_date": iso(start), "end_date": iso(end),
                             "source": source})


@bp.get("/accounts/<path:account_id>/balance-snapshots")
def account_snapshots(account_id: str):
    """The ``limit`` newest snapshots, newest first, in the balance history's structure."""
    account_id = _account(account_id)
    source, limit = _source(), _limit()
    columns = _store().recent_snapshot_columns(account_id, limit, source)
    return _series(columns, {"account_id": account_id, "source": source, "limit": limit}, newest_first=True)


@bp.get("/user_balances")
def user_balances():
    """Daily closes, ``from``/``to`` YYYYMMDD (default the last 30 days), oldest day first: of
    one user, or for an admin who names none, of every user (by day, then user)."""
    users = _users()
    start, end = _range("from", "to", DEFAULT_USER_BALANCE_DAYS, days_only=True)
    store = _store()
    closes = sorted((c for user in users for c in store.daily_closes(user, start, end)),
                    key=lambda c: (c.day, c.user_id))
    return _exact_json(user_balances_json(closes, _config().settings.base_currency))


@bp.get("/account-balances")
def account_balances():
    """Open-platform ``account-balance`` records of a user's close on ``date`` (``type=day``) or
    the last close of its month (``type=month``); for an admin who names no user, every user's."""
    users = _users()
    kind = request.args.get("type") or "day"
    if kind not in ("day", "month"):
        raise bad_parameter("type", "type must be 'day' or 'month'.")
    raw = request.args.get("date")
    day = _day("date", raw) if raw else dt.datetime.now(_zone()).date()
    start, end = period(day, kind)
    store, base = _store(), _config().settings.base_currency
    now = dt.datetime.now(dt.timezone.utc)
    records = [r for user in users for r in account_balance_records(store.daily_closes(user, start, end), kind, base, now)]
    return _exact_json(records)


@bp.post("/refresh")
def refresh():
    """Force a read of the caller's accounts (every account for admin) and wait for it (bounded).
    200 with the new states when done; 202 when the reads are still running."""
    ctx = context()
    principal = g.principal
    settings = _config().settings
    owner = None if principal.is_admin else principal.role
    if owner is not None and owner not in {a.owner for a in _config().accounts()}:
        return _json({"timestamp": iso_utc(time.time()), "complete": True, "accounts": []})
    future = ctx.refresher.submit(ctx.manager.refresh, True, None, owner)
    wait = settings.request_timeout_seconds * (settings.retries + 1) + 1
    try:
        states = future.result(timeout=wait)
    except FutureTimeout:
        return _json({"timestamp": iso_utc(time.time()), "complete": False, "accounts": []}), 202
    now = time.time()
    cur = settings.base_currency
    accounts = [{"account_id": s.account_id, "status": s.status.value, "value": money_number(s.value, cur),
                 "fetched_at": iso_utc(s.fetched_at), "error": s.error} for s in states]
    return _json({"timestamp": iso_utc(now), "complete": True, "accounts": accounts})
