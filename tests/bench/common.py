"""Helpers shared by the benchmarks: a fake exchange process and generated configurations."""
from __future__ import annotations

import json
import os
import statistics
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

    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as tmp:
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


RUNS = 3  # runs per figure unless ``--runs N`` is given


def spread(values, scale: float = 1.0, digits: int = 2) -> str:
    """``min / median / max`` of ``values`` (times ``scale``)."""
    v = sorted(x * scale for x in values)
    return f"{v[0]:.{digits}f} / {statistics.median(v):.{digits}f} / {v[-1]:.{digits}f}"


def verdict(values, goal: float, at_least: bool = False) -> str:
    """PASS when the median of ``values`` meets ``goal`` (<= it, or >= it with ``at_least``)."""
    median = statistics.median(values)
    return "PASS" if (median >= goal if at_least else median <= goal) else "MISS"


TEMP_PREFIX = "multibalance-bench-"  # every temporary directory of benches (a)-(e)


def temp_entries() -> set[str]:
    """The benches' temporary directories that exist now."""
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith(TEMP_PREFIX)}


def leftovers(before: set[str]) -> str:
    """Says whether a bench left any of its temporary directories behind (created since ``before``)."""
    left = sorted(temp_entries() - before)
    return "no temporary directory left behind" if not left else f"LEFT BEHIND in {tempfile.gettempdir()}: {left}"
