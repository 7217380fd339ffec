"""Run ``python -m bot.monitor`` as a subprocess for tests: its address, its log, its /metrics.

``MonitorProcess(config_dir)`` starts it on a free loopback port (``--metrics-port 0``) and waits
for the log line naming the address. A reader thread collects stderr (``lines``) so the pipe never
fills. ``wait_for(predicate)`` polls /metrics with a deadline. ``stop(signal)`` sends the signal
and returns the exit status. Use as a context manager: the process is killed if still running.

`LoggedProcess` is the part every test process shares (the workers': `tests.fleet`).
"""
from __future__ import annotations

import queue
import re
import signal as signals
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
_ADDRESS = re.compile(r"metrics on (http://\S+)/metrics")


class LoggedProcess:
    """A subprocess whose stderr is collected on a thread (``_lock`` guards ``_lines``; the queue
    hands new lines to `_await_line`). Killed on exit from the context if still running."""

    def __init__(self, args: list[str], env=None):
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._new: queue.Queue = queue.Queue()
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._lock:
                self._lines.append(line.rstrip("\n"))
            self._new.put(line)
        self._new.put(None)

    def _await_line(self, pattern: re.Pattern, timeout: float, what: str) -> re.Match:
        """The match of the first stderr line matching ``pattern``; fails after ``timeout`` or at exit."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{what} not seen within {timeout} s:\n{self.log}") from None
            if line is None:
                raise AssertionError(f"process exited with {self.proc.wait()} before {what}:\n{self.log}")
            match = pattern.search(line)
            if match:
                return match

    @property
    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def stop(self, signal=signals.SIGTERM, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal)
        return self.proc.wait(timeout=timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class MonitorProcess(LoggedProcess):
    def __init__(self, config_dir, *extra: str, start_timeout: float = 60.0):
        super().__init__([sys.executable, "-m", "bot.monitor", "--config", str(config_dir), "--metrics-port", "0",
                          *extra])
        self.url = self._await_line(_ADDRESS, start_timeout, "the monitor's address").group(1)

    def get(self, path: str = "/metrics") -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def samples(self) -> dict:
        """(name, frozenset(labels.items())) → value of one scrape."""
        status, body = self.get("/metrics")
        assert status == 200, status
        return {(s.name, frozenset(s.labels.items())): s.value
                for f in text_string_to_metric_families(body.decode("utf-8")) for s in f.samples}

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "condition"):
        """Scrape until ``predicate(samples)`` is truthy; return its value. Fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate(self.samples())
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not seen on /metrics within {timeout} s:\n{self.log}")
            time.sleep(0.05)  # polling interval of the deadline loop, not a synchronisation


def value_of(samples: dict, name: str, **labels):
    """The value of the sample ``name`` whose labels include ``labels``, or None."""
    wanted = set(labels.items())
    found = [v for (n, lab), v in samples.items() if n == name and wanted <= lab]
    assert len(found) <= 1, found
    return found[0] if found else None


def wait_until(predicate, timeout: float, what: str):
    """Poll ``predicate()`` until truthy (its value) or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.02)  # polling interval of the deadline loop, not a synchronisation
