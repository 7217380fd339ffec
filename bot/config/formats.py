"""The format of every string of the configuration, and how a refused value may be shown.

User ids become file names, URL paths, account ids (``owner:broker``) and metric labels, so
they are NFC-normalised (``é`` typed either way is one name) and restricted to letters, digits,
``_``, ``.`` and ``-``, starting with a letter or digit, at most 64 characters (so no ``..``,
``/``, ``\\``, ``:``, spaces or invisible characters). Broker names are NFC-normalised too, at most
64 characters without ``:`` or control and invisible characters (any other character is
escaped where it is shown). Currency codes are 3 to 5 ASCII letters or digits. URLs are
``http(s)://host[:port]...`` with a host; an error never shows more of a URL than its scheme and
host (`bot.core.secrets.redact_url`), since a key or a webhook token may have been pasted into
its path, query or user part.
"""
from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from bot.core.secrets import redact_url

NAME_MAX = 64
_NAME = re.compile(r"[^\W_][\w.-]{0,%d}" % (NAME_MAX - 1))
USER_ID_RULE = f"1 to {NAME_MAX} letters, digits, '_', '.' or '-', starting with a letter or digit"
_CURRENCY = re.compile(r"[A-Za-z0-9]{3,5}")
CURRENCY_RULE = "a currency code of 3 to 5 letters or digits such as USD"
_ASSET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_TIMEZONE = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")
DISPLAY_NAME_MAX = 100
SHOWN_MAX = 40


def shown(value: str) -> str:
    """``repr(value)``, shortened to `SHOWN_MAX` characters, for echoing a refused value."""
    return repr(value if len(value) <= SHOWN_MAX else value[:SHOWN_MAX] + "…")


def normal_name(value: str) -> str:
    """``value`` in Unicode normal form C (how names are compared and stored)."""
    return unicodedata.normalize("NFC", value)


def user_id_problem(value: str) -> str | None:
    """None for a valid (already NFC) user id or broker name, else what is wrong with it."""
    if _NAME.fullmatch(value):
        return None
    return f"must be {USER_ID_RULE}, got {shown(value)}"


def broker_name_problem(value: str) -> str | None:
    if len(value) > NAME_MAX:
        return f"broker names must be at most {NAME_MAX} characters, got {len(value)}"
    if _invisible(value):
        return "broker names must not contain control or invisible characters"
    return None


def _invisible(value: str) -> bool:
    return any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in value)


def currency_problem(value: str) -> str | None:
    if _CURRENCY.fullmatch(value) and not value.isdigit():
        return None
    return f"must be {CURRENCY_RULE}, got {shown(value)}"


def asset_problem(value: str) -> str | None:
    if _ASSET.fullmatch(value):
        return None
    return f"must be 1 to 32 letters, digits, '.', '_' or '-' (such as BTC), got {shown(value)}"


def env_name_problem(value: str) -> str | None:
    # Never echoed: the key itself is sometimes pasted where its variable's name belongs.
    if _ENV_NAME.fullmatch(value):
        return None
    return "must be the NAME of an environment variable (letters, digits and '_'), not its value"


def timezone_problem(value: str) -> str | None:
    if _TIMEZONE.fullmatch(value):
        return None
    return f"unknown time zone {shown(value)}"


def display_name_problem(value: str) -> str | None:
    if len(value) > DISPLAY_NAME_MAX:
        return f"must be at most {DISPLAY_NAME_MAX} characters, got {len(value)}"
    if _invisible(value):
        return "must not contain control or invisible characters"
    return None


def url_problem(value: str, bare: bool = False) -> str | None:
    """None for an ``http(s)`` URL with a host (with ``bare``: nothing but scheme, host and
    port, an optional trailing ``/``), else the problem; the URL is shown as scheme and host only."""
    if not value.startswith(("http://", "https://")):
        scheme = value.split("://", 1)[0] if "://" in value else ""
        got = f", got a {shown(scheme)} URL" if scheme and len(scheme) <= 10 and scheme.isalnum() else ""
        return f"must start with http:// or https://{got}"
    if bare and "@" in value:  # a key pasted as user or password (with a "/" it even hides the host)
        return f"must not contain a user name or password ({redact_url(value)})"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number 0..65535
    except ValueError:
        return f"is not a valid URL (bad host or port in {redact_url(value)})"
    if not parts.hostname:
        return f"must name a host ({parts.scheme}://HOST)"
    if any(c.isspace() for c in value):
        return f"must not contain spaces ({redact_url(value)})"
    if bare:
        if parts.path not in ("", "/") or parts.query or parts.fragment or value.endswith(("?", "#")):
            return (f"must be scheme://host[:port] only, without a path, query or fragment "
                    f"(the exchange's own paths are kept), got {redact_url(value)}")
    return None
