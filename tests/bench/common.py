"""Helpers shared by the benchmarks: a fake exchange process and generated configurations."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def fake_process(exchange: str, latency: float = 0.0, min_interval: float = 0.0, *extra: str):
    """Run ``python -m tests.fakes`` with auto accounts (``extra``: more of its flags, e.g.
    ``--enforce-limits``); yield its URL; stop it afterwards."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes", exchange, "--auto-accounts",
                             "--latency", str(latency), "--min-interval", str(min_interval), *extra],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        if not line.startswith("READY "):
            raise RuntimeError(f"fake {exchange} did not start: {line!r}")
        yield line.split(" ", 1)[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def write_kraken_config(url: str, accounts: int, settings: dict, brokers_per_user: int = 1):
    """A configuration directory with ``accounts`` Kraken accounts (auto-account keys of the fake)."""
    from tests.fakes.kraken import derive_secret

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "users").mkdir()
        (root / "settings.json").write_text(json.dumps(settings))
        for i in range(accounts // brokers_per_user):
            brokers = {}
            for j in range(brokers_per_user):
                key = f"bench-{i}-{j}"
                brokers[f"kraken{j}" if j else "kraken"] = {
                    "exchange": "kraken", "api_url": url, "api_key": key, "api_secret": derive_secret(key)}
            user_id = f"user{i:05d}"
            (root / "users" / f"{user_id}.json").write_text(json.dumps({"user_id": user_id, "brokers": brokers}))
        yield root
