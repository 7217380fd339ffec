"""Configuration: a directory with ``settings.json``, ``master.json`` and ``users/*.json``.

`load_config(directory)` reads and validates everything at once and returns an immutable
`Config`, or raises `ConfigError` with one message naming the file and the field. Credentials
come from environment variables named in the broker entry (a ``.env`` file in the configuration
directory or the working directory is honoured; the real environment wins) or, discouraged,
literally. Missing credentials are not an error: that one account becomes ``not_configured``.
"""
from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Mapping

from dotenv import dotenv_values

from bot.config.fields import ConfigError, Fields, read_json
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
    if not root.is_dir():
        raise ConfigError(f"{root}: configuration directory not found")
    env = _environment(root, environ)
    master = _parse_master(root / "master.json", env)
    users = _parse_users(root / "users", env)
    settings = parse_settings(root / "settings.json", users)
    return Config(directory=root, settings=settings, master=master, users=users)


def _environment(root: Path, environ: Mapping[str, str] | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    for dotenv in (Path.cwd() / ".env", root / ".env"):
        if dotenv.is_file():
            merged.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    merged.update(os.environ if environ is None else environ)
    return merged


def _parse_master(path: Path, env: Mapping[str, str]) -> MasterConfig | None:
    if not path.exists():
        return None
    f = Fields(path, read_json(path))
    f.check_known({"name", "brokers"})
    return MasterConfig(name=f.text("name", "Master"), brokers=_parse_brokers(f, env))


USER_FIELDS = {"user_id", "name", "enabled", "brokers", "alerts"}


def _parse_users(directory: Path, env: Mapping[str, str]) -> tuple[UserConfig, ...]:
    if not directory.is_dir():
        return ()
    users: dict[str, UserConfig] = {}
    for path in sorted(directory.glob("*.json")):
        f = Fields(path, read_json(path))
        f.check_known(USER_FIELDS)
        user_id = f.text("user_id", required=True)
        if user_id != path.stem:
            raise f.error("user_id", f"{user_id!r} differs from the file name {path.stem!r}")
        if user_id in RESERVED_USER_IDS:
            raise f.error("user_id", f"{user_id!r} is reserved (the master account, the admin role)")
        if ":" in user_id:
            raise f.error("user_id", "must not contain ':'")
        if user_id.lower() in users:
            raise f.error("user_id", f"duplicate user {user_id!r} (user ids differing only in case name one user)")
        users[user_id.lower()] = UserConfig(
            user_id=user_id,
            name=f.text("name", user_id),
            enabled=f.get("enabled", bool, True),
            brokers=_parse_brokers(f, env),
            alerts=f.get("alerts", dict, {}),
        )
    return tuple(users.values())


BROKER_FIELDS = {"exchange", "api_key_env", "api_secret_env", "passphrase_env", "api_key", "api_secret",
                 "passphrase", "api_url", "sandbox", "enabled", "paper", "balances", "prices", "options"}


def _parse_brokers(owner: Fields, env: Mapping[str, str]) -> tuple[BrokerConfig, ...]:
    brokers = owner.obj("brokers")
    return tuple(_parse_broker(brokers.obj(name), name, env) for name in brokers.data)


def _parse_broker(f: Fields, name: str, env: Mapping[str, str]) -> BrokerConfig:
    if not isinstance(f.data, dict):
        raise ConfigError(f"{f.path}: field '{f.prefix[:-1]}': must be an object")
    if ":" in name or not name.strip():
        raise ConfigError(f"{f.path}: field '{f.prefix[:-1]}': broker names must be non-empty and contain no ':'")
    f.check_known(BROKER_FIELDS)
    paper = f.get("paper", bool, False)
    default_exchange = name.lower()
    if paper and not is_exchange_id(default_exchange):
        default_exchange = PAPER_EXCHANGE  # a paper account may have any name
    exchange = f.text("exchange", default_exchange)
    if not is_exchange_id(exchange) and exchange != PAPER_EXCHANGE:
        raise f.error("exchange", f"{exchange!r} is not a ccxt exchange id (see ccxt.exchanges)")
    if exchange == PAPER_EXCHANGE and not paper:
        paper = True
    api_url = f.text("api_url")
    if api_url is not None and not api_url.startswith(("http://", "https://")):
        raise f.error("api_url", f"must start with http:// or https://, got {api_url!r}")
    credentials, missing = (None, None) if paper else _credentials(f, exchange, env)
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
    )


def _amounts(f: Fields, name: str, allow_zero: bool) -> dict[str, Decimal]:
    entries = f.obj(name)
    result = {}
    for asset, raw in entries.data.items():
        if isinstance(raw, bool) or not isinstance(raw, (int, Decimal, str)):
            raise entries.error(asset, "must be a number")
        try:
            amount = Decimal(str(raw))
        except InvalidOperation:
            raise entries.error(asset, f"must be a number, got {raw!r}") from None
        if not amount.is_finite() or amount < 0 or (amount == 0 and not allow_zero):
            raise entries.error(asset, f"must be {'>= 0' if allow_zero else '> 0'}, got {raw}")
        result[asset.upper()] = amount
    return result


def _credentials(f: Fields, exchange: str, env: Mapping[str, str]) -> tuple[Credentials | None, str | None]:
    values, missing = {}, []
    wanted = ["api_key", "api_secret"] + (["passphrase"] if needs_passphrase(exchange) else [])
    for item in ("api_key", "api_secret", "passphrase"):
        literal, var = f.text(item), f.text(f"{item}_env")
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
