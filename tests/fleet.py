"""Distributed-mode test helpers: worker processes and a fleet configuration.

`WorkerProcess(config_dir, address)` runs ``python -m bot.worker --config DIR --source-address
ADDRESS`` (``clock_offset``, e.g. ``"-30s"``: with Debian's libfaketime, a host whose clock is
wrong, preloaded into the worker itself so that signals reach it; with ``time_scale`` other than 1: ``python -m tests.fleet_worker``, the same entry
point with the exchanges' durations divided, for time-scaled fakes), waits for its "reading ...
accounts" line and collects stderr on a thread (``_lock`` guards ``_lines``). ``identity`` is
the worker's reader name in ``account_states``.

`fleet_config(root, database_url, users, **settings)` writes a distributed configuration.
"""
from __future__ import annotations

import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.conftest import FAST_SETTINGS
from tests.monitor_process import ROOT
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


class WorkerProcess:
    def __init__(self, config_dir, address: str, concurrency: int = 4, time_scale: float = 1.0,
                 start_timeout: float = 60.0, clock_offset: str | None = None):
        self.address = address
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._new: queue.Queue = queue.Queue()
        module = ["bot.worker"] if time_scale == 1 else ["tests.fleet_worker", "--time-scale", str(time_scale)]
        env = clean_env()
        if clock_offset is not None:  # Debian's libfaketime: this worker's wall clock is off by that much
            env.update(LD_PRELOAD=faketime_library(), FAKETIME=clock_offset, FAKETIME_DONT_FAKE_MONOTONIC="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *module, "--config", str(config_dir), "--source-address", address,
             "--concurrency", str(concurrency)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        threading.Thread(target=self._read, daemon=True).start()
        self.identity = self._await_ready(start_timeout)

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._lock:
                self._lines.append(line.rstrip("\n"))
            self._new.put(line)
        self._new.put(None)

    def _await_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"worker did not start within {timeout} s:\n{self.log}") from None
            if line is None:
                raise AssertionError(f"worker exited with {self.proc.wait()} before starting:\n{self.log}")
            match = _READY.search(line)
            if match:
                return match.group(1)

    @property
    def log(self) -> str:
        with self._lock:
            return "\n".join(self._lines)

    def stop(self, sig=signal.SIGTERM, timeout: float = 60.0) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def readers_of(database_url: str) -> dict[str, str]:
    """account id → the reader of its shared state."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return dict(connection.execute(text("SELECT account_id, reader FROM account_states")).all())
    finally:
        engine.dispose()


def wait_until(predicate, timeout: float, what: str):
    """Poll ``predicate()`` until truthy (its value) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s")
        time.sleep(0.02)  # polling interval of the deadline loop, not a synchronisation
