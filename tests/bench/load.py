"""What the web benchmarks (``tests/bench/pages.py``, ``tests/bench/web.py``) share: the
deployment under test and the load drivers.

Deployment (`deployment`): a fake Kraken (``python -m tests.fakes``), 1,000 users with one Kraken
account each and 3 journaled trades each, on one SQLite store in a temporary configuration
directory, and the processes of one of two deployments:

  follower  the product's normal one: ``python -m bot.monitor`` reads (role ``reader``: it takes
            every key's lease and runs the rounds every ``cache_ttl_seconds``) and
            ``python -m web`` (settings ``fetch.role: follower``) follows the shared state
            (`bot.app.truth`): it never calls the exchange, it adopts the states the monitor
            wrote and serves them
  reader    ``python -m web`` alone, which then reads too: the refresh rounds run in the web
            process, next to the requests (one GIL)

Each process logs to a file of the temporary directory (the tail is printed if something fails);
everything is stopped with SIGTERM (killed after 60 s) and the directory removed on exit.

Drivers, each run in its own process (``python -m tests.bench.load client ...``) so that the
client does not share an interpreter with anything it measures:

  `open_loop`    asyncio + aiohttp, at most ``connections`` connections, bodies read and not
                 decompressed, cookies kept like a browser's: requests are sent at a fixed offered
                 rate whatever the server does (open loop, wrk2-style), and a request's latency
                 runs from its scheduled send time, so a server that falls behind is seen, not
                 hidden (no coordinated omission)
  `closed_loop`  ``connections`` connections each sending its next request when the previous one
                 is answered, as fast as the server answers: capacity. ``wrk`` (Debian package
                 ``wrk``) when it is installed, else the aiohttp client (which then competes with
                 the server for CPU: the figure says which drove it). Debian's wrk has no fixed
                 rate (wrk2's ``-R``), so the open loop is always the aiohttp client.

CPU time of each process is read from ``/proc/<pid>/stat`` around a run (`cpu_seconds`).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "bench-web-admin-token-7f3a9c01"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
USERS = 1000
DEPLOYMENTS = ("follower", "reader")


def spread(values, scale: float = 1.0, digits: int = 2) -> str:
    """``min / median / max`` of ``values`` × ``scale``."""
    v = sorted(x * scale for x in values)
    return f"{v[0]:.{digits}f} / {statistics.median(v):.{digits}f} / {v[-1]:.{digits}f}"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


# --------------------------------------------------------------------------- HTTP helpers

def http_get(url: str, headers: dict | None = None, timeout: float = 10, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def fake_stats(fake_url: str) -> dict:
    return json.loads(http_get(fake_url + "/__fake__/stats")[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- configuration

def write_config(root: Path, fake_url: str, users: int, settings: dict) -> None:
    """``users`` users with one Kraken account each (auto-account keys of the fake) on the SQLite
    file of ``root``, the admin token `TOKEN`, and ``settings`` on top."""
    from tests.fakes.kraken import derive_secret

    (root / "users").mkdir(parents=True)
    values = {"database_url": f"sqlite:///{root / 'bench.sqlite3'}",
              "rate_limits": {"kraken": {"min_interval_seconds": 0, "public_min_interval_seconds": 0}},
              "web": {"tokens": {hashlib.sha256(TOKEN.encode()).hexdigest(): "admin"},
                      "rate_limit_per_minute": 100_000_000}}
    for key, value in settings.items():
        values[key] = {**values[key], **value} if isinstance(value, dict) and key in values else value
    (root / "settings.json").write_text(json.dumps(values))
    for i in range(users):
        key = f"web-bench-{i}"
        broker = {"exchange": "kraken", "api_url": fake_url, "api_key": key, "api_secret": derive_secret(key)}
        (root / "users" / f"user{i:05d}.json").write_text(
            json.dumps({"user_id": f"user{i:05d}", "name": f"User {i}", "brokers": {"kraken": broker}}))


def write_trades(root: Path, users: int, per_user: int = 3) -> None:
    from bot.history.journal import make_trade
    from bot.store import BalanceStore

    now = dt.datetime.now(dt.timezone.utc)
    with BalanceStore(f"sqlite:///{root / 'bench.sqlite3'}") as store:
        for i in range(users):
            for j in range(per_user):
                store.add_trade(make_trade(f"user{i:05d}", "kraken", "BTC/USD", "sell" if j % 2 else "buy",
                                           Decimal("0.001"), Decimal("50000"), Decimal(j - 1) if j % 2 else None,
                                           Decimal("0.05"), now - dt.timedelta(hours=j)))


# --------------------------------------------------------------------------- processes

class Process:
    """A child process whose stderr goes to ``log`` (a file: no pipe to fill)."""

    def __init__(self, name: str, argv: list[str], log: Path, env: dict, stdout: bool = False):
        """``stdout``: a pipe to read the process's first lines from (else discarded)."""
        self.name, self.log = name, log
        self._log_file = open(log, "w")
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                                     stderr=self._log_file, text=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, chars: int = 3000) -> str:
        self._log_file.flush()
        return f"--- {self.name} log (tail) ---\n" + self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log_file.close()
        return self.proc.returncode


@dataclass
class Deployment:
    kind: str
    base: str                      # the web server's URL
    fake_url: str
    web: Process
    reader: Process | None         # the monitor (follower deployment)
    processes: list[Process] = field(default_factory=list)

    def check_alive(self) -> None:
        for process in self.processes:
            if process.proc.poll() is not None:
                raise RuntimeError(f"{process.name} exited with status {process.proc.returncode}")

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of the web process and, if any, the reader."""
        out = {"web": cpu_seconds(self.web.pid)}
        if self.reader is not None:
            out["reader"] = cpu_seconds(self.reader.pid)
        return out


def clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("BALANCES_")}


@contextmanager
def deployment(kind: str, ttl: float, max_age: float = 5, users: int = USERS, web_threads: int = 4,
               settings: dict | None = None):
    """The ``kind`` deployment (see the module docstring), warm (every account read once and
    served); yields a `Deployment`. ``ttl``: cache_ttl_seconds, the rounds' period."""
    from tests.bench.common import fake_process

    if kind not in DEPLOYMENTS:
        raise ValueError(kind)
    extra = {"cache_ttl_seconds": ttl, "web": {"payload_max_age_seconds": max_age}, **(settings or {})}
    if kind == "follower":
        extra["fetch"] = {"role": "follower"}  # the web's role; the monitor is a reader whatever it says
    with ExitStack() as stack:
        fake_url = stack.enter_context(fake_process("kraken", 0.001))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mb-bench-web-")))
        root = tmp / "config"
        write_config(root, fake_url, users, extra)
        write_trades(root, users)
        env = clean_env()
        processes: list[Process] = []
        stack.callback(lambda: [p.stop() for p in reversed(processes)])
        try:
            reader = None
            if kind == "follower":
                reader = Process("python -m bot.monitor", [sys.executable, "-m", "bot.monitor", "--config", str(root),
                                                           "--metrics-port", "0"], tmp / "monitor.log", env)
                processes.append(reader)
            web = Process("python -m web", [sys.executable, "-m", "web", "--config", str(root), "--port", "0",
                                            "--threads", str(web_threads)], tmp / "web.log", env, stdout=True)
            processes.append(web)
            line = web.proc.stdout.readline().strip()  # "listening on http://127.0.0.1:PORT/"
            if not line.startswith("listening on "):
                raise RuntimeError(f"python -m web did not start: {line!r}")
            base = line.split(" ", 2)[2].rstrip("/")
            deployed = Deployment(kind, base, fake_url, web, reader, processes)
            wait_warm(deployed, users)
            yield deployed
        except BaseException:
            for process in processes:
                print(process.tail(), file=sys.stderr)
            raise


def wait_warm(deployed: Deployment, users: int, timeout: float = 300) -> None:
    """Poll /api/users until every account has been read once (a POST /api/refresh in between:
    a forced round, which the follower asks its reader for, makes the next body current)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        deployed.check_alive()
        try:
            status, body = http_get(deployed.base + "/api/users", AUTH)
            if status == 200:
                data = json.loads(body)
                if sum(s["status"] == "ok" for u in data["users"] for s in u["status"].values()) >= users:
                    return
            http_get(deployed.base + "/api/refresh", AUTH, timeout=120, method="POST")
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)  # polling a starting server
    raise RuntimeError("the deployment did not read every account in time")


# --------------------------------------------------------------------------- drivers

def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def open_loop(url: str, rate: float, duration: float, connections: int, headers: dict) -> dict:
    """Fixed offered ``rate`` for ``duration`` s (the aiohttp client, its own process): sent,
    elapsed (until the last answer: longer than ``duration`` when the server fell behind), achieved rate, p50 / p99 / max latency from the scheduled send time (s), errors by kind,
    distinct ETags, bytes per response, client CPU (fraction of one core)."""
    return _client("open", url, rate, duration, connections, headers)


def closed_loop(url: str, duration: float, connections: int, headers: dict, threads: int = 2) -> dict:
    """``connections`` connections as fast as the server answers for ``duration`` s: rate (req/s),
    p50 / p99 (s), errors, and ``tool`` (``wrk`` or ``aiohttp``)."""
    if wrk_available():
        return run_wrk(url, duration, connections, threads, headers)
    return {**_client("closed", url, 0, duration, connections, headers), "tool": "aiohttp"}


def _client(mode: str, url: str, rate: float, duration: float, connections: int, headers: dict) -> dict:
    out = subprocess.run([sys.executable, "-m", "tests.bench.load", "client", mode, url, str(rate), str(duration),
                          str(connections), json.dumps(headers)], cwd=ROOT, capture_output=True, text=True,
                         timeout=duration + 120)
    if out.returncode != 0:
        raise RuntimeError(f"load client failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def parse_wrk(text: str) -> dict:
    def seconds(value: str, unit: str) -> float:
        return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p99 = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    p50 = re.search(r"^\s*50%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return {"rate": rate, "p50": seconds(*p50.groups()), "p99": seconds(*p99.groups()),
            "errors": (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)}


def run_wrk(url: str, duration: float, connections: int, threads: int, headers: dict) -> dict:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=duration + 60, check=True)
    return {**parse_wrk(out.stdout), "tool": "wrk"}


async def _open(url: str, rate: float, duration: float, headers: dict, connections: int) -> dict:
    import aiohttp

    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    etags: set[str] = set()
    received = [0]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections), auto_decompress=False,
                                     headers=headers, cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
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
    return {"sent": count, "elapsed": elapsed, "rate": len(latencies) / elapsed, "p50": latencies[len(latencies) // 2],
            "p99": latencies[int(0.99 * (len(latencies) - 1))], "max": latencies[-1], "errors": errors,
            "etags": len(etags - {""}), "bytes": received[0] / max(1, len(latencies))}


async def _closed(url: str, duration: float, headers: dict, connections: int) -> dict:
    import aiohttp

    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    errors = [0]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections), auto_decompress=False,
                                     headers=headers, cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        end = loop.time() + duration

        async def worker() -> None:
            while loop.time() < end:
                began = loop.time()
                try:
                    async with session.get(url) as response:
                        await response.read()
                        if response.status == 200:
                            latencies.append(loop.time() - began)
                        else:
                            errors[0] += 1
                except Exception:
                    errors[0] += 1

        start = loop.time()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = loop.time() - start
    latencies.sort()
    return {"rate": len(latencies) / elapsed, "errors": errors[0],
            "p50": latencies[len(latencies) // 2] if latencies else float("nan"),
            "p99": latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan")}


def client_main(argv: list[str]) -> int:
    """``client MODE URL RATE DURATION CONNECTIONS HEADERS_JSON``: one JSON line of figures."""
    mode, url, rate, duration, connections, headers = argv
    headers = json.loads(headers)
    cpu = time.process_time()
    if mode == "open":
        result = asyncio.run(_open(url, float(rate), float(duration), headers, int(connections)))
    else:
        result = asyncio.run(_closed(url, float(duration), headers, int(connections)))
    result["client_cpu"] = (time.process_time() - cpu) / float(duration)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] != ["client"]:
        sys.exit("usage: python -m tests.bench.load client MODE URL RATE DURATION CONNECTIONS HEADERS_JSON")
    sys.exit(client_main(sys.argv[2:]))
