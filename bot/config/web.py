"""The ``web`` settings of settings.json, validated when the configuration is loaded.

settings.json ``web`` (every field optional)::

    tokens                   {"<SHA-256 hex of a token>": "admin" | "<user id>"}: API tokens, stored
                             as hashes only (make one: ``printf %s "$TOKEN" | sha256sum``)
    secret_key               signs the browser session cookie (else $BALANCES_WEB_SECRET, else a
                             random key per process: sessions end when the server restarts)
    rate_limit_per_minute    requests per token (or per client address) per minute on /api/* (100)
    sample_trades            load config/sample_trades.json into an EMPTY trade journal (false)
    recent_trades            trades listed per user in /api/users (5, at most 50)
    payload_max_age_seconds  /api/users is rebuilt when the state or the journal changes, and at
                             least this often (trades journaled by another process, ages) (5)
    public_metrics           serve /metrics without a token even when tokens are configured (false)
    secure_cookies           mark the session cookie Secure (behind HTTPS) (false)
    session_hours            lifetime of a browser session (12)

The role ``admin`` sees every account; any other value must be a configured user id, who sees
only their own accounts. `parse_web_settings` is called by `bot.config.load_config`;
``config.settings.web`` is the result.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from bot.config.fields import ConfigError, Fields

ADMIN = "admin"
WEB_FIELDS = {"tokens", "secret_key", "rate_limit_per_minute", "sample_trades", "recent_trades",
              "payload_max_age_seconds", "public_metrics", "secure_cookies", "session_hours"}
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
RECENT_TRADES_MAX = 50


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
    limit = f.get("rate_limit_per_minute", int, 100)
    if limit < 1:
        raise f.error("rate_limit_per_minute", f"must be >= 1, got {limit}")
    recent = f.get("recent_trades", int, 5)
    if not 0 <= recent <= RECENT_TRADES_MAX:
        raise f.error("recent_trades", f"must be from 0 to {RECENT_TRADES_MAX}, got {recent}")
    secret = f.get("secret_key", str, None)
    if secret is not None and len(secret) < 16:
        raise f.error("secret_key", "must be at least 16 characters")
    return WebSettings(
        tokens=tokens,
        secret_key=secret,
        rate_limit_per_minute=limit,
        sample_trades=f.get("sample_trades", bool, False),
        recent_trades=recent,
        payload_max_age_seconds=f.number("payload_max_age_seconds", 5, above=True),
        public_metrics=f.get("public_metrics", bool, False),
        secure_cookies=f.get("secure_cookies", bool, False),
        session_hours=f.number("session_hours", 12, above=True),
    )
