"""``python -m web`` as a real process: waitress answering over HTTP, the scheduler started,
a clean stop on SIGTERM and SIGINT, and the refusals (non-loopback without a token, bad
configuration) with one line on stderr and exit status 2."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "server-test-admin-token-91b2"
ALICE = "server-test-alice-token-44c1"
DEADLINE = 30.0


def write_config(config, tokens=True):
    web = {"tokens": {hashlib.sha256(TOKEN.encode()).hexdigest(): "admin"}} if tokens else {}
    config.settings(web=web)
    config.master({"kraken": {"paper": True, "balances": {"USD": "10"}}})
    config.user("alice", {"kraken": {"paper": True, "balances": {"USD": "750"}}})
    return config.root


def start(config_dir, *args, env_tokens=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BALANCES_")}
    if env_tokens:
        env["BALANCES_API_TOKENS"] = env_tokens
    return subprocess.Popen([sys.executable, "-m", "web", "--config", str(config_dir), *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def get(url, token=None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def wait_listening(proc) -> str:
    """The base URL printed by the server (its first stdout line), once /healthz answers."""
    line = proc.stdout.readline().strip()  # blocks until the server printed it (or exited)
    assert line.startswith("listening on "), (line, proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
    base = line.split(" ", 2)[2].rstrip("/")
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            status, _, body = get(base + "/healthz")
            if status == 200 and json.loads(body)["scheduler"]["running"]:
                return base
        except OSError:
            pass
        assert time.monotonic() < deadline, "server did not become healthy in time"
        time.sleep(0.05)


def stop(proc, sig=signal.SIGTERM) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serves_over_http_and_stops_cleanly(config, sig):
    root = write_config(config)
    proc = start(root, "--port", "0", env_tokens=f"{ALICE}=alice")
    try:
        base = wait_listening(proc)
        status, headers, body = get(base + "/api/users", TOKEN)
        assert status == 200 and headers["Server"] == "multibalance"
        assert headers["X-RateLimit-Limit"] == "100"
        # the scheduler's first refresh has run or is running: wait for it through the API
        deadline = time.monotonic() + DEADLINE
        while json.loads(body)["users"][0]["status"]["kraken"]["status"] != "ok":
            assert time.monotonic() < deadline
            time.sleep(0.05)
            body = get(base + "/api/users", TOKEN)[2]
        data = json.loads(body)
        assert data["users"][0]["total"] == 750.0 and data["master"]["total"] == 10.0
        status, _, body = get(base + "/api/users", ALICE)
        assert status == 200 and [u["user_id"] for u in json.loads(body)["users"]] == ["alice"]
        status, headers, body = get(base + "/api/users")
        assert status == 401 and headers["Content-Type"] == "application/problem+json"
        status, headers, _ = get(base + "/nope")
        assert status == 404 and headers["Content-Type"] == "application/problem+json"
        status, headers, page = get(base + "/login")
        assert status == 200 and "text/html" in headers["Content-Type"]
    finally:
        code, err = stop(proc, sig)
    assert code == 0, err
    assert "Traceback" not in err and "stopped" in err
    assert TOKEN not in err and ALICE not in err


def test_refuses_a_public_address_without_a_token(config):
    root = write_config(config, tokens=False)
    proc = start(root, "--host", "0.0.0.0", "--port", "0")
    out, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "no API token is configured" in lines[0] and "0.0.0.0" in lines[0]
    assert "Traceback" not in err and out == ""


def test_a_public_address_is_allowed_with_a_token(config):
    root = write_config(config, tokens=True)
    proc = start(root, "--host", "0.0.0.0", "--port", "0")
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on http://0.0.0.0:"), (line, proc.stderr.read() if proc.poll() else "")
        port = int(line.rsplit(":", 1)[1].strip("/\n"))
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                assert get(f"http://127.0.0.1:{port}/api/balance", TOKEN)[0] == 200
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        code, err = stop(proc)
    assert code == 0, err


def test_loopback_without_a_token_treats_callers_as_admin(config):
    root = write_config(config, tokens=False)
    proc = start(root, "--port", "0")
    try:
        base = wait_listening(proc)
        status, _, body = get(base + "/api/users")
        assert status == 200 and json.loads(body)["master"] is not None
    finally:
        code, _ = stop(proc)
    assert code == 0


def test_bad_configuration_and_busy_port_exit_2(config, tmp_path):
    config.settings(web={"rate_limit_per_minute": 0})
    proc = start(config.root, "--port", "0")
    _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 2 and err.count("error:") == 1 and "web.rate_limit_per_minute" in err
    root = write_config(config)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc = start(root, "--port", str(busy.getsockname()[1]))
        _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 2 and "cannot listen" in err and "Traceback" not in err
