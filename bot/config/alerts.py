"""The ``alerts`` settings: rules (settings.json, overridden per user) and delivery (settings.json only).

settings.json ``alerts`` (every field optional)::

    low_balance                  BALANCE_LOW below this value in the base currency (absent/null: off)
    drop_percent                 BALANCE_DROP when the value is this many percent (0 < p <= 100)
                                 below the highest value read within the window (absent/null: off)
    drop_window_minutes          that window (60)
    cooldown_minutes             an alert still firing is repeated at most once per cooldown (60)
    hysteresis_percent           an alert resolves only when the value is this much beyond the
                                 level that fired it, so a value hovering there does not flap (1)
    error_reads                  ACCOUNT_ERROR after this many consecutive failed reads (3; null: off)
    stale_minutes                ACCOUNT_ERROR when a failed read finds the last good read older
                                 than this (absent/null: off)
    webhooks                     [{"url": "https://...", "format": "json" | "slack"}]
    webhook_timeout_seconds      per attempt (5)
    webhook_retries              further attempts after a failed one (2), backoff doubling from
    webhook_retry_backoff_seconds  (1)
    alertmanager_url             Prometheus Alertmanager base URL (absent: not used)
    instance                     the ``instance`` label of alerts sent to Alertmanager (default:
                                 this host's name), to deduplicate with Prometheus's own alerts
    generator_url                the ``generatorURL`` of those alerts (e.g. the dashboard's URL;
                                 default: the monitor's own /metrics URL, else none)

A user file's ``alerts`` may override the rule fields (the first seven) for that user's accounts
and total; ``null`` switches a rule off for that user. Everything is validated when the
configuration is loaded (`parse_alert_settings`, called by `bot.config.load_config`), with a
`ConfigError` naming the file and field; ``config.settings.alerts`` is the result.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

from bot.config.fields import ConfigError, Fields
from bot.config.formats import url_problem
from bot.core.secrets import redact_url

RULE_FIELDS = ("low_balance", "drop_percent", "drop_window_minutes", "cooldown_minutes", "hysteresis_percent",
               "error_reads", "stale_minutes")
DELIVERY_FIELDS = ("webhooks", "webhook_timeout_seconds", "webhook_retries", "webhook_retry_backoff_seconds",
                   "alertmanager_url", "instance", "generator_url")
WEBHOOK_FORMATS = ("json", "slack")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class RuleSettings:
    """The rules for one owner's accounts and total. The derived figures are computed once per
    instance (cached), which keeps evaluation cheap."""

    low_balance: Decimal | None = None
    drop_percent: Decimal | None = None
    drop_window_minutes: float = 60.0
    cooldown_minutes: float = 60.0
    hysteresis_percent: Decimal = Decimal(1)
    error_reads: int | None = 3
    stale_minutes: float | None = None

    @cached_property
    def low_resolve(self) -> Decimal | None:
        """BALANCE_LOW resolves only above this: low_balance × (1 + hysteresis)."""
        return None if self.low_balance is None else self.low_balance * self.hysteresis_factor

    @cached_property
    def hysteresis_factor(self) -> Decimal:
        return 1 + self.hysteresis_percent / HUNDRED

    @cached_property
    def drop_factor(self) -> Decimal | None:
        """BALANCE_DROP fires at or below peak × this (1 − drop_percent)."""
        return None if self.drop_percent is None else 1 - self.drop_percent / HUNDRED

    @cached_property
    def drop_window_seconds(self) -> float:
        return self.drop_window_minutes * 60

    @cached_property
    def cooldown_seconds(self) -> float:
        return self.cooldown_minutes * 60


@dataclass(frozen=True)
class Webhook:
    url: str
    format: str = "json"

    def __repr__(self) -> str:  # webhook URLs often embed a token (Slack): never print the path
        return f"Webhook({redact_url(self.url)!r}, format={self.format!r})"


@dataclass(frozen=True)
class AlertSettings:
    """Every alert setting: the default rules, per-user rules, and delivery. Its repr shows
    webhook and Alertmanager URLs by scheme and host only (their paths may carry tokens)."""

    rules: RuleSettings = field(default_factory=RuleSettings)
    user_rules: Mapping[str, RuleSettings] = field(default_factory=dict)
    webhooks: tuple[Webhook, ...] = ()
    webhook_timeout_seconds: float = 5.0
    webhook_retries: int = 2
    webhook_retry_backoff_seconds: float = 1.0
    alertmanager_url: str | None = None
    instance: str | None = None
    generator_url: str | None = None

    def rules_for(self, owner: str) -> RuleSettings:
        return self.user_rules.get(owner, self.rules)

    def __repr__(self) -> str:
        manager = None if self.alertmanager_url is None else redact_url(self.alertmanager_url)
        return (f"AlertSettings(rules={self.rules!r}, user_rules={len(self.user_rules)}, webhooks={self.webhooks!r}, "
                f"webhook_timeout_seconds={self.webhook_timeout_seconds}, webhook_retries={self.webhook_retries}, "
                f"alertmanager_url={manager!r})")



# --------------------------------------------------------------------------- parsing


def _rules(f: Fields, base: RuleSettings) -> RuleSettings:
    """``base`` with the rule fields present in ``f`` (null: off for the optional rules)."""
    changes: dict[str, Any] = {}
    for name in ("low_balance", "drop_percent", "stale_minutes", "error_reads"):  # null: off
        if name in f.data and f.data[name] is None:
            changes[name] = None
    for name in ("hysteresis_percent", "drop_window_minutes", "cooldown_minutes"):
        if name in f.data and f.data[name] is None:
            raise f.error(name, "must be a number (0 for none)" if name == "hysteresis_percent" else "must be a number")
    present = {name for name in f.data if name not in changes}
    for name in ("low_balance", "drop_percent", "hysteresis_percent"):
        if name in present:
            changes[name] = f.decimal(name, None)
    for name in ("drop_window_minutes", "cooldown_minutes", "stale_minutes"):
        if name in present:
            changes[name] = f.number(name, None)
    if "error_reads" in present:
        changes["error_reads"] = f.whole("error_reads", 3)
    return replace(base, **changes)


def _url(f: Fields, name: str) -> str | None:
    """The URL in ``f`` (a webhook or Alertmanager URL: a secret, never echoed)."""
    return f.checked(name, f.text(name), url_problem)


def _webhooks(f: Fields) -> tuple[Webhook, ...]:
    entries = f.get("webhooks", list, [])
    hooks = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise f.error(f"webhooks[{index}]", "must be an object with \"url\" and \"format\"")
        hook = Fields(f.path, entry, f"{f.prefix}webhooks[{index}].")
        hook.check_known({"url", "format"})
        url = _url(hook, "url")
        if url is None:
            raise hook.error("url", "is required")
        fmt = hook.text("format", "json")
        if fmt not in WEBHOOK_FORMATS:
            raise hook.error("format", f"must be one of {', '.join(WEBHOOK_FORMATS)}, got {fmt!r}")
        hooks.append(Webhook(url, fmt))
    return tuple(hooks)


def parse_alert_settings(settings_alerts: Mapping[str, Any], user_alerts: Mapping[str, Mapping[str, Any]],
                         directory: Path) -> AlertSettings:
    """Validate and build the alert settings from the raw ``alerts`` objects of settings.json and
    of each user file (``user_alerts``: user id → raw overrides). Raises ConfigError."""
    try:
        return _parse(settings_alerts, user_alerts, directory)
    except (TypeError, ValueError) as exc:  # a shape Fields did not anticipate
        raise ConfigError(f"{directory / 'settings.json'}: field 'alerts': {exc}") from None


def _parse(settings_alerts, user_alerts, directory: Path) -> AlertSettings:
    f = Fields(directory / "settings.json", dict(settings_alerts), "alerts.")
    f.check_known(set(RULE_FIELDS) | set(DELIVERY_FIELDS))
    rules = _rules(f, RuleSettings())
    retries = f.whole("webhook_retries", 2)
    user_rules = {}
    for user_id, raw in user_alerts.items():
        if not raw:
            continue
        u = Fields(directory / "users" / f"{user_id}.json", dict(raw), "alerts.")
        for name in raw:
            if name in DELIVERY_FIELDS:
                raise u.error(name, "can only be set in settings.json")
        u.check_known(set(RULE_FIELDS))
        user_rules[user_id] = _rules(u, rules)
    return AlertSettings(
        rules=rules,
        user_rules=user_rules,
        webhooks=_webhooks(f),
        webhook_timeout_seconds=f.number("webhook_timeout_seconds", 5.0),
        webhook_retries=retries,
        webhook_retry_backoff_seconds=f.number("webhook_retry_backoff_seconds", 1.0),
        alertmanager_url=(_url(f, "alertmanager_url") or "").rstrip("/") or None,
        instance=f.checked("instance", f.text("instance"), _instance_problem),
        generator_url=_url(f, "generator_url"),
    )


def _instance_problem(value: str) -> str | None:
    if len(value) > 200 or any(c.isspace() or not c.isprintable() for c in value):
        return "must be a host name or host:port (no spaces), at most 200 characters"
    return None
