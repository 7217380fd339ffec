"""The ``web`` settings of settings.json, validated when the configuration is loaded.

settings.json ``web`` (every field optional)::

    tokens                   {"<SHA-256 hex of a token>": "admin" | "<user id>"}: API tokens, stored
                             as hashes only (make one: ``printf %s "$TOKEN" | sha256sum``)
    secret_key               signs the browser session cookie (else $BALANCES_WEB_SECRET, else a
                             random key per process: sessions end when the server restarts)
    rate_limit_per_minute    requests per token (or per client address) per minute on /api/* (100)
    sample_trades            load config/sample_trades.json into an EMPTY trade journal (false)
    recent_trades            trades listed per user in /api/users (5, at most 50)
    payload_max_age_seconds  /api/users and /users are rebuilt at most once per this period while
                             accounts are read (or another process journals trades), at once
                             after a forced read or a trade journaled here (5)
    public_metrics           serve /metrics without a token even when tokens are configured (false)
    secure_cookies           mark the session cookie Secure (behind HTTPS) (false)
    session_hours            lifetime of a browser session (12)
    allowed_hosts            ["host.example", "10.1.2.3", ...]: the Host names (no port) the
                             server answers besides the loopback ones (localhost, 127.0.0.0/8,
                             [::1]). Without tokens only loopback names are answered anyway;
                             with tokens every name is, unless this is set (DNS-rebinding
                             defence, see web.hosts). Others get a 421 problem.

The role ``admin`` sees every account; any other value must be a configured user id, who sees
only their own accounts. `parse_web_settings` is called by `bot.config.load_config`;
``config.settings.web`` is the result.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from bot.config.fields import ConfigError, Fields
from bot.config.ranges import NUMBER_RANGES

ADMIN = "admin"
WEB_FIELDS = {"tokens", "secret_key", "rate_limit_per_minute", "sample_trades", "recent_trades",
              "payload_max_age_seconds", "public_metrics", "secure_cookies", "session_hours",
              "allowed_hosts"}
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*")
ALLOWED_HOSTS_MAX = 100
RECENT_TRADES_MAX = int(NUMBER_RANGES["web.recent_trades"].high)


@dataclass(frozen=True)
class WebSettings:
    tokens: Mapping[str, str] = field(default_factory=dict)  # lower-case SHA-256 hex -> role
    secret_key: str | None = None
    rate_limit_per_minute: int = 100
    sample_trades: bool = False
    recent_trades: int = 5
    payload_max_age_seconds: float = 5.0
    public_metrics: bool = False
    secure_cookies: bool = False
    session_hours: float = 12.0
    allowed_hosts: tuple[str, ...] | None = None  # lower case, no port, IPv6 without brackets

    def __repr__(self) -> str:  # never print hashes or the secret
        return (f"WebSettings(tokens={len(self.tokens)}, rate_limit_per_minute={self.rate_limit_per_minute}, "
                f"sample_trades={self.sample_trades})")


def parse_web_settings(raw: Mapping, path: Path, users: set[str]) -> WebSettings:
    """The validated ``web`` object of settings.json at ``path``; token roles must be "admin" or
    one of ``users``. Raises ConfigError."""
    try:
        return _parse(Fields(path, dict(raw), "web."), users)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: field 'web': {exc}") from None


def _parse(f: Fields, users: set[str]) -> WebSettings:
    f.check_known(WEB_FIELDS)
    tokens = {}
    raw_tokens = f.obj("tokens")
    for digest, role in raw_tokens.data.items():
        if not _SHA256_HEX.fullmatch(digest):
            # Do not echo the key: someone may have pasted a token instead of its hash.
            raise raw_tokens.error("<key>", "each key must be the 64-hex-digit SHA-256 of a token "
                                            "(printf %s \"$TOKEN\" | sha256sum), not the token itself")
        if role != ADMIN and role not in users:
            raise raw_tokens.error(digest[:8] + "...", f"must be 'admin' or a configured user id, got {role!r}")
        tokens[digest.lower()] = role
    limit = f.whole("rate_limit_per_minute", 100)
    recent = f.whole("recent_trades", 5)
    secret = f.get("secret_key", str, None)
    if secret is not None and len(secret) < 16:
        raise f.error("secret_key", "must be at least 16 characters")
    return WebSettings(
        tokens=tokens,
        secret_key=secret,
        rate_limit_per_minute=limit,
        sample_trades=f.get("sample_trades", bool, False),
        recent_trades=recent,
        payload_max_age_seconds=f.number("payload_max_age_seconds", 5.0),
        public_metrics=f.get("public_metrics", bool, False),
        secure_cookies=f.get("secure_cookies", bool, False),
        session_hours=f.number("session_hours", 12.0),
        allowed_hosts=_allowed_hosts(f),
    )


def _allowed_hosts(f: Fields) -> tuple[str, ...] | None:
    """``allowed_hosts``: a list of host names or IP literals, normalised (see the module docstring)."""
    raw = f.get("allowed_hosts", list, None)
    if raw is None:
        return None
    if len(raw) > ALLOWED_HOSTS_MAX:
        raise f.error("allowed_hosts", f"at most {ALLOWED_HOSTS_MAX} names, got {len(raw)}")
    names = []
    for position, item in enumerate(raw):
        name = item.strip().lower() if isinstance(item, str) else None
        if name and name.startswith("[") and name.endswith("]"):
            name = name[1:-1]
        try:
            name = ipaddress.ip_address(name).compressed if name and ":" in name else name
        except ValueError:
            name = None
        if name and ":" not in name:
            name = name[:-1] if name.endswith(".") else name
            if not (_HOST_NAME.fullmatch(name) and len(name) <= 253):
                name = None
        if not name:
            # Not echoed: a URL pasted here may carry a key in its query.
            raise f.error(f"allowed_hosts[{position}]", "must be a host name or an IP address, without a "
                                                        "scheme, port or path")
        names.append(name)
    return tuple(dict.fromkeys(names))
