"""Configuration: a directory with ``settings.json``, ``master.json`` and ``users/*.json``.

`load_config(directory)` reads and validates everything at once and returns an immutable
`Config`, or raises `ConfigError` with one message naming the file and the field. Credentials
come from environment variables named in the broker entry (a ``.env`` file in the configuration
directory or the working directory is honoured; the real environment wins) or, discouraged,
literally. Missing credentials are not an error: that one account becomes ``not_configured``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import ccxt
from dotenv import dotenv_values

from bot.secrets import Credentials, Secret

MASTER_OWNER = "master"
RESERVED_USER_IDS = (MASTER_OWNER, "admin")
PAPER_EXCHANGE = "paper"
DEFAULT_CONFIG_DIR = "config"
CONFIG_ENV_VAR = "BALANCES_CONFIG"

# Kraken allows roughly one private call per second per key; 1.1 s keeps a margin.
DEFAULT_MIN_INTERVALS = {"kraken": 1.1}
# Last-resort valuation of stablecoins where an exchange has no market in the base currency.
DEFAULT_PEGS = {"USDT": "USD", "USDC": "USD"}


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class RateLimit:
    """Spacing overrides for one exchange; ``None`` means: derive it from ccxt."""

    min_interval_seconds: float | None = None
    public_min_interval_seconds: float | None = None


@dataclass(frozen=True)
class MetricsSettings:
    """``settings.metrics``: what ``/metrics`` exports (see ``bot.metrics``).

    ``assets``: export the per-asset amount series. ``max_user_accounts``: per-account series
    are exported for at most this many user accounts (whole users, in configuration order;
    master accounts always); the rest are counted in ``multibalance_accounts_omitted``.
    """

    assets: bool = True
    max_user_accounts: int = 1000


@dataclass(frozen=True)
class Settings:
    base_currency: str = "USD"
    cache_ttl_seconds: float = 120.0
    database_url: str | None = None
    timezone: str = "UTC"
    alerts: Mapping[str, Any] = field(default_factory=dict)
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    web: Mapping[str, Any] = field(default_factory=dict)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    max_workers: int = 16
    request_timeout_seconds: float = 10.0
    retries: int = 2
    retry_backoff_seconds: float = 0.5
    first_read_timeout_seconds: float = 60.0
    price_pegs: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PEGS))
    snapshot_interval_minutes: float = 15.0
    retention_days: float = 90.0

    def min_interval(self, exchange: str) -> float | None:
        """Configured private-call spacing for ``exchange``, else the built-in default, else None."""
        limit = self.rate_limits.get(exchange)
        if limit is not None and limit.min_interval_seconds is not None:
            return limit.min_interval_seconds
        return DEFAULT_MIN_INTERVALS.get(exchange)

    def public_min_interval(self, exchange: str) -> float | None:
        limit = self.rate_limits.get(exchange)
        return None if limit is None else limit.public_min_interval_seconds


@dataclass(frozen=True, repr=False)
class BrokerConfig:
    """One account on one exchange (or a paper account)."""

    name: str
    exchange: str
    credentials: Credentials | None = None
    missing_credentials: str | None = None  # why credentials are absent (names env vars, never values)
    api_url: str | None = None
    sandbox: bool = False
    enabled: bool = True
    paper: bool = False
    balances: Mapping[str, Decimal] = field(default_factory=dict)
    prices: Mapping[str, Decimal] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"BrokerConfig(name={self.name!r}, exchange={self.exchange!r}, paper={self.paper})"


@dataclass(frozen=True)
class AccountConfig:
    """A broker entry together with its owner (``master`` or a user id)."""

    owner: str
    broker: BrokerConfig

    @property
    def account_id(self) -> str:
        return f"{self.owner}:{self.broker.name}"


@dataclass(frozen=True)
class UserConfig:
    user_id: str
    name: str
    enabled: bool
    brokers: tuple[BrokerConfig, ...]
    alerts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MasterConfig:
    name: str
    brokers: tuple[BrokerConfig, ...]


@dataclass(frozen=True)
class Config:
    directory: Path
    settings: Settings
    master: MasterConfig | None
    users: tuple[UserConfig, ...]

    def enabled_users(self) -> tuple[UserConfig, ...]:
        return tuple(u for u in self.users if u.enabled)

    def accounts(self) -> tuple[AccountConfig, ...]:
        """Every enabled account: the master's first, then each enabled user's, in file order."""
        result = []
        if self.master is not None:
            result += [AccountConfig(MASTER_OWNER, b) for b in self.master.brokers if b.enabled]
        for user in self.enabled_users():
            result += [AccountConfig(user.user_id, b) for b in user.brokers if b.enabled]
        return tuple(result)


# --------------------------------------------------------------------------- reading


def config_directory(explicit: str | os.PathLike | None = None) -> Path:
    """``explicit``, else ``$BALANCES_CONFIG``, else ``./config``."""
    return Path(explicit or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_DIR)


def load_config(directory: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the whole configuration directory (see the module docstring)."""
    root = config_directory(directory)
    if not root.is_dir():
        raise ConfigError(f"{root}: configuration directory not found")
    env = _environment(root, environ)
    settings = _parse_settings(root / "settings.json")
    master = _parse_master(root / "master.json", env)
    users = _parse_users(root / "users", env)
    config = Config(directory=root, settings=settings, master=master, users=users)
    from bot.alerts.settings import check_alert_config  # imported here: bot.alerts imports this module
    check_alert_config(config)
    from bot.web_settings import check_web_config
    check_web_config(config)
    return config


def _environment(root: Path, environ: Mapping[str, str] | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    for dotenv in (Path.cwd() / ".env", root / ".env"):
        if dotenv.is_file():
            merged.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def _read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read file ({exc.strerror})") from None
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    return data


class _Fields:
    """Typed access to one JSON object's fields, with errors naming file and field path."""

    def __init__(self, path: Path, data: dict, prefix: str = ""):
        self.path, self.data, self.prefix = path, data, prefix

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: field '{self.prefix}{name}': {problem}")

    def check_known(self, allowed: set[str]) -> None:
        for name in self.data:
            if name not in allowed:
                raise self.error(name, f"unknown field (allowed: {', '.join(sorted(allowed))})")

    def get(self, name: str, kind: type | tuple, default: Any = None, required: bool = False) -> Any:
        if name not in self.data:
            if required:
                raise self.error(name, "is required")
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(name, f"must be {_kind_name(kinds)}, not a boolean")
        if not isinstance(value, kinds):
            raise self.error(name, f"must be {_kind_name(kinds)}, not {type(value).__name__}")
        return value

    def text(self, name: str, default: str | None = None, required: bool = False) -> str | None:
        value = self.get(name, str, default, required)
        if value is not None and not value.strip():
            raise self.error(name, "must not be empty")
        return value

    def number(self, name: str, default: float, minimum: float = 0, above: bool = False) -> float:
        value = self.get(name, (int, Decimal), default)
        if value < minimum or (above and value == minimum):
            raise self.error(name, f"must be {'>' if above else '>='} {minimum}, got {value}")
        return float(value)

    def obj(self, name: str) -> _Fields:
        value = self.get(name, dict, {})
        return _Fields(self.path, value, f"{self.prefix}{name}.")


def _kind_name(kinds: tuple) -> str:
    names = {str: "a string", bool: "true or false", int: "a number", Decimal: "a number", dict: "an object", list: "a list"}
    return " or ".join(dict.fromkeys(names.get(k, k.__name__) for k in kinds))


SETTINGS_FIELDS = {"base_currency", "cache_ttl_seconds", "database_url", "timezone", "alerts", "rate_limits",
                   "web", "max_workers", "request_timeout_seconds", "retries", "retry_backoff_seconds",
                   "first_read_timeout_seconds", "price_pegs", "snapshot_interval_minutes", "retention_days",
                   "metrics"}


def _parse_settings(path: Path) -> Settings:
    if not path.exists():
        return Settings()
    f = _Fields(path, _read_json(path))
    f.check_known(SETTINGS_FIELDS)
    timezone = f.text("timezone", "UTC")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise f.error("timezone", f"unknown time zone {timezone!r}") from None
    limits = {}
    rate = f.obj("rate_limits")
    for exchange in rate.data:
        if exchange not in ccxt.exchanges:
            raise rate.error(exchange, "is not a ccxt exchange id")
        entry = rate.obj(exchange)
        entry.check_known({"min_interval_seconds", "public_min_interval_seconds"})
        limits[exchange] = RateLimit(
            min_interval_seconds=entry.number("min_interval_seconds", None) if "min_interval_seconds" in entry.data else None,
            public_min_interval_seconds=(entry.number("public_min_interval_seconds", None)
                                         if "public_min_interval_seconds" in entry.data else None),
        )
    workers = f.get("max_workers", int, 16)
    if workers < 1:
        raise f.error("max_workers", f"must be >= 1, got {workers}")
    retries = f.get("retries", int, 2)
    if retries < 0:
        raise f.error("retries", f"must be >= 0, got {retries}")
    return Settings(
        base_currency=_currency_code(f, "base_currency", "USD"),
        cache_ttl_seconds=f.number("cache_ttl_seconds", 120, above=True),
        database_url=f.text("database_url"),
        timezone=timezone,
        alerts=f.get("alerts", dict, {}),
        rate_limits=limits,
        web=f.get("web", dict, {}),
        metrics=_metrics(f),
        max_workers=workers,
        request_timeout_seconds=f.number("request_timeout_seconds", 10, above=True),
        retries=retries,
        retry_backoff_seconds=f.number("retry_backoff_seconds", 0.5),
        first_read_timeout_seconds=f.number("first_read_timeout_seconds", 60, above=True),
        price_pegs=_pegs(f),
        snapshot_interval_minutes=f.number("snapshot_interval_minutes", 15, above=True),
        retention_days=f.number("retention_days", 90, above=True),
    )


def _metrics(f: _Fields) -> MetricsSettings:
    metrics = f.obj("metrics")
    metrics.check_known({"assets", "max_user_accounts"})
    limit = metrics.get("max_user_accounts", int, MetricsSettings.max_user_accounts)
    if limit < 0:
        raise metrics.error("max_user_accounts", f"must be >= 0, got {limit}")
    return MetricsSettings(assets=metrics.get("assets", bool, True), max_user_accounts=limit)


def _pegs(f: _Fields) -> dict[str, str]:
    if "price_pegs" not in f.data:
        return dict(DEFAULT_PEGS)
    pegs = f.obj("price_pegs")
    result = {}
    for stable, fiat in pegs.data.items():
        if not isinstance(fiat, str) or not fiat.isalnum():
            raise pegs.error(stable, f"must be a currency code such as USD, got {fiat!r}")
        result[stable.upper()] = fiat.upper()
    return result


def _currency_code(f: _Fields, name: str, default: str) -> str:
    code = f.text(name, default)
    if not code.isalnum():
        raise f.error(name, f"must be a currency code such as USD, got {code!r}")
    return code.upper()


def _parse_master(path: Path, env: Mapping[str, str]) -> MasterConfig | None:
    if not path.exists():
        return None
    f = _Fields(path, _read_json(path))
    f.check_known({"name", "brokers"})
    return MasterConfig(name=f.text("name", "Master"), brokers=_parse_brokers(f, env))


USER_FIELDS = {"user_id", "name", "enabled", "brokers", "alerts"}


def _parse_users(directory: Path, env: Mapping[str, str]) -> tuple[UserConfig, ...]:
    if not directory.is_dir():
        return ()
    users: dict[str, UserConfig] = {}
    for path in sorted(directory.glob("*.json")):
        f = _Fields(path, _read_json(path))
        f.check_known(USER_FIELDS)
        user_id = f.text("user_id", required=True)
        if user_id != path.stem:
            raise f.error("user_id", f"{user_id!r} differs from the file name {path.stem!r}")
        if user_id in RESERVED_USER_IDS:
            raise f.error("user_id", f"{user_id!r} is reserved (the master account, the admin role)")
        if ":" in user_id:
            raise f.error("user_id", "must not contain ':'")
        if user_id.lower() in users:
            raise f.error("user_id", f"duplicate user {user_id!r} (user ids differing only in case name one user)")
        users[user_id.lower()] = UserConfig(
            user_id=user_id,
            name=f.text("name", user_id),
            enabled=f.get("enabled", bool, True),
            brokers=_parse_brokers(f, env),
            alerts=f.get("alerts", dict, {}),
        )
    return tuple(users.values())


BROKER_FIELDS = {"exchange", "api_key_env", "api_secret_env", "passphrase_env", "api_key", "api_secret",
                 "passphrase", "api_url", "sandbox", "enabled", "paper", "balances", "prices", "options"}


def _parse_brokers(owner: _Fields, env: Mapping[str, str]) -> tuple[BrokerConfig, ...]:
    brokers = owner.obj("brokers")
    return tuple(_parse_broker(brokers.obj(name), name, env) for name in brokers.data)


def _parse_broker(f: _Fields, name: str, env: Mapping[str, str]) -> BrokerConfig:
    if not isinstance(f.data, dict):
        raise ConfigError(f"{f.path}: field '{f.prefix[:-1]}': must be an object")
    if ":" in name or not name.strip():
        raise ConfigError(f"{f.path}: field '{f.prefix[:-1]}': broker names must be non-empty and contain no ':'")
    f.check_known(BROKER_FIELDS)
    paper = f.get("paper", bool, False)
    default_exchange = name.lower()
    if paper and default_exchange not in ccxt.exchanges:
        default_exchange = PAPER_EXCHANGE  # a paper account may have any name
    exchange = f.text("exchange", default_exchange)
    if exchange not in ccxt.exchanges and exchange != PAPER_EXCHANGE:
        raise f.error("exchange", f"{exchange!r} is not a ccxt exchange id (see ccxt.exchanges)")
    if exchange == PAPER_EXCHANGE and not paper:
        paper = True
    api_url = f.text("api_url")
    if api_url is not None and not api_url.startswith(("http://", "https://")):
        raise f.error("api_url", f"must start with http:// or https://, got {api_url!r}")
    credentials, missing = (None, None) if paper else _credentials(f, exchange, env)
    return BrokerConfig(
        name=name,
        exchange=exchange,
        credentials=credentials,
        missing_credentials=missing,
        api_url=api_url,
        sandbox=f.get("sandbox", bool, False),
        enabled=f.get("enabled", bool, True),
        paper=paper,
        balances=_amounts(f, "balances", allow_zero=True),
        prices=_amounts(f, "prices", allow_zero=False),
        options=f.get("options", dict, {}),
    )


def _amounts(f: _Fields, name: str, allow_zero: bool) -> dict[str, Decimal]:
    entries = f.obj(name)
    result = {}
    for asset, raw in entries.data.items():
        if isinstance(raw, bool) or not isinstance(raw, (int, Decimal, str)):
            raise entries.error(asset, "must be a number")
        try:
            amount = Decimal(str(raw))
        except InvalidOperation:
            raise entries.error(asset, f"must be a number, got {raw!r}") from None
        if not amount.is_finite() or amount < 0 or (amount == 0 and not allow_zero):
            raise entries.error(asset, f"must be {'>= 0' if allow_zero else '> 0'}, got {raw}")
        result[asset.upper()] = amount
    return result


_PASSWORD_EXCHANGES: dict[str, bool] = {}


def _needs_passphrase(exchange: str) -> bool:
    if exchange not in _PASSWORD_EXCHANGES:
        _PASSWORD_EXCHANGES[exchange] = bool(getattr(ccxt, exchange)().requiredCredentials.get("password"))
    return _PASSWORD_EXCHANGES[exchange]


def _credentials(f: _Fields, exchange: str, env: Mapping[str, str]) -> tuple[Credentials | None, str | None]:
    values, missing = {}, []
    wanted = ["api_key", "api_secret"] + (["passphrase"] if _needs_passphrase(exchange) else [])
    for item in ("api_key", "api_secret", "passphrase"):
        literal, var = f.text(item), f.text(f"{item}_env")
        if var is not None:
            value = env.get(var) or None
            if value is None and item in wanted:
                missing.append(f"environment variable {var} is not set")
            values[item] = value
        else:
            values[item] = literal
            if literal is None and item in wanted:
                missing.append(f"no {item}_env")
    if missing:
        return None, "; ".join(missing)
    return Credentials(
        api_key=Secret(values["api_key"]),
        api_secret=Secret(values["api_secret"]),
        passphrase=Secret(values["passphrase"]) if values.get("passphrase") else None,
    ), None
