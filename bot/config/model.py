"""The configuration as immutable values: `Config` (settings, master, users) and its parts.

Built only by `bot.config.load.load_config`; every section is parsed and validated once there.
``Settings.alerts`` and ``Settings.web`` are the typed `AlertSettings` and `WebSettings`.
No ``repr`` or ``str`` here prints a secret: credentials, ``web.secret_key``, token hashes, the
password of ``database_url`` and the paths of webhook and Alertmanager URLs are withheld.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

from bot.config.alerts import AlertSettings
from bot.config.web import WebSettings
from bot.core.secrets import Credentials

MASTER_OWNER = "master"
RESERVED_USER_IDS = (MASTER_OWNER, "admin")
PAPER_EXCHANGE = "paper"
DEFAULT_CONFIG_DIR = "config"
CONFIG_ENV_VAR = "BALANCES_CONFIG"

# Last-resort valuation of stablecoins where an exchange has no market in the base currency.
DEFAULT_PEGS = {"USDT": "USD", "USDC": "USD"}


@dataclass(frozen=True)
class RateLimit:
    """``settings.rate_limits[exchange]``: overrides of the built-in limits
    (`bot.exchanges.limits`); ``None`` keeps the built-in value. ``weight_per_minute``: the
    address budget; ``tier``: Kraken's call-counter tier (starter | intermediate | pro)."""

    min_interval_seconds: float | None = None
    public_min_interval_seconds: float | None = None
    weight_per_minute: float | None = None
    tier: str | None = None


FETCH_ROLES = ("auto", "reader", "follower")
FETCH_MODES = ("local", "distributed")


@dataclass(frozen=True)
class FetchSettings:
    """``settings.fetch``: ``source_address`` binds outgoing exchange connections to that local
    address (budgets are per address); ``max_response_bytes`` caps a response body; ``role`` is
    the role of the processes that do not fix their own (the in-process manager and ``python -m
    web``): ``auto`` (read the keys no other live process reads, follow the others), ``reader``
    (read every key, taking them over from ``auto`` processes) or ``follower`` (never call an
    exchange; the CLI follows it too). See `bot.app.truth`. ``mode`` ``local`` (the processes on
    the store read) or ``distributed`` (PostgreSQL only: `python -m bot.worker` processes read
    through the task queue, every other process follows, `bot.distributed`);
    ``stall_timeout_seconds`` (distributed): a worker silent that long is taken for dead and its
    reads are given to the others."""

    source_address: str | None = None
    max_response_bytes: int = 10 * 1024 * 1024
    role: str = "auto"
    mode: str = "local"
    stall_timeout_seconds: float = 30.0

    @property
    def distributed(self) -> bool:
        return self.mode == "distributed"


@dataclass(frozen=True)
class MetricsSettings:
    """``settings.metrics``: what ``/metrics`` exports (see ``bot.views.metrics``).

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
    alerts: AlertSettings = field(default_factory=AlertSettings)
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    web: WebSettings = field(default_factory=WebSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    max_workers: int = 16
    request_timeout_seconds: float = 10.0
    retries: int = 2
    retry_backoff_seconds: float = 0.5
    first_read_timeout_seconds: float = 60.0
    price_pegs: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PEGS))
    snapshot_interval_minutes: float = 15.0
    retention_days: float = 90.0
    fetch: FetchSettings = field(default_factory=FetchSettings)

    def min_interval(self, exchange: str) -> float | None:
        """Configured private-call spacing for ``exchange``, else None (see `bot.exchanges.quirks`)."""
        limit = self.rate_limits.get(exchange)
        return None if limit is None else limit.min_interval_seconds

    def public_min_interval(self, exchange: str) -> float | None:
        limit = self.rate_limits.get(exchange)
        return None if limit is None else limit.public_min_interval_seconds

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.database_url is not None:
            shown["database_url"] = redact_password(self.database_url)
        return f"Settings({', '.join(f'{name}={value!r}' for name, value in shown.items())})"



def redact_password(url: str) -> str:
    """A database URL with its password (``user:PASSWORD@`` or ``?password=``) replaced by ``***``."""
    url = re.sub(r"(://[^/@:]*:)[^/]*@", r"\1***@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url, flags=re.IGNORECASE)


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
    literal_fields: tuple[str, ...] = ()  # credential fields written literally in the file (discouraged)

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

    def __repr__(self) -> str:  # short (a thousand users), and nothing secret
        return (f"Config(directory={str(self.directory)!r}, master={self.master is not None}, "
                f"users={len(self.users)}, settings={self.settings!r})")

    def warnings(self) -> list[str]:
        """What works but is discouraged, one line each naming file and field (literal keys)."""
        found = []
        owners = [(self.directory / "master.json", self.master.brokers)] if self.master is not None else []
        owners += [(self.directory / "users" / f"{u.user_id}.json", u.brokers) for u in self.users]
        for path, brokers in owners:
            for broker in brokers:
                if broker.literal_fields:
                    names = ", ".join(broker.literal_fields)
                    found.append(f"{path}: field 'brokers.{broker.name}': literal {names} in the file; "
                                 f"name environment variables instead ({', '.join(n + '_env' for n in broker.literal_fields)})")
        return found

    def accounts(self) -> tuple[AccountConfig, ...]:
        """Every enabled account: the master's first, then each enabled user's, in file order."""
        result = []
        if self.master is not None:
            result += [AccountConfig(MASTER_OWNER, b) for b in self.master.brokers if b.enabled]
        for user in self.enabled_users():
            result += [AccountConfig(user.user_id, b) for b in user.brokers if b.enabled]
        return tuple(result)


