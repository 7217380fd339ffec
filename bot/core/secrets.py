"""Credentials that cannot leak by accident.

`Secret` wraps a credential string: ``str``, ``repr`` and ``format`` all give ``***``; only
``reveal()`` returns the value, and only the code that signs requests calls it. `redact` removes
known secret values from text (exception messages) before it is stored or shown.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

MASK = "***"


class Secret:
    """A credential value that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        if not isinstance(value, str) or not value:
            raise ValueError("a secret must be a non-empty string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def fingerprint(self) -> str:
        """A short, non-reversible identifier (to key per-credential state without the value)."""
        return hashlib.sha256(self._value.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):
        raise TypeError("secrets are not picklable")


@dataclass(frozen=True, repr=False)
class Credentials:
    """One account's API credentials; ``passphrase`` only for exchanges that need one."""

    api_key: Secret
    api_secret: Secret
    passphrase: Secret | None = None

    def values(self) -> tuple[str, ...]:
        items = (self.api_key, self.api_secret, self.passphrase)
        return tuple(s.reveal() for s in items if s is not None)

    def __repr__(self) -> str:
        return f"Credentials(api_key={MASK}, api_secret={MASK})"


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """Replace every occurrence of each secret value in ``text`` with ``***``."""
    for value in secrets:
        if value and len(value) >= 4:
            text = text.replace(value, MASK)
    return text


class WithholdRequestDetails(logging.Filter):
    """For ccxt's debug log: keep method and URL (without its query string), withhold request
    headers and bodies (they carry API keys, passphrases and signatures)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) >= 2 and isinstance(args[1], str):
            method, url = args[0], args[1].split("?", 1)[0]
            record.msg, record.args = "%s %s (request and response details withheld)", (method, url)
        elif "Request" in str(record.msg) or "Response" in str(record.msg):
            record.msg, record.args = "ccxt request (details withheld)", ()
        return True


def ccxt_logger() -> logging.Logger:
    """The logger handed to every ccxt instance; it never records credentials."""
    logger = logging.getLogger("bot.ccxt")
    if not any(isinstance(f, WithholdRequestDetails) for f in logger.filters):
        logger.addFilter(WithholdRequestDetails())
    return logger
