"""Pages benchmark: the bot's summaries, and ``/api/users`` and ``/users`` under open-loop load
while rounds run. Figures, each min / median / max over ``--runs`` runs, printed with goal and
verdict:

  summaries  ``get_user_balance_summary`` and ``get_all_balances`` over 1,000 users (2,000 paper
             accounts, in this process), per-call median of 3 s of calls, idle and while forced
             rounds run back to back in another thread (goals <= 2 ms and <= 0.5 ms)
  web        a fake Kraken (``python -m tests.fakes``), ``python -m web`` with 1,000 users and
             ``cache_ttl_seconds`` = ``--ttl`` (so the scheduler's rounds run during the load), and
             the load client, each in its own process. The client (``python -m tests.bench.pages
             client``: asyncio + aiohttp, at most ``--connections`` connections, bodies read and
             not decompressed, cookies kept like a browser's) sends requests at a fixed offered rate (``--rate``, open loop:
             a request's latency runs from its scheduled time, so a server that falls behind is
             seen, not hidden) for ``--duration`` seconds: p50 / p99 / max and the achieved rate
             (goal p99 <= 100 ms at 300 req/s offered); then a closed loop of ``--connections``
             connections as fast as the server answers (goal >= 300 req/s). For /api/users and
             /users, identity and gzip. Also: the rounds that ran (private calls / accounts) and
             the distinct bodies served (ETags: rebuilds, at most one per
             ``payload_max_age_seconds`` (``--max-age``, 5 s) period that the run touches).

    python -m tests.bench.pages [--runs 3] [--rate 300] [--duration 10] [--ttl 5] [--only summaries|web]
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "bench-pages-admin-token-7f3a9c"
USERS = 1000


def spread(values, scale=1.0, digits=2) -> str:
    v = sorted(x * scale for x in values)
    return f"{v[0]:.{digits}f} / {statistics.median(v):.{digits}f} / {v[-1]:.{digits}f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --------------------------------------------------------------------------- summaries

def summaries(runs: int) -> None:
    from bot.config import load_config
    from bot.core.sources import SCHEDULED
    from bot.multi_account_broker_manager import MultiAccountBrokerManager

    with tempfile.TemporaryDirectory(prefix="mb-bench-pages-") as tmp:
        root = Path(tmp)
        (root / "users").mkdir()
        (root / "settings.json").write_text("{}")
        for i in range(USERS):
            brokers = {"kraken": {"paper": True, "balances": {"USD": str(100 + i), "BTC": "0.01"},
                                  "prices": {"BTC": "60000"}},
                       "coinbase": {"paper": True, "balances": {"USD": str(i % 50)}}}
            (root / "users" / f"u{i:04d}.json").write_text(json.dumps({"user_id": f"u{i:04d}", "brokers": brokers}))
        manager = MultiAccountBrokerManager(load_config(root), history=False)
        try:
            manager.refresh()
            figures: dict[str, list[float]] = {}
            for _ in range(runs):
                for mode in ("idle", "rounds"):
                    stop = threading.Event()
                    rounds = [0]

                    def loop() -> None:
                        while not stop.is_set():
                            manager.refresh(force=True, source=SCHEDULED)
                            rounds[0] += 1

                    worker = threading.Thread(target=loop) if mode == "rounds" else None
                    if worker is not None:
                        worker.start()
                    try:
                        for name, call in (("summary", manager.get_user_balance_summary),
                                           ("all", manager.get_all_balances)):
                            samples = []
                            until = time.perf_counter() + 3.0  # 3 s of calls (thousands), rounds or not
                            while len(samples) < 200 or time.perf_counter() < until:
                                started = time.perf_counter()
                                call()
                                samples.append(time.perf_counter() - started)
                            samples.sort()
                            figures.setdefault(f"{name}:{mode}", []).append(statistics.median(samples))
                            figures.setdefault(f"{name}:{mode}:p99", []).append(samples[int(0.99 * len(samples))])
                    finally:
                        stop.set()
                        if worker is not None:
                            worker.join()
                    if mode == "rounds":
                        figures.setdefault("rounds", []).append(rounds[0])
        finally:
            manager.close()
    for name, label, goal in (("summary", "get_user_balance_summary", 2.0), ("all", "get_all_balances", 0.5)):
        for mode in ("idle", "rounds"):
            medians = figures[f"{name}:{mode}"]
            extra = f", {spread(figures['rounds'], digits=0)} rounds during the calls" if mode == "rounds" else ""
            print(f"[pages] {label}, 1,000 users / 2,000 accounts, {mode}: median per call "
                  f"{spread(medians, 1000, 3)} ms (goal <= {goal} ms: {verdict(statistics.median(medians) * 1000 <= goal)}); "
                  f"p99 {spread(figures[f'{name}:{mode}:p99'], 1000, 3)} ms{extra}", flush=True)


# --------------------------------------------------------------------------- the load client

async def _open_loop(url: str, rate: float, duration: float, headers: dict, connections: int) -> dict:
    import aiohttp

    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    etags: set[str] = set()
    received = [0]
    connector = aiohttp.TCPConnector(limit=connections)
    jar = aiohttp.CookieJar(unsafe=True)  # keep the session cookie of 127.0.0.1, as a browser does
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False, headers=headers,
                                     cookie_jar=jar) as session:
        async def one(scheduled: float) -> None:
            try:
                async with session.get(url) as response:
                    body = await response.read()
                    if response.status != 200:
                        errors[str(response.status)] = errors.get(str(response.status), 0) + 1
                    etags.add(response.headers.get("ETag", ""))
                    received[0] += len(body)
            except Exception as exc:  # counted, reported
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            latencies.append(loop.time() - scheduled)

        count = int(rate * duration)
        start = loop.time() + 0.1
        tasks = []
        for i in range(count):
            scheduled = start + i / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # the offered schedule (load generation)
            tasks.append(asyncio.create_task(one(scheduled)))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    latencies.sort()
    return {"sent": count, "rate": len(latencies) / elapsed, "p50": latencies[len(latencies) // 2],
            "p99": latencies[int(0.99 * (len(latencies) - 1))], "max": latencies[-1], "errors": errors,
            "etags": len(etags - {""}), "bytes": received[0] / max(1, len(latencies))}


async def _closed_loop(url: str, duration: float, headers: dict, connections: int) -> dict:
    import aiohttp

    loop = asyncio.get_running_loop()
    done = [0]
    errors = [0]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections), auto_decompress=False,
                                     headers=headers, cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        end = loop.time() + duration

        async def worker() -> None:
            while loop.time() < end:
                try:
                    async with session.get(url) as response:
                        await response.read()
                        done[0] += response.status == 200
                        errors[0] += response.status != 200
                except Exception:
                    errors[0] += 1

        start = loop.time()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = loop.time() - start
    return {"rate": done[0] / elapsed, "errors": errors[0]}


def client_main(argv: list[str]) -> int:
    """``client URL MODE RATE DURATION CONNECTIONS GZIP``: one JSON line of figures on stdout."""
    url, mode, rate, duration, connections, gz = argv
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept-Encoding": "gzip" if gz == "1" else "identity"}
    cpu = time.process_time()
    if mode == "open":
        result = asyncio.run(_open_loop(url, float(rate), float(duration), headers, int(connections)))
    else:
        result = asyncio.run(_closed_loop(url, float(duration), headers, int(connections)))
    result["client_cpu"] = (time.process_time() - cpu) / float(duration)
    print(json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------- the web bench

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_config(root: Path, fake_url: str, ttl: float, max_age: float) -> None:
    from tests.fakes.kraken import derive_secret

    (root / "users").mkdir(parents=True)
    settings = {"database_url": f"sqlite:///{root / 'bench.sqlite3'}", "cache_ttl_seconds": ttl,
                "rate_limits": {"kraken": {"min_interval_seconds": 0, "public_min_interval_seconds": 0}},
                "web": {"tokens": {hashlib.sha256(TOKEN.encode()).hexdigest(): "admin"},
                        "rate_limit_per_minute": 100_000_000, "payload_max_age_seconds": max_age}}
    (root / "settings.json").write_text(json.dumps(settings))
    for i in range(USERS):
        key = f"pages-bench-{i}"
        broker = {"exchange": "kraken", "api_url": fake_url, "api_key": key, "api_secret": derive_secret(key)}
        (root / "users" / f"user{i:05d}.json").write_text(
            json.dumps({"user_id": f"user{i:05d}", "name": f"User {i}", "brokers": {"kraken": broker}}))


def _wait_warm(base: str, server: subprocess.Popen, timeout: float = 300) -> None:
    """Poll /api/users until every account has been read once (a POST /api/refresh in between
    makes the next body current whatever ``payload_max_age_seconds`` is)."""
    import urllib.error
    import urllib.request

    auth = {"Authorization": f"Bearer {TOKEN}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"python -m web exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(urllib.request.Request(base + "/api/users", headers=auth), timeout=10) as r:
                data = json.loads(r.read())
            if sum(s["status"] == "ok" for u in data["users"] for s in u["status"].values()) >= USERS:
                return
            urllib.request.urlopen(urllib.request.Request(base + "/api/refresh", method="POST", headers=auth),
                                   timeout=120).read()
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)  # polling a starting server
    raise RuntimeError("the server did not read every account in time")


def _client(url: str, mode: str, rate: float, duration: float, connections: int, gz: bool) -> dict:
    out = subprocess.run([sys.executable, "-m", "tests.bench.pages", "client", url, mode, str(rate), str(duration),
                          str(connections), "1" if gz else "0"], cwd=ROOT, capture_output=True, text=True,
                         timeout=duration + 120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def web(runs: int, rate: float, duration: float, ttl: float, connections: int, max_age: float = 5) -> None:
    from tests.bench.common import fake_process
    from tests.bench.web import _fake_stats, write_trades

    results: dict[tuple, list[dict]] = {}
    rounds: dict[tuple, list[float]] = {}
    with fake_process("kraken", latency=0.001) as fake_url, tempfile.TemporaryDirectory(prefix="mb-bench-web-") as tmp:
        root = Path(tmp) / "config"
        _write_config(root, fake_url, ttl, max_age)
        write_trades(root, USERS)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        env = {k: v for k, v in os.environ.items() if k != "BALANCES_API_TOKENS"}
        with open(Path(tmp) / "server.log", "w+") as log:
            server = subprocess.Popen([sys.executable, "-m", "web", "--config", str(root), "--port", str(port)],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log)
            try:
                _wait_warm(base, server)
                for _ in range(runs):
                    for path in ("/api/users", "/users"):
                        for gz in (False, True):
                            for mode in ("open", "closed"):
                                before = _fake_stats(fake_url)["private_calls"]
                                length = duration if mode == "open" else duration / 2
                                result = _client(base + path, mode, rate, length, connections, gz)
                                after = _fake_stats(fake_url)["private_calls"]
                                key = (path, gz, mode)
                                results.setdefault(key, []).append(result)
                                rounds.setdefault(key, []).append((after - before) / USERS)
            except BaseException:
                log.seek(0)
                print(log.read()[-3000:], file=sys.stderr)
                raise
            finally:
                server.send_signal(signal.SIGTERM)
                try:
                    server.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    server.kill()
    print(f"[pages] web: {USERS} users, python -m web (waitress, 4 threads), cache_ttl_seconds {ttl:g} (the "
          f"scheduler's rounds run during the load), payload_max_age_seconds {max_age:g}, client at most "
          f"{connections} connections; "
          f"{runs} runs, min / median / max:", flush=True)
    for path in ("/api/users", "/users"):
        for gz in (False, True):
            name = f"{path} {'gzip' if gz else 'identity'}"
            opened, closed = results[(path, gz, "open")], results[(path, gz, "closed")]
            p99 = [r["p99"] for r in opened]
            capacity = [r["rate"] for r in closed]
            errors = sum(sum(r["errors"].values()) for r in opened) + sum(r["errors"] for r in closed)
            builds = [r["etags"] for r in opened]
            ok_p99 = statistics.median(p99) <= 0.100
            ok_rate = statistics.median(capacity) >= 300
            print(f"      {name:20} open loop at {rate:.0f} req/s for {duration:g} s: achieved "
                  f"{spread([r['rate'] for r in opened], digits=0)} req/s, p50 {spread([r['p50'] for r in opened], 1000, 1)} ms, "
                  f"p99 {spread(p99, 1000, 1)} ms (goal <= 100 ms: {verdict(ok_p99)}), max "
                  f"{spread([r['max'] for r in opened], 1000, 0)} ms, {opened[0]['bytes'] / 1024:.0f} KiB/response, "
                  f"client CPU {spread([r['client_cpu'] for r in opened], 100, 0)} %", flush=True)
            print(f"      {'':20} closed loop, {connections} connections: {spread(capacity, digits=0)} req/s "
                  f"(goal >= 300: {verdict(ok_rate)}); rounds during the open loop "
                  f"{spread(rounds[(path, gz, 'open')], digits=1)}; distinct bodies served {spread(builds, digits=0)} "
                  f"(goal <= {math.ceil(duration / max_age) + 1}: one per payload_max_age_seconds period the run "
                  f"touches{'; /users: one more per new session' if path == '/users' else ''}: "
                  f"{verdict(path == '/users' or max(builds) <= math.ceil(duration / max_age) + 1)}); errors {errors}",
                  flush=True)


def main(argv: list[str]) -> int:
    if argv[:1] == ["client"]:
        return client_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m tests.bench.pages", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--ttl", type=float, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--max-age", type=float, default=5, help="web.payload_max_age_seconds (5)")
    parser.add_argument("--only", choices=("summaries", "web"))
    args = parser.parse_args(argv)
    if args.only in (None, "summaries"):
        summaries(args.runs)
    if args.only in (None, "web"):
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            print("[pages] web: aiohttp is not installed: skipped")
            return 0
        web(args.runs, args.rate, args.duration, args.ttl, args.connections, args.max_age)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
