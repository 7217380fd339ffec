"""Configuration: a directory with ``settings.json``, ``master.json`` and ``users/*.json``.

`load_config(directory)` reads and validates everything at once and returns an immutable
`Config`, or raises `ConfigError` with one message naming the file and the field. Credentials
come from environment variables named in the broker entry (a ``.env`` file in the configuration
directory or the working directory is honoured; the real environment wins) or, discouraged,
literally. Missing credentials are not an error: that one account becomes ``not_configured``.

Every file is kind-checked before it is read (`bot.config.files`); user ids and broker names
are NFC-normalised and must have the format of `bot.config.formats` (two ids equal after
normalisation and case folding are one user, refused as a duplicate).
"""
from __future__ import annotations

import io
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Mapping

from dotenv import dotenv_values

from bot.config.fields import ConfigError, Fields, read_json
from bot.config.files import ABSENT, DIRECTORY, REGULAR, file_kind, read_text
from bot.config.formats import (asset_problem, broker_name_problem, display_name_problem, env_name_problem,
                                normal_name, shown, url_problem, user_id_problem)
from bot.config.ranges import NUMBER_RANGES
from bot.config.model import (CONFIG_ENV_VAR, DEFAULT_CONFIG_DIR, PAPER_EXCHANGE, RESERVED_USER_IDS, BrokerConfig,
                              Config, MasterConfig, UserConfig)
from bot.config.settings import parse_settings
from bot.core.secrets import Credentials, Secret
from bot.exchanges.catalog import is_exchange_id, needs_passphrase


def config_directory(explicit: str | os.PathLike | None = None) -> Path:
    """``explicit``, else ``$BALANCES_CONFIG``, else ``./config``."""
    return Path(explicit or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_DIR)


def load_config(directory: str | os.PathLike | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the whole configuration directory (see the module docstring)."""
    root = config_directory(directory)
    kind = file_kind(root, "a configuration directory")
    if kind == ABSENT:
        raise ConfigError(f"{root}: configuration directory not found")
    if kind != DIRECTORY:
        raise ConfigError(f"{root}: is a file, not a configuration directory")
    env = _environment(root, environ)
    master = _parse_master(root / "master.json", env)
    users = _parse_users(root / "users", env)
    settings = parse_settings(root / "settings.json", users)
    return Config(directory=root, settings=settings, master=master, users=users)


def _environment(root: Path, environ: Mapping[str, str] | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    for dotenv in (Path.cwd() / ".env", root / ".env"):
        kind = file_kind(dotenv)
        if kind == DIRECTORY:
            raise ConfigError(f"{dotenv}: is a directory, not a regular file")
        if kind == REGULAR:
            values = dotenv_values(stream=io.StringIO(read_text(dotenv)))
            merged.update({k: v for k, v in values.items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def _parse_master(path: Path, env: Mapping[str, str]) -> MasterConfig | None:
    if file_kind(path) == ABSENT:
        return None
    f = Fields(path, read_json(path))
    f.check_known({"name", "brokers"})
    name = f.checked("name", f.text("name", "Master"), display_name_problem)
    return MasterConfig(name=name, brokers=_parse_brokers(f, env))


USER_FIELDS = {"user_id", "name", "enabled", "brokers", "alerts"}


def _parse_users(directory: Path, env: Mapping[str, str]) -> tuple[UserConfig, ...]:
    kind = file_kind(directory, "a directory")
    if kind == ABSENT:
        return ()
    if kind != DIRECTORY:
        raise ConfigError(f"{directory}: is a file, not a directory of users/<user_id>.json files")
    users: dict[str, UserConfig] = {}
    for path in sorted(directory.glob("*.json")):
        f = Fields(path, read_json(path))
        f.check_known(USER_FIELDS)
        user_id = _user_id(f, path)
        key = user_id.casefold()
        if key in users:
            raise f.error("user_id", f"duplicate user {user_id!r} (user ids differing only in case or in "
                                     f"Unicode normalisation name one user)")
        users[key] = UserConfig(
            user_id=user_id,
            name=f.checked("name", f.text("name", user_id), display_name_problem),
            enabled=f.get("enabled", bool, True),
            brokers=_parse_brokers(f, env),
            alerts=f.get("alerts", dict, {}),
        )
    return tuple(users.values())


def _user_id(f: Fields, path: Path) -> str:
    """The NFC-normalised user id of the user file ``path``, checked (see the module docstring)."""
    raw = f.text("user_id", required=True)
    user_id, stem = normal_name(raw), normal_name(path.stem)
    if user_id != stem:
        raise f.error("user_id", f"{shown(raw)} differs from the file name {shown(path.stem)}")
    if user_id in RESERVED_USER_IDS:
        raise f.error("user_id", f"{user_id!r} is reserved (the master account, the admin role)")
    if ":" in user_id:
        raise f.error("user_id", "must not contain ':'")
    f.checked("user_id", user_id, user_id_problem)
    return user_id


BROKER_FIELDS = {"exchange", "api_key_env", "api_secret_env", "passphrase_env", "api_key", "api_secret",
                 "passphrase", "api_url", "sandbox", "enabled", "paper", "balances", "prices", "options"}


def _parse_brokers(owner: Fields, env: Mapping[str, str]) -> tuple[BrokerConfig, ...]:
    """The brokers of a master or user file; names NFC-normalised, checked, unique ignoring case."""
    brokers = owner.obj("brokers")
    seen: dict[str, str] = {}
    parsed = []
    for raw_name in brokers.data:
        name, field = normal_name(raw_name), shown(raw_name)[1:-1]
        if ":" in name or not name.strip():
            raise brokers.error(field, "broker names must be non-empty and contain no ':'")
        problem = broker_name_problem(name)
        if problem is not None:
            raise brokers.error(field, problem)
        if name.casefold() in seen:
            raise brokers.error(field, f"duplicate broker (the same name as {seen[name.casefold()]!r})")
        seen[name.casefold()] = name
        parsed.append(_parse_broker(brokers.obj(raw_name), name, env))
    return tuple(parsed)


def _parse_broker(f: Fields, name: str, env: Mapping[str, str]) -> BrokerConfig:
    f.check_known(BROKER_FIELDS)
    paper = f.get("paper", bool, False)
    default_exchange = name.lower()
    if paper and not is_exchange_id(default_exchange):
        default_exchange = PAPER_EXCHANGE  # a paper account may have any name
    exchange = f.text("exchange", default_exchange)
    if not is_exchange_id(exchange) and exchange != PAPER_EXCHANGE:
        raise f.error("exchange", f"{shown(exchange)} is not a ccxt exchange id (see ccxt.exchanges)")
    if exchange == PAPER_EXCHANGE and not paper:
        paper = True
    api_url = f.checked("api_url", f.text("api_url"), lambda url: url_problem(url, bare=True))
    credentials, missing = (None, None) if paper else _credentials(f, exchange, env)
    literal = () if paper else tuple(n for n in ("api_key", "api_secret", "passphrase") if f.data.get(n) is not None)
    return BrokerConfig(
        name=name,
        exchange=exchange,
        credentials=credentials,
        missing_credentials=missing,
        api_url=api_url,
        sandbox=f.get("sandbox", bool, False),
        enabled=f.get("enabled", bool, True),
        paper=paper,
        balances=_amounts(f, "balances", allow_zero=True),
        prices=_amounts(f, "prices", allow_zero=False),
        options=f.get("options", dict, {}),
        literal_fields=literal,
    )


def _amounts(f: Fields, name: str, allow_zero: bool) -> dict[str, Decimal]:
    """A paper account's ``balances`` or ``prices``: asset code -> amount within its range."""
    entries = f.obj(name)
    limits = NUMBER_RANGES[f"brokers.*.{name}.*"]
    result = {}
    for asset, raw in entries.data.items():
        problem = asset_problem(asset)
        if problem is not None:
            raise entries.error(shown(asset)[1:-1], f"asset codes {problem}")
        if isinstance(raw, bool) or not isinstance(raw, (int, Decimal, str)):
            raise entries.error(asset, "must be a number")
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            raise entries.error(asset, f"must be a number, got {shown(raw)}") from None
        if not amount.is_finite():
            raise entries.error(asset, f"must be a finite number, got {shown(raw)}")
        problem = limits.problem(amount)
        if problem is not None:
            raise entries.error(asset, problem)
        if asset.upper() in result:
            raise entries.error(asset, f"duplicate asset (also written {asset.upper()!r} in another case)")
        result[asset.upper()] = amount
    return result


def _credentials(f: Fields, exchange: str, env: Mapping[str, str]) -> tuple[Credentials | None, str | None]:
    values, missing = {}, []
    wanted = ["api_key", "api_secret"] + (["passphrase"] if needs_passphrase(exchange) else [])
    for item in ("api_key", "api_secret", "passphrase"):
        literal, var = f.text(item), f.checked(f"{item}_env", f.text(f"{item}_env"), env_name_problem)
        if var is not None:
            value = env.get(var) or None
            if value is None and item in wanted:
                missing.append(f"environment variable {var} is not set")
            values[item] = value
        else:
            values[item] = literal
            if literal is None and item in wanted:
                missing.append(f"no {item}_env")
    if missing:
        return None, "; ".join(missing)
    return Credentials(
        api_key=Secret(values["api_key"]),
        api_secret=Secret(values["api_secret"]),
        passphrase=Secret(values["passphrase"]) if values.get("passphrase") else None,
    ), None
