"""Who is calling: bearer tokens, the browser session, or a local caller when no token exists.

Tokens come from ``$BALANCES_API_TOKENS`` (``token=admin,token2=alice``) and from settings
``web.tokens`` (SHA-256 hex of the token -> role). Only hashes are kept in memory; a presented
token is hashed and compared with EVERY configured hash with `hmac.compare_digest` (no early
exit), so the comparison takes the same time whichever hash matches. Tokens are never logged.

A browser logs in with a token (`TokenTable.lookup`); the session (a signed cookie, see
`web.create_app`) then holds only ``tid``, an HMAC of the token's hash under the app's secret,
checked on every request against the configured tokens (a removed token ends its sessions),
and ``csrf``, the token that the page sends back in the ``X-CSRF-Token`` header on POSTs.

`TokenTable` is immutable after construction: safe to share between request threads.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Mapping

from bot.config.web import ADMIN

TOKENS_ENV = "BALANCES_API_TOKENS"
CSRF_HEADER = "X-CSRF-Token"


class TokenConfigError(ValueError):
    """A malformed ``$BALANCES_API_TOKENS`` (the message never contains a token)."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_env_tokens(value: str | None, users: set[str]) -> dict[str, str]:
    """``token=role,token2=role2`` -> {sha256 hex: role}; role "admin" or a user id in ``users``."""
    result: dict[str, str] = {}
    for position, item in enumerate((value or "").split(","), start=1):
        item = item.strip()
        if not item:
            continue
        token, sep, role = item.rpartition("=")
        token, role = token.strip(), role.strip()
        if not sep or not token or not role:
            raise TokenConfigError(f"${TOKENS_ENV}: entry {position} is not of the form token=role")
        if role != ADMIN and role not in users:
            raise TokenConfigError(f"${TOKENS_ENV}: entry {position}: role must be 'admin' or a configured "
                                   f"user id, got {role!r}")
        result[token_hash(token)] = role
    return result


@dataclass(frozen=True)
class Principal:
    """The caller: ``role`` "admin" or a user id; ``key`` identifies the credential for rate
    limiting (a token fingerprint, never the token); ``via`` "bearer", "session" or "local"."""

    role: str
    key: str
    via: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    def can_see(self, owner: str) -> bool:
        return self.is_admin or owner == self.role


class TokenTable:
    def __init__(self, hashes: Mapping[str, str], secret: bytes):
        self._entries = tuple((h.lower(), role) for h, role in hashes.items())
        self._secret = secret
        self._fingerprints = {self.fingerprint(h): role for h, role in self._entries}

    @property
    def empty(self) -> bool:
        return not self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def fingerprint(self, digest: str) -> str:
        """A stable id of a token that reveals nothing about it (HMAC of its hash under the secret)."""
        return hmac.new(self._secret, digest.encode(), hashlib.sha256).hexdigest()[:32]

    def lookup(self, token: str) -> tuple[str, str] | None:
        """(role, fingerprint) of ``token``, or None; constant time over the configured hashes."""
        digest = token_hash(token)
        found = None
        for candidate, role in self._entries:
            if hmac.compare_digest(candidate, digest):
                found = (role, candidate)
        return None if found is None else (found[0], self.fingerprint(found[1]))

    def role_of_fingerprint(self, fingerprint: str) -> str | None:
        role = None
        for candidate, candidate_role in self._fingerprints.items():
            if hmac.compare_digest(candidate, fingerprint):
                role = candidate_role
        return role


def is_loopback(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


BAD = object()  # an Authorization header that does not carry a valid token


def _presented_token(authorization: str) -> str | None:
    """The token of an ``Authorization`` header: ``Bearer <token>`` (scheme case-insensitive; the
    token may contain spaces), or a bare ``<token>`` without scheme and without whitespace, as
    the source documents send it. None for anything else (another scheme, a bare ``Bearer``)."""
    value = authorization.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip() or None
    if value and not any(c.isspace() for c in value):
        return value
    return None


def authenticate(tables: TokenTable, authorization: str | None, session: Mapping, remote_addr: str | None):
    """The caller's Principal, None when anonymous, or `BAD` for an invalid token (see
    `_presented_token` for the accepted ``Authorization`` forms)."""
    if authorization is not None:
        token = _presented_token(authorization)
        if not token:
            return BAD
        found = tables.lookup(token)
        if found is None:
            return BAD
        return Principal(found[0], "t:" + found[1], "bearer")
    tid = session.get("tid")
    if isinstance(tid, str):
        role = tables.role_of_fingerprint(tid)
        if role is not None:
            return Principal(role, "t:" + tid, "session")
    if tables.empty and is_loopback(remote_addr):
        return Principal(ADMIN, "local:" + (remote_addr or ""), "local")
    return None
