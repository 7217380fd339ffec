"""What an alert is: its type, level and one notification of it (`AlertEvent`), and its wire shapes.

An alert is identified by (type, user_id, broker); ``broker`` is None for a user's total (for
the master account, ``user_id`` is "master"). Each `AlertEvent` is one notification: "firing"
(first, or a repeat after the cooldown) or "resolved". Events are immutable and shared freely.

JSON: decimals are sent as strings (exact, as the JSON API does); unknown is null; timestamps
are RFC 3339 in UTC.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from bot.core.money import MONEY
from bot.core.timefmt import utc_from_timestamp as utc  # re-exported: the alert modules' UTC datetimes

FIRING, RESOLVED = "firing", "resolved"


class AlertType(StrEnum):
    BALANCE_LOW = "BALANCE_LOW"
    BALANCE_DROP = "BALANCE_DROP"
    ACCOUNT_ERROR = "ACCOUNT_ERROR"


class AlertLevel(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


# The level of each type (also the Alertmanager ``severity``; it never changes within an alert,
# so firing and resolved notifications carry the same labels).
LEVELS = {
    AlertType.BALANCE_LOW: AlertLevel.WARNING,
    AlertType.BALANCE_DROP: AlertLevel.CRITICAL,
    AlertType.ACCOUNT_ERROR: AlertLevel.WARNING,
}


def rfc3339(timestamp: float) -> str:
    return utc(timestamp).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def money(value: Decimal | None) -> str:
    """A value for messages: grouped, at least 2 decimals, at most 8, trailing zeros dropped."""
    if value is None:
        return "unknown"
    text = f"{value.quantize(Decimal('1e-8'), context=MONEY) if value.as_tuple().exponent < -8 else value:,f}"
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0").ljust(2, "0")
        return f"{whole}.{frac}"
    return f"{text}.00"


def _json_decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One notification of an alert. ``timestamp`` is when it was raised (epoch seconds),
    ``started_at`` when the alert began firing (the same for its repeats and its resolution)."""

    type: AlertType
    state: str
    level: AlertLevel
    user_id: str
    broker: str | None
    value: Decimal | None
    threshold: Decimal | None
    message: str
    timestamp: float
    started_at: float
    repeat: bool = False  # a "firing" notification repeated after the cooldown
    exchange: str | None = None  # the account's exchange (None for a user's total)
    currency: str | None = None  # of value and threshold (the base currency)

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.type.value, self.user_id, self.broker)

    def to_json(self) -> dict:
        """The webhook body: exactly type, state, level, user_id, broker, value, threshold,
        message, timestamp (decimals as strings)."""
        return {
            "type": self.type.value,
            "state": self.state,
            "level": self.level.value,
            "user_id": self.user_id,
            "broker": self.broker,
            "value": _json_decimal(self.value),
            "threshold": _json_decimal(self.threshold),
            "message": self.message,
            "timestamp": rfc3339(self.timestamp),
        }

    def to_slack(self) -> dict:
        return {"text": f"[{self.state.upper()}] {self.type.value} ({self.level.value}): {self.message}"}

    @property
    def alertname(self) -> str:
        """The name of the matching rule in config/prometheus/alerts.yml, so that an incident
        raised by both Prometheus and the monitor carries one name and deduplicates."""
        return ALERTNAMES[(self.type, self.broker is None)]

    def to_alertmanager(self, firing_ttl_seconds: float, instance: str | None = None,
                        generator_url: str | None = None) -> dict:
        """A postable alert for Alertmanager API v2, labelled like the exported metrics
        (``owner``, ``broker``, ``exchange``) and the shipped Prometheus rules (``alertname``,
        ``severity``). A firing alert's ``endsAt`` lies ``firing_ttl_seconds`` ahead (it is
        re-sent within that while it lasts, else Alertmanager lets it expire); a resolved one's
        is the resolution time. Annotation values are plain numbers (Alertmanager annotations are strings)."""
        labels = {"alertname": self.alertname, "type": self.type.value, "owner": self.user_id,
                  "severity": self.level.value}
        if self.broker is not None:  # a user's total has no broker label
            labels["broker"] = self.broker
        if self.exchange is not None:
            labels["exchange"] = self.exchange
        if instance:
            labels["instance"] = instance
        annotations = {"summary": self.message, "description": self.description()}
        for name, value in (("value", self.value), ("threshold", self.threshold)):
            if value is not None:
                annotations[name] = plain_number(value)
        if self.currency:
            annotations["currency"] = self.currency
        ends = self.timestamp + firing_ttl_seconds if self.state == FIRING else self.timestamp
        alert = {"labels": labels, "annotations": annotations, "startsAt": rfc3339(self.started_at),
                 "endsAt": rfc3339(ends)}
        if generator_url:
            alert["generatorURL"] = generator_url
        return alert

    def description(self) -> str:
        subject = f"{self.user_id}:{self.broker}" if self.broker else f"the accounts of {self.user_id} in total"
        where = f" on {self.exchange}" if self.exchange else ""
        text = {AlertType.BALANCE_LOW: "balance below its threshold", AlertType.BALANCE_DROP: "balance dropped",
                AlertType.ACCOUNT_ERROR: "reads failing"}[self.type]
        state = "resolved" if self.state != FIRING else "firing"
        return f"{text.capitalize()} for {subject}{where} ({state}): {self.message}"


def plain_number(value: Decimal) -> str:
    """``600`` for 600.000, ``0.5`` for 0.50: a number without exponent or trailing zeros."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


# Alertmanager ``alertname`` per (type, is a user's total): the rule names of config/prometheus/alerts.yml.
ALERTNAMES = {
    (AlertType.BALANCE_LOW, False): "MultibalanceAccountBalanceLow",
    (AlertType.BALANCE_LOW, True): "MultibalanceUserBalanceLow",
    (AlertType.BALANCE_DROP, False): "MultibalanceBalanceDrop",
    (AlertType.BALANCE_DROP, True): "MultibalanceBalanceDrop",  # a user's total: no broker label
    (AlertType.ACCOUNT_ERROR, False): "MultibalanceAccountDown",
    (AlertType.ACCOUNT_ERROR, True): "MultibalanceAccountDown",
}
