"""Which ``Host`` names the app answers: the defence against DNS rebinding.

A page on ``http://rebind.evil.example`` whose name is re-pointed at 127.0.0.1 reaches a loopback
server from the operator's own browser, and the browser treats it as same-origin with the
attacker's page. Such requests carry the attacker's name in ``Host``. So:

- no token configured (every loopback caller is admin): only loopback names are answered —
  ``localhost``, ``127.0.0.0/8`` literals, ``[::1]`` (any port) — plus ``web.allowed_hosts``;
- tokens configured: every name is answered, unless ``web.allowed_hosts`` is set; then only those
  names and the loopback ones.

Any other ``Host`` (or a malformed one) is refused with a 421 Misdirected Request problem before
the caller is identified. Names compare case-insensitively, without the port and a final dot.
`HostPolicy` is immutable: safe to share between request threads.
"""
from __future__ import annotations

import ipaddress
import re

_PORT = re.compile(r"[0-9]{1,5}")
_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*")


def host_name(host: str | None) -> str | None:
    """The name part of a ``Host`` header value (lower case, no port, no final dot; an IPv6
    literal without its brackets), or None when it is not a well-formed host."""
    if not host or not host.isascii():
        return None
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and _PORT.fullmatch(rest[1:]))):
            return None
        try:
            return ipaddress.IPv6Address(name).compressed
        except ValueError:
            return None
    name, colon, port = host.partition(":")
    if colon and not _PORT.fullmatch(port):
        return None
    name = name[:-1] if name.endswith(".") else name
    return name if _NAME.fullmatch(name) and len(name) <= 253 else None


def is_loopback_name(name: str) -> bool:
    """``localhost`` or a loopback address literal (127.0.0.0/8, ::1, ::ffff:127.x.x.x)."""
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


class HostPolicy:
    """Answers `allows(host_header)`; ``restricted`` False lets every well-formed name through."""

    def __init__(self, restricted: bool, allowed: frozenset[str] = frozenset()):
        self.restricted = restricted
        self.allowed = frozenset(host_name(name) or name for name in allowed)

    @classmethod
    def for_settings(cls, tokens_configured: bool, allowed_hosts: tuple[str, ...] | None) -> HostPolicy:
        return cls(not tokens_configured or allowed_hosts is not None, frozenset(allowed_hosts or ()))

    def allows(self, host: str | None) -> bool:
        name = host_name(host)
        if name is None:
            return False
        return not self.restricted or is_loopback_name(name) or name in self.allowed
