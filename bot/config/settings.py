"""``settings.json``: parsed into `Settings` (the ``alerts`` and ``web`` sections by their own modules)."""
from __future__ import annotations

import ipaddress
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config.alerts import parse_alert_settings
from bot.config.fields import Fields, read_json
from bot.config.files import ABSENT, ConfigError, file_kind
from bot.config.formats import currency_problem, timezone_problem
from bot.config.model import DEFAULT_PEGS, FETCH_MODES, FETCH_ROLES, FetchSettings, MetricsSettings, RateLimit, Settings, UserConfig
from bot.config.web import parse_web_settings
from bot.exchanges.catalog import is_exchange_id

SETTINGS_FIELDS = {"base_currency", "cache_ttl_seconds", "database_url", "timezone", "alerts", "rate_limits",
                   "web", "max_workers", "request_timeout_seconds", "retries", "retry_backoff_seconds",
                   "first_read_timeout_seconds", "price_pegs", "snapshot_interval_minutes", "retention_days",
                   "metrics", "fetch"}
KRAKEN_TIERS = ("starter", "intermediate", "pro")
FETCH_FIELDS = {"source_address", "max_response_bytes", "role", "mode", "stall_timeout_seconds"}


def parse_settings(path: Path, users: tuple[UserConfig, ...]) -> Settings:
    """``path`` (absent: the defaults) as `Settings`; ``users`` supply the token roles of ``web``
    and the per-user ``alerts`` overrides. Raises ConfigError."""
    f = Fields(path, {} if file_kind(path) == ABSENT else read_json(path))
    f.check_known(SETTINGS_FIELDS)
    timezone = f.checked("timezone", f.text("timezone", "UTC"), timezone_problem)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise f.error("timezone", f"unknown time zone {timezone!r}") from None
    limits = {}
    rate = f.obj("rate_limits")
    for exchange in rate.data:
        if not is_exchange_id(exchange):
            raise rate.error(exchange, "is not a ccxt exchange id")
        entry = rate.obj(exchange)
        entry.section = "rate_limits.*."
        entry.check_known({"min_interval_seconds", "public_min_interval_seconds", "weight_per_minute", "tier"})
        tier = entry.text("tier")
        if tier is not None and (exchange != "kraken" or tier not in KRAKEN_TIERS):
            raise entry.error("tier", f"must be one of {', '.join(KRAKEN_TIERS)} (kraken only), got {tier!r}")
        limits[exchange] = RateLimit(
            min_interval_seconds=entry.number("min_interval_seconds", None),
            public_min_interval_seconds=entry.number("public_min_interval_seconds", None),
            weight_per_minute=entry.number("weight_per_minute", None),
            tier=tier,
        )
    settings = Settings(
        base_currency=_currency_code(f, "base_currency", "USD"),
        cache_ttl_seconds=f.number("cache_ttl_seconds", 120.0),
        database_url=f.text("database_url"),
        timezone=timezone,
        alerts=parse_alert_settings(f.get("alerts", dict, {}), {u.user_id: u.alerts for u in users}, path.parent),
        rate_limits=limits,
        web=parse_web_settings(f.get("web", dict, {}), path, {u.user_id for u in users}),
        metrics=_metrics(f),
        max_workers=f.whole("max_workers", 16),
        request_timeout_seconds=f.number("request_timeout_seconds", 10.0),
        retries=f.whole("retries", 2),
        retry_backoff_seconds=f.number("retry_backoff_seconds", 0.5),
        first_read_timeout_seconds=f.number("first_read_timeout_seconds", 60.0),
        price_pegs=_pegs(f),
        snapshot_interval_minutes=f.number("snapshot_interval_minutes", 15.0),
        retention_days=f.number("retention_days", 90.0),
        fetch=_fetch(f),
    )
    check_fetch_mode(path, settings)
    return settings


def _fetch(f: Fields) -> FetchSettings:
    """``fetch``: {source_address, max_response_bytes, role, mode, stall_timeout_seconds}; the
    distributed mode needs a PostgreSQL ``database_url`` (`check_fetch_mode`)."""
    fetch = f.obj("fetch")
    fetch.check_known(FETCH_FIELDS)
    address = fetch.text("source_address")
    if address is not None:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise fetch.error("source_address", f"must be an IP address of this machine, got {address[:40]!r}") from None
    cap = fetch.whole("max_response_bytes", FetchSettings.max_response_bytes)
    role = fetch.text("role", "auto")
    if role not in FETCH_ROLES:
        raise fetch.error("role", f"must be one of {', '.join(FETCH_ROLES)}, got {role[:40]!r}")
    mode = fetch.text("mode", "local")
    if mode not in FETCH_MODES:
        raise fetch.error("mode", f"must be one of {', '.join(FETCH_MODES)}, got {mode[:40]!r}")
    stall = fetch.number("stall_timeout_seconds", FetchSettings.stall_timeout_seconds)
    return FetchSettings(source_address=address, max_response_bytes=cap, role=role, mode=mode,
                         stall_timeout_seconds=stall)


def check_fetch_mode(path: Path, settings: Settings) -> None:
    """The distributed mode's task queue lives in PostgreSQL: another ``database_url`` (or none,
    the SQLite default) is a ConfigError naming both fields."""
    if not settings.fetch.distributed:
        return
    url = settings.database_url or ""
    if not url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres"):
        shown = "none (the SQLite file of the configuration directory)" if not url else repr(url.split(":", 1)[0])
        raise ConfigError(f"{path}: field 'fetch.mode': distributed mode needs a PostgreSQL database_url "
                          f"(postgresql+psycopg://...), got {shown}")


def _metrics(f: Fields) -> MetricsSettings:
    metrics = f.obj("metrics")
    metrics.check_known({"assets", "max_user_accounts"})
    limit = metrics.whole("max_user_accounts", MetricsSettings.max_user_accounts)
    return MetricsSettings(assets=metrics.get("assets", bool, True), max_user_accounts=limit)


def _pegs(f: Fields) -> dict[str, str]:
    if "price_pegs" not in f.data:
        return dict(DEFAULT_PEGS)
    pegs = f.obj("price_pegs")
    result = {}
    for stable, fiat in pegs.data.items():
        problem = currency_problem(stable)
        if problem is not None:
            raise pegs.error("<key>", f"each key {problem}")
        result[stable.upper()] = _currency_code(pegs, stable, None)
    return result


def _currency_code(f: Fields, name: str, default: str | None) -> str:
    code = f.checked(name, f.get(name, str, default, required=default is None), currency_problem)
    return code.upper()


