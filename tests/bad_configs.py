"""The bad configurations of the hardening suite: each a way to break a working configuration
directory, the file its one error line must name, and a text that line must contain.

`write_good_config(root)` writes a configuration that loads (one paper user, no master, no
exchange); every `Case.setup(root)` then breaks exactly one thing of it, the way a clumsy
operator or a careful attacker would. `SECRET` is pasted where a key does not belong: no error
line may show it.
"""
from __future__ import annotations

import json
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bot.store import BalanceStore, default_database_url

SECRET = "PASTED+KEY/0123456789abcdef=="  # the characters of a base64 key, as exchanges issue them
PAGE = 4096


@dataclass(frozen=True)
class Case:
    id: str
    setup: Callable[[Path], None]
    file: str       # relative to the configuration directory ("" for the directory itself)
    needle: str     # a text the error line must contain


def write_good_config(root: Path) -> None:
    (root / "users").mkdir(parents=True)
    write(root, "settings.json", {"base_currency": "USD"})
    paper = {"paper": True, "balances": {"USD": "5"}}
    write(root, "users/alice.json", {"user_id": "alice", "brokers": {"paper": paper}})


def write(root: Path, name: str, content) -> None:
    path = root / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))


def settings(**values) -> Callable[[Path], None]:
    return lambda root: write(root, "settings.json", {"base_currency": "USD", **values})


def raw_settings(text: str) -> Callable[[Path], None]:
    return lambda root: write(root, "settings.json", text)


def alice(**fields) -> Callable[[Path], None]:
    return lambda root: write(root, "users/alice.json", {"user_id": "alice", **fields})


def kraken(**entry) -> Callable[[Path], None]:
    return alice(brokers={"kraken": entry})


def replace(name: str, make: Callable[[Path], None]) -> Callable[[Path], None]:
    """Remove ``name`` and call ``make(path)`` to put something else there."""
    def setup(root: Path) -> None:
        path = root / name
        if path.is_dir() and not path.is_symlink():
            for child in path.iterdir():
                child.unlink()
            path.rmdir()
        elif os.path.lexists(path):
            path.unlink()
        make(path)
    return setup


def two_users(first: str, second: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        for user_id in (first, second):
            write(root, f"users/{user_id}.json", {"user_id": user_id})
    return setup


def user_file(user_id: str) -> Callable[[Path], None]:
    return lambda root: write(root, f"users/{user_id}.json", {"user_id": user_id})


def store_database(root: Path) -> Path:
    """The default SQLite store of ``root``, created with its schema and closed (no WAL left)."""
    url = default_database_url(root)
    BalanceStore(url).close()
    return root / "multibalance.sqlite3"


def garbage_in_middle_pages(root: Path) -> None:
    path = store_database(root)
    pages = path.stat().st_size // PAGE
    assert pages >= 6, pages
    with open(path, "r+b") as handle:
        for page in range(pages // 3, 2 * pages // 3):  # never the first page (the header)
            handle.seek(page * PAGE)
            handle.write(b"\xde\xad\xbe\xef" * (PAGE // 4))


def garbage_first_page(root: Path) -> None:
    path = store_database(root)
    with open(path, "r+b") as handle:
        handle.write(os.urandom(PAGE))


NFC, NFD = unicodedata.normalize("NFC", "josé"), unicodedata.normalize("NFD", "josé")
HUGE = "1e400"

CASES = [
    # --- files of the wrong kind, encoding, size or depth
    Case("user-file-not-utf8", lambda r: write(r, "users/alice.json", b'{"user_id": "al\xffice"}'),
         "users/alice.json", "is not UTF-8 text"),
    Case("settings-nested-100000-deep", raw_settings("[" * 100_000 + "]" * 100_000),
         "settings.json", "nested more than 32 levels"),
    Case("settings-nested-40-deep", raw_settings('{"metrics": ' + "[" * 40 + "]" * 40 + "}"),
         "settings.json", "nested more than 32 levels"),
    Case("settings-fifo", replace("settings.json", os.mkfifo), "settings.json", "is a FIFO"),
    Case("settings-symlink-loop", replace("settings.json", lambda p: os.symlink(p.name, p)),
         "settings.json", "symbolic link loop"),
    Case("settings-dangling-symlink", replace("settings.json", lambda p: os.symlink("gone.json", p)),
         "settings.json", "symbolic link to a missing file"),
    Case("settings-a-directory", replace("settings.json", os.mkdir), "settings.json", "is a directory"),
    Case("settings-a-device", replace("settings.json", lambda p: os.symlink("/dev/null", p)),
         "settings.json", "is a character device"),
    Case("settings-over-1-MiB", raw_settings("{" + " " * (1024 * 1024) + "}"), "settings.json", "bytes allowed"),
    Case("master-fifo", replace("master.json", os.mkfifo), "master.json", "is a FIFO"),
    Case("users-a-plain-file", replace("users", lambda p: p.write_text("alice")), "users",
         "is a file, not a directory"),
    Case("users-symlink-loop", replace("users", lambda p: os.symlink(p.name, p)), "users", "symbolic link loop"),
    Case("user-file-fifo", lambda r: os.mkfifo(r / "users" / "bob.json"), "users/bob.json", "is a FIFO"),
    Case("dotenv-not-utf8", lambda r: write(r, ".env", b"KEY=\xff\xfe\n"), ".env", "is not UTF-8 text"),
    Case("malformed-json", raw_settings("{not json"), "settings.json", "malformed JSON at line 1"),
    Case("top-level-list", raw_settings("[]"), "settings.json", "the top level must be a JSON object"),
    Case("nan", raw_settings('{"cache_ttl_seconds": NaN}'), "settings.json", "NaN is not a number JSON allows"),
    Case("integer-of-5000-digits", raw_settings('{"retries": ' + "9" * 5000 + "}"), "settings.json",
         "malformed JSON"),
    # --- numbers out of range (1e400 must not become inf)
    *[Case(f"{name}-1e400", raw_settings(f'{{"{name}": {HUGE}}}'), "settings.json",
           f"field '{name}': must be <= ")
      for name in ("cache_ttl_seconds", "snapshot_interval_minutes", "first_read_timeout_seconds",
                   "request_timeout_seconds", "retention_days", "retry_backoff_seconds")],
    Case("session_hours-1e400", raw_settings(f'{{"web": {{"session_hours": {HUGE}}}}}'), "settings.json",
         "field 'web.session_hours': must be <= 8760"),
    Case("drop_window_minutes-1e400", raw_settings(f'{{"alerts": {{"drop_window_minutes": {HUGE}}}}}'),
         "settings.json", "field 'alerts.drop_window_minutes': must be <= 43200"),
    Case("webhook_timeout_seconds-1e400", raw_settings(f'{{"alerts": {{"webhook_timeout_seconds": {HUGE}}}}}'),
         "settings.json", "field 'alerts.webhook_timeout_seconds': must be <= 60"),
    Case("retention_days-1e12", settings(retention_days=10 ** 12), "settings.json",
         "field 'retention_days': must be <= 36500, got 1000000000000 (allowed: 1 to 36500 days)"),
    Case("cache_ttl-negative", settings(cache_ttl_seconds=-5), "settings.json",
         "field 'cache_ttl_seconds': must be > 0, got -5"),
    Case("max_workers-0", settings(max_workers=0), "settings.json", "field 'max_workers': must be >= 1"),
    Case("max_workers-100000", settings(max_workers=100_000), "settings.json", "(allowed: 1 to 256)"),
    Case("retries-11", settings(retries=11), "settings.json", "field 'retries': must be <= 10"),
    Case("min_interval-1e400", raw_settings(f'{{"rate_limits": {{"kraken": {{"min_interval_seconds": {HUGE}}}}}}}'),
         "settings.json", "field 'rate_limits.kraken.min_interval_seconds': must be <= 3600"),
    Case("paper-balance-1e400", lambda r: write(r, "users/alice.json", '{"user_id": "alice", "brokers": {"p": '
                                                '{"paper": true, "balances": {"USD": 1e400}}}}'),
         "users/alice.json", "field 'brokers.p.balances.USD': must be <= "),
    # --- strings of the wrong format
    Case("same-user-nfc-and-nfd", two_users(NFC, NFD), f"users/{NFC}.json", "duplicate user"),  # NFD sorts first
    Case("same-user-two-cases", two_users("alice", "Alice"), "users/alice.json", "duplicate user"),
    Case("user-id-dotdot", user_file(".."), "users/...json", "must be 1 to 64 letters"),
    Case("user-id-backslash", user_file("a\\b"), "users/a\\b.json", "must be 1 to 64 letters"),
    Case("user-id-space", user_file("a b"), "users/a b.json", "must be 1 to 64 letters"),
    Case("user-id-reserved", user_file("master"), "users/master.json", "'master' is reserved"),
    Case("user-id-not-file-name", alice(user_id="bob"), "users/alice.json", "differs from the file name"),
    Case("base_currency-XXXXXXXX", settings(base_currency="XXXXXXXX"), "settings.json",
         "field 'base_currency': must be a currency code of 3 to 5"),
    Case("timezone-unknown", settings(timezone="Mars/Olympus"), "settings.json", "unknown time zone 'Mars/Olympus'"),
    Case("unknown-field", settings(cache_tll_seconds=5), "settings.json", "field 'cache_tll_seconds': unknown field"),
    Case("exchange-unknown", kraken(exchange="krakken"), "users/alice.json", "'krakken' is not a ccxt exchange id"),
    Case("api_url-with-path-and-key", kraken(api_url=f"https://api.kraken.com/proxy?key={SECRET}"),
         "users/alice.json", "must be scheme://host[:port] only"),
    Case("api_url-without-host", kraken(api_url="https://"), "users/alice.json", "must name a host"),
    Case("api_url-with-password", kraken(api_url=f"https://me:{SECRET}@api.kraken.com"), "users/alice.json",
         "must not contain a user name or password"),
    Case("api_url-ftp", kraken(api_url=f"ftp://{SECRET}@x/"), "users/alice.json", "must start with http://"),
    Case("api_key_env-holding-the-key", kraken(api_key_env=SECRET, api_secret_env="S"), "users/alice.json",
         "field 'brokers.kraken.api_key_env': must be the NAME of an environment variable"),
    Case("webhook-url-no-host", settings(alerts={"webhooks": [{"url": f"https:///hook/{SECRET}"}]}),
         "settings.json", "field 'alerts.webhooks[0].url': must name a host"),
    Case("alertmanager-url-not-http", settings(alerts={"alertmanager_url": f"localhost:9093/{SECRET}"}),
         "settings.json", "field 'alerts.alertmanager_url': must start with http"),
    Case("name-with-bidi-override", alice(name="Al\u202eice"), "users/alice.json",
         "must not contain control or invisible characters"),
    # --- the history store
    Case("sqlite-garbage-in-middle-pages", garbage_in_middle_pages, "multibalance.sqlite3", "the file is damaged"),
    Case("sqlite-garbage-first-page", garbage_first_page, "multibalance.sqlite3", "not an SQLite database"),
    Case("database-url-unsupported", settings(database_url="mysql://u@h/db"), "settings.json",
         "field 'database_url': cannot open the database"),
]
