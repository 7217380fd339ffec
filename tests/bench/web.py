"""Web benchmark: ``/api/users`` with 1,000 users, from cache, through ``python -m web`` (waitress).

A fake Kraken runs in its own process (``python -m tests.fakes``); 1,000 users with one Kraken
account each (and 3 journaled trades each) are served by ``python -m web`` in another process;
the first scheduled refresh reads every account once, then ``wrk`` (Debian package ``wrk``),
a third process, drives ``GET /api/users`` with an admin bearer token over loopback. Prints
requests/s and p99 latency (goal ≥ 300 req/s, p99 ≤ 100 ms on 2 cores), plain and with
``Accept-Encoding: gzip``, and the fake's private/public call counts during the runs (the
payload must come from cache: expected 0). Prints figures, asserts nothing.

    python -m tests.bench.web [--users 1000] [--duration 10] [--connections 16,32] [--threads 2]
                              [--server-threads 4]
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "bench-admin-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _fake_stats(fake_url: str) -> dict:
    return json.loads(_get(fake_url + "/__fake__/stats")[1])


def write_config(root: Path, fake_url: str, users: int) -> None:
    from tests.fakes.kraken import derive_secret

    (root / "users").mkdir(parents=True)
    settings = {
        "database_url": f"sqlite:///{root / 'bench.sqlite3'}",
        "cache_ttl_seconds": 3600,  # the scheduler's next refresh is an hour away: none during the run
        "rate_limits": {"kraken": {"min_interval_seconds": 0, "public_min_interval_seconds": 0}},
        "web": {"tokens": {hashlib.sha256(TOKEN.encode()).hexdigest(): "admin"},
                "rate_limit_per_minute": 100_000_000, "recent_trades": 5},
    }
    (root / "settings.json").write_text(json.dumps(settings))
    for i in range(users):
        key = f"web-bench-{i}"
        user_id = f"user{i:05d}"
        broker = {"exchange": "kraken", "api_url": fake_url, "api_key": key, "api_secret": derive_secret(key)}
        (root / "users" / f"{user_id}.json").write_text(
            json.dumps({"user_id": user_id, "name": f"User {i}", "brokers": {"kraken": broker}}))


def write_trades(root: Path, users: int, per_user: int = 3) -> None:
    from bot.store import BalanceStore
    from bot.history.journal import make_trade

    now = dt.datetime.now(dt.timezone.utc)
    with BalanceStore(f"sqlite:///{root / 'bench.sqlite3'}") as store:
        for i in range(users):
            for j in range(per_user):
                store.add_trade(make_trade(f"user{i:05d}", "kraken", "BTC/USD", "sell" if j % 2 else "buy",
                                           Decimal("0.001"), Decimal("50000"), Decimal(j - 1) if j % 2 else None,
                                           Decimal("0.05"), now - dt.timedelta(hours=j)))


def wait_warm(base: str, users: int, deadline: float, server: subprocess.Popen) -> dict:
    """Poll /api/users until every user's account has been read (status ok)."""
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"python -m web exited with status {server.returncode} (see its log above)")
        try:
            status, body = _get(base + "/api/users", TOKEN)
        except urllib.error.URLError:
            time.sleep(0.2)
            continue
        if status == 200:
            data = json.loads(body)
            ok = sum(1 for u in data["users"] for s in u["status"].values() if s["status"] == "ok")
            if ok >= users:
                return data
        time.sleep(0.2)
    raise RuntimeError("the server did not read every account in time")


def parse_wrk(text: str) -> dict:
    def seconds(value: str, unit: str) -> float:
        return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    p50 = re.search(r"^\s*50%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: (.*)", text)
    return {"rate": rate, "p99_ms": seconds(*p99.groups()) * 1000, "p50_ms": seconds(*p50.groups()) * 1000,
            "non2xx": int(errors.group(1)) if errors else 0, "socket_errors": sock.group(1) if sock else None}


def run_wrk(url: str, duration: int, connections: int, threads: int, gzip: bool) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
           "-H", f"Authorization: Bearer {TOKEN}"]
    if gzip:
        cmd += ["-H", "Accept-Encoding: gzip"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=duration + 60, check=True)
    return parse_wrk(out.stdout)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.web")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="16,32", help="comma-separated wrk connection counts")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--server-threads", type=int, default=4, help="waitress threads")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("(web) wrk not installed (Debian: apt-get install wrk): skipped")
        return 0
    from tests.bench.common import fake_process

    with fake_process("kraken", latency=0.001) as fake_url, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "config"
        write_config(root, fake_url, args.users)
        write_trades(root, args.users)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        log = open(Path(tmp) / "server.log", "w+")
        env = {k: v for k, v in os.environ.items() if k not in ("BALANCES_API_TOKENS",)}
        server = subprocess.Popen([sys.executable, "-m", "web", "--config", str(root), "--port", str(port),
                                   "--threads", str(args.server_threads)],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        try:
            started = time.monotonic()
            data = wait_warm(base, args.users, time.monotonic() + 300, server)
            warm_s = time.monotonic() - started
            size = len(_get(base + "/api/users", TOKEN)[1])
            before = _fake_stats(fake_url)
            results = []
            for connections in [int(c) for c in args.connections.split(",")]:
                for gzip in (False, True):
                    results.append((connections, gzip, run_wrk(base + "/api/users", args.duration, connections,
                                                               args.threads, gzip)))
            after = _fake_stats(fake_url)
        except BaseException:
            log.seek(0)
            print(log.read()[-3000:], file=sys.stderr)
            raise
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        calls = {k: after[k] - before[k] for k in ("private_calls", "public_calls")}
        print(f"(web) /api/users, {args.users} users ({len(data['users'])} listed, {size / 1024:.0f} KiB JSON), "
              f"python -m web (waitress, {args.server_threads} threads) after a {warm_s:.1f} s start and first read; "
              f"wrk -t{args.threads} -d{args.duration}s on loopback (goal >= 300 req/s, p99 <= 100 ms):")
        for connections, gzip, r in results:
            name = f"-c{connections} {'gzip' if gzip else 'identity'}"
            print(f"      {name:13}: {r['rate']:.0f} req/s, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                  f"non-2xx {r['non2xx']}, socket errors {r['socket_errors'] or 'none'}")
        print(f"      exchange calls during the runs: {calls['private_calls']} private, {calls['public_calls']} public "
              f"(goal: 0); server exit status {server.returncode}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
