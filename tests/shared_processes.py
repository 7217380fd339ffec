"""Real processes on one configuration, for the shared-truth tests: ``python -m web`` and CLI runs
(the monitor is `tests.monitor_process.MonitorProcess`), and the configuration they share.

`WebProcess(config_dir)` starts the web server on a free loopback port (no token: the loopback
caller is admin), waits for its "listening on" line, collects stderr on a thread (``_lock``
guards ``_lines``), and answers `get_json` / `post_json`. `run_cli(config_dir, *args)` runs
``scripts/show_user_balances.py`` to completion.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from decimal import Decimal

from tests.conftest import FAST_SETTINGS, broker_on
from tests.monitor_process import ROOT

USERS = ("alice", "bob", "carol")


def shared_config(config, kraken, database_url=None, ttl=3.0, **settings) -> dict:
    """A master paper account and three users with a Kraken key each (USD 100, 200, 300), all on
    ``database_url`` (None: the SQLite file of the configuration directory). Returns user → creds."""
    creds = {user: kraken.add_account({"USD": str(100 * (i + 1))}) for i, user in enumerate(USERS)}
    values = {**FAST_SETTINGS, "cache_ttl_seconds": ttl, "first_read_timeout_seconds": 20, **settings}
    if database_url is not None:
        values["database_url"] = database_url
    config.settings(**values)
    config.master({"paper": {"paper": True, "balances": {"USD": "10"}}})
    for user in USERS:
        config.user(user, {"kraken": broker_on(kraken, creds[user])})
    return creds


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("BALANCES_")}


def run_cli(config_dir, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "scripts/show_user_balances.py", "--config", str(config_dir), *args],
                          cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=timeout)


def cli_values(result: subprocess.CompletedProcess) -> dict[str, Decimal | None]:
    """user → KRAKEN value of a ``--json`` run."""
    report = json.loads(result.stdout)
    return {user: None if brokers["kraken"] is None else Decimal(str(brokers["kraken"]))
            for user, brokers in report["balances"]["users"].items()}


class WebProcess:
    def __init__(self, config_dir, *extra: str):
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "web", "--config", str(config_dir), "--port", "0", *extra],
                                     cwd=ROOT, env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        line = self.proc.stdout.readline().strip()  # blocks until the server printed it (or exited)
        if not line.startswith("listening on "):
            self.proc.kill()
            raise AssertionError(f"web did not start: {line!r}\n{self.log}")
        self.url = line.split(" ", 2)[2].rstrip("/")

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._lock:
                self._lines.append(line.rstrip("\n"))

    @property
    def log(self) -> str:
        with self._lock:
            return "\n".join(self._lines)

    def request(self, path: str, method: str = "GET", timeout: float = 60) -> tuple[int, object]:
        request = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def values(self) -> dict[str, Decimal | None]:
        """user → KRAKEN value on ``/api/users``."""
        status, body = self.request("/api/users")
        assert status == 200, body
        return {u["user_id"]: None if u["brokers"]["kraken"] is None else Decimal(str(u["brokers"]["kraken"]))
                for u in body["users"]}

    def stop(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def __enter__(self) -> WebProcess:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
