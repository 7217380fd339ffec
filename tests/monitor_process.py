"""Run ``python -m bot.monitor`` as a subprocess for tests: its address, its log, its /metrics.

``MonitorProcess(config_dir)`` starts it on a free loopback port (``--metrics-port 0``) and waits
for the log line naming the address. A reader thread collects stderr (``lines``) so the pipe never
fills. ``wait_for(predicate)`` polls /metrics with a deadline. ``stop(signal)`` sends the signal
and returns the exit status. Use as a context manager: the process is killed if still running.

``_lock`` guards ``_lines``; the queue hands new lines to whoever waits for a line.
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


class MonitorProcess:
    def __init__(self, config_dir, *extra: str, start_timeout: float = 60.0):
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._new: queue.Queue = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.monitor", "--config", str(config_dir), "--metrics-port", "0", *extra],
            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._await_address(start_timeout)

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._lock:
                self._lines.append(line.rstrip("\n"))
            self._new.put(line)
        self._new.put(None)

    def _await_address(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"monitor did not report its address within {timeout} s:\n{self.log}") from None
            if line is None:
                raise AssertionError(f"monitor exited with {self.proc.wait()} before serving:\n{self.log}")
            match = _ADDRESS.search(line)
            if match:
                return match.group(1)

    @property
    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

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

    def stop(self, signal=signals.SIGTERM, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal)
        return self.proc.wait(timeout=timeout)

    def __enter__(self) -> MonitorProcess:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


def value_of(samples: dict, name: str, **labels):
    """The value of the sample ``name`` whose labels include ``labels``, or None."""
    wanted = set(labels.items())
    found = [v for (n, lab), v in samples.items() if n == name and wanted <= lab]
    assert len(found) <= 1, found
    return found[0] if found else None
