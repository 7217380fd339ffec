"""Every bad configuration of `tests.bad_configs` against all three entry points.

Each entry point's ``main(argv)`` runs in-process for the whole table: exit status 2, exactly one
line on stderr, starting with ``error: `` and naming the file, no traceback, no pasted key. A few
cases (the FIFO, the damaged SQLite file, a non-UTF-8 user file) then run as real subprocesses
with a timeout that proves nothing waits forever.

Should a case ever load, no entry point can hang on it: the web server is asked for a
non-loopback address without a token (refused after loading, with a line naming no file) and
the monitor's stop event is set before it starts (it returns 0 at once).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import bot.app.monitor as monitor
from bot.app import cli
from web import __main__ as web_main
from tests.bad_configs import CASES, SECRET, write_good_config

ROOT = Path(__file__).resolve().parents[1]
SUBPROCESS_CASES = ("settings-fifo", "sqlite-garbage-in-middle-pages", "user-file-not-utf8")
SUBPROCESS_TIMEOUT = 30


def run_cli(root: Path) -> int:
    return cli.main(["--config", str(root)])


def run_web(root: Path) -> int:
    return web_main.main(["--config", str(root), "--host", "192.0.2.1", "--port", "0", "--no-scheduler"])


def run_monitor(root: Path, monkeypatch) -> int:
    real_run = monitor.run

    def run_stopped(args, stop):
        stop.set()
        return real_run(args, stop)

    monkeypatch.setattr(monitor, "run", run_stopped)
    return monitor.main(["--config", str(root), "--metrics-port", "0"])


ENTRY_POINTS = {"cli": lambda root, mp: run_cli(root), "web": lambda root, mp: run_web(root),
                "monitor": run_monitor}


@pytest.fixture
def broken(tmp_path, request, monkeypatch):
    """A good configuration directory broken as the case says; secrets that a test environment
    may hold are removed so that only the files decide."""
    monkeypatch.delenv("BALANCES_API_TOKENS", raising=False)
    monkeypatch.delenv("BALANCES_CONFIG", raising=False)
    case = request.param
    root = tmp_path / "config"
    write_good_config(root)
    case.setup(root)
    return case, root


def check_one_error_line(stderr: str, stdout: str, root: Path, case) -> str:
    assert "Traceback" not in stderr and "Traceback" not in stdout
    lines = stderr.splitlines()
    assert len(lines) == 1 and stderr.endswith("\n"), stderr
    line = lines[0]
    assert line.startswith("error: "), line
    named = str(root / case.file) if case.file else str(root)
    assert named in line, (named, line)
    assert case.needle in line, line
    assert SECRET not in line and SECRET not in stdout
    return line


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("broken", CASES, ids=[c.id for c in CASES], indirect=True)
def test_bad_configuration_is_one_error_line_exit_2(broken, entry, capsys, monkeypatch):
    case, root = broken
    status = ENTRY_POINTS[entry](root, monkeypatch)
    out, err = capsys.readouterr()
    assert status == 2, (status, err)
    check_one_error_line(err, out, root, case)


def test_the_good_configuration_runs(tmp_path, capsys):
    """Every case breaks a configuration that works, so each fails for its own reason."""
    root = tmp_path / "config"
    write_good_config(root)
    assert run_cli(root) == 0
    out, err = capsys.readouterr()
    assert "User: alice" in out and err == ""


def test_the_table_covers_every_kind_of_defect():
    ids = {c.id for c in CASES}
    assert len(ids) == len(CASES)  # unique ids, so each case is reported on its own
    for expected in ("user-file-not-utf8", "settings-nested-100000-deep", "settings-fifo", "settings-symlink-loop",
                     "users-a-plain-file", "same-user-nfc-and-nfd", "user-id-dotdot", "user-id-backslash",
                     "base_currency-XXXXXXXX", "api_url-with-path-and-key", "api_url-without-host",
                     "retention_days-1e12", "sqlite-garbage-in-middle-pages", "sqlite-garbage-first-page"):
        assert expected in ids


COMMANDS = {
    "cli": lambda root: [sys.executable, str(ROOT / "scripts" / "show_user_balances.py"), "--config", str(root)],
    "web": lambda root: [sys.executable, "-m", "web", "--config", str(root), "--port", "0", "--no-scheduler"],
    "monitor": lambda root: [sys.executable, "-m", "bot.monitor", "--config", str(root), "--metrics-port", "0"],
}


@pytest.mark.parametrize("broken", [c for c in CASES if c.id in SUBPROCESS_CASES],
                         ids=list(SUBPROCESS_CASES), indirect=True)
def test_as_real_processes_without_hanging(broken):
    case, root = broken
    env = {k: v for k, v in os.environ.items() if k not in ("BALANCES_API_TOKENS", "BALANCES_CONFIG")}
    running = {name: subprocess.Popen(command(root), cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for name, command in COMMANDS.items()}
    try:
        for name, process in running.items():
            out, err = process.communicate(timeout=SUBPROCESS_TIMEOUT)  # a hang fails here, it is not waited out
            assert process.returncode == 2, (name, process.returncode, err)
            check_one_error_line(err, out, root, case)
            assert out == "", (name, out)
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
                process.wait()
