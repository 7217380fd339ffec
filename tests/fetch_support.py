"""Helpers of the fetch-plane tests: many accounts on a fake, a service over them, its clean-up."""
from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

from bot.balances.service import BalanceService
from bot.config import load_config
from tests.conftest import FAST_SETTINGS


def binance_key(i: int) -> str:
    """A well-formed auto-account key of the Binance fake (64 alphanumerics)."""
    return f"{i:064d}"


def kraken_key(i: int) -> str:
    return f"fetch-key-{i}"


def auto_broker(fake, key: str, **extra) -> dict:
    """A broker entry for the fake's auto-account ``key`` (its secret derived as the fake does)."""
    module = __import__(type(fake).__module__, fromlist=["derive_secret"])
    return {"exchange": fake.name, "api_url": fake.url, "api_key": key, "api_secret": module.derive_secret(key), **extra}


def write_config(root: Path, users: dict[str, dict], **settings) -> Path:
    """``users`` {user_id: {broker name: entry}} and ``settings`` (over FAST_SETTINGS) as files."""
    (root / "users").mkdir(parents=True, exist_ok=True)
    (root / "settings.json").write_text(json.dumps({**FAST_SETTINGS, **settings}))
    for user_id, brokers in users.items():
        (root / "users" / f"{user_id}.json").write_text(json.dumps({"user_id": user_id, "brokers": brokers}))
    return root


@contextmanager
def service_for(root: Path, time_scale: float = 1.0):
    """A `BalanceService` on the configuration in ``root``, closed afterwards."""
    service = BalanceService(load_config(root, environ={}), time_scale=time_scale)
    try:
        yield service
    finally:
        service.close()


def arrivals(fake, since: float = float("-inf")) -> list:
    """The fake's arrivals (``LimitEvent``) at or after ``since`` (the limits clock), in order."""
    return [e for e in fake.ip_log() if e.time >= since]
