"""Distributed-mode test helpers: worker processes and a fleet configuration.

`WorkerProcess(config_dir, address)` runs ``python -m bot.worker --config DIR --source-address
ADDRESS`` (``clock_offset``, e.g. ``"-30s"``: with Debian's libfaketime, a host whose clock is
wrong, preloaded into the worker itself so that signals reach it; with ``time_scale`` other than
1 or ``poll_seconds``: ``python -m tests.fleet_worker``, the same entry point with the
exchanges' durations divided, for time-scaled fakes, and its idle queue workers looking for
jobs every ``poll_seconds``), waits for its "reading ... accounts" line and collects stderr
(`tests.monitor_process.LoggedProcess`). ``identity`` is the worker's reader name in
``account_states``.

`fleet_config(root, database_url, users, **settings)` writes a distributed configuration.
"""
from __future__ import annotations

import json
import re
import signal
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import FAST_SETTINGS
from tests.monitor_process import LoggedProcess, wait_until  # noqa: F401 (re-exported for the fleet tests)
from tests.shared_processes import clean_env

_READY = re.compile(r"worker (\S+): reading \d+ accounts")


def fleet_config(root: Path, database_url: str, users: dict[str, dict], stall: float = 3.0, **settings) -> Path:
    """``users`` {user_id: {broker name: entry}} in distributed mode on ``database_url``."""
    (root / "users").mkdir(parents=True, exist_ok=True)
    values = {**FAST_SETTINGS, "database_url": database_url, "first_read_timeout_seconds": 60,
              "fetch": {"mode": "distributed", "stall_timeout_seconds": stall}, **settings}
    (root / "settings.json").write_text(json.dumps(values))
    for user_id, brokers in users.items():
        (root / "users" / f"{user_id}.json").write_text(json.dumps({"user_id": user_id, "brokers": brokers}))
    return root


def faketime_library() -> str | None:
    """Debian's libfaketime (package faketime), preloaded into a worker to shift its clock."""
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))
    return str(found[0]) if found else None


class WorkerProcess(LoggedProcess):
    def __init__(self, config_dir, address: str, concurrency: int = 4, time_scale: float = 1.0,
                 start_timeout: float = 60.0, clock_offset: str | None = None, poll_seconds: float | None = None):
        self.address = address
        module = ["bot.worker"] if time_scale == 1 and poll_seconds is None else \
            ["tests.fleet_worker", "--time-scale", str(time_scale)]
        if poll_seconds is not None:
            module += ["--poll-seconds", str(poll_seconds)]
        env = clean_env()
        if clock_offset is not None:  # Debian's libfaketime: this worker's wall clock is off by that much
            env.update(LD_PRELOAD=faketime_library(), FAKETIME=clock_offset, FAKETIME_DONT_FAKE_MONOTONIC="1")
        super().__init__([sys.executable, "-m", *module, "--config", str(config_dir), "--source-address", address,
                          "--concurrency", str(concurrency)], env=env)
        self.identity = self._await_line(_READY, start_timeout, "the worker's start").group(1)

    def stop(self, sig=signal.SIGTERM, timeout: float = 60.0) -> int:
        return super().stop(sig, timeout)


def readers_of(database_url: str) -> dict[str, str]:
    """account id → the reader of its shared state."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return dict(connection.execute(text("SELECT account_id, reader FROM account_states")).all())
    finally:
        engine.dispose()
