"""History benchmark: the writer's rounds, the midnight close and the 90-day history query, on
SQLite (and PostgreSQL when ``BALANCES_TEST_POSTGRES_URL`` is set: a throw-away database).

The writer is the real `HistoryRecorder` on a real store, fed by a `StateView` of this module
(`RoundView`) that publishes one state per account from one thread at ``--rate`` accounts/s
(the fetch plane's listeners run on its worker threads the same way; no exchange is involved so
that the figures are the writer's). Figures, each min / median / max over ``--runs`` runs:

  unchanged   a round of 2,000 accounts (1,000 users) that changed nothing: daily closes and
              snapshots written (goal 0: the snapshot rule asks for none within its interval),
              commits, and the writer's lag after the round's last read (goal <= 1 s)
  changed     the same round with every account's value changed (every snapshot and close)
  20k         unchanged and changed rounds of 20,000 accounts (10,000 users): lag (goal <= 1 s)
  close       the midnight close of 2,000 users, ``close_day`` with no forced read: warm (the
              writer wrote the day) and cold (a restarted writer rewrites every close first)
              (goal <= 0.5 s)
  query       one account over 90 days (8,640 rows), median of 30 calls per run (goal <= 20 ms):
              ``GET /api/accounts/<id>/balance-history`` end to end through the app, next to
              the same body built the previous way (the same-machine reference), and the store
              queries alone (``snapshot_history_columns``, the endpoint's; ``snapshot_history``)

    python -m tests.bench.history [--runs 3] [--rate 4000] [--big 20000] [--only query]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from sqlalchemy import event, make_url

from bot.config import load_config
from bot.core.sources import SCHEDULED
from bot.core.state import AccountState, Holding, Status
from bot.history.recorder import HistoryRecorder
from bot.store import BalanceStore, default_database_url

PRICE = Decimal("60000")


class RoundView:
    """A `StateView` whose states are published by `round()`: every account once, from one
    thread, paced at ``rate`` accounts/s. ``_lock`` guards ``_states`` and ``_listeners``."""

    def __init__(self, config, rate: float):
        self.config = config
        self._rate = rate
        self._accounts = config.accounts()
        self._lock = threading.Lock()
        self._states: dict[str, AccountState] = {}
        self._listeners: tuple = ()

    def current_states(self) -> list[AccountState]:
        with self._lock:
            return list(self._states.values())

    def subscribe(self, listener):
        with self._lock:
            self._listeners += (listener,)
        return lambda: None

    def cache_stats(self) -> tuple[int, int]:
        return 0, 0

    def round(self, tag: int) -> float:
        """Publish one state per account (values depend on ``tag``); return the wall time of the
        last publication (time.perf_counter)."""
        start = time.perf_counter()
        now = time.time()
        for i, account in enumerate(self._accounts):
            usd = Decimal(100 + i % 997 + tag)
            btc = Decimal("0.01")
            holdings = {"USD": Holding(usd, Decimal(1), usd), "BTC": Holding(btc, PRICE, btc * PRICE)}
            state = AccountState(account.account_id, account.owner, account.broker.name, account.broker.exchange,
                                 Status.OK, usd + btc * PRICE, holdings, fetched_at=now)
            with self._lock:
                previous = self._states.get(account.account_id)
                self._states[account.account_id] = state
                listeners = self._listeners
            for listener in listeners:
                listener(state, previous, SCHEDULED)
            ahead = start + (i + 1) / self._rate - time.perf_counter()
            if ahead > 0.002:
                time.sleep(ahead)  # pacing the load generator, not waiting for a result
        return time.perf_counter()


@contextmanager
def config_dir(users: int, brokers: int = 2):
    with tempfile.TemporaryDirectory(prefix="mb-bench-history-") as tmp:
        root = Path(tmp)
        (root / "users").mkdir()
        (root / "settings.json").write_text("{}")
        for i in range(users):
            entry = {f"b{j}": {"paper": True, "balances": {"USD": "1"}} for j in range(brokers)}
            (root / "users" / f"u{i:05d}.json").write_text(json.dumps({"user_id": f"u{i:05d}", "brokers": entry}))
        yield load_config(root)


class Counter:
    """Commits on the store's engine (every transaction the writer made)."""

    def __init__(self, store: BalanceStore):
        self.commits = 0
        event.listen(store._engine, "commit", self._commit)  # the bench looks inside on purpose

    def _commit(self, _connection) -> None:
        self.commits += 1


def writer_round(url: str, users: int, rate: float) -> dict:
    """One run: a first round (every snapshot), then unchanged and changed rounds; their figures."""
    with config_dir(users) as config:
        store = BalanceStore(url)
        view = RoundView(config, rate)
        recorder = HistoryRecorder(view, store, config.settings).start()
        counter = Counter(store)
        try:
            out = {}
            for name, tag in (("first", 0), ("unchanged", 0), ("changed", 1)):
                commits_before = counter.commits
                days_before = _day_stamps(store, recorder.today())
                snapshots_before = _snapshot_count(store)
                last = view.round(tag)
                recorder.flush()
                lag = time.perf_counter() - last
                days_after = _day_stamps(store, recorder.today())
                out[name] = {"lag": lag, "commits": counter.commits - commits_before,
                             "snapshots": _snapshot_count(store) - snapshots_before,
                             "closes": sum(1 for k, v in days_after.items() if days_before.get(k) != v)}
            return out
        finally:
            recorder.stop()
            store.close()


def _snapshot_count(store: BalanceStore) -> int:
    with store._engine.connect() as connection:
        return connection.exec_driver_sql("SELECT count(*) FROM snapshots").scalar_one()


def _day_stamps(store: BalanceStore, day: dt.date) -> dict:
    with store._engine.connect() as connection:
        return dict(connection.exec_driver_sql("SELECT user_id, updated_at FROM daily_days").all())


def close_runs(url: str, users: int, runs: int) -> dict:
    """close_day of ``users`` users (one account each), warm and cold, one new day per run."""
    warm, cold = [], []
    with config_dir(users, brokers=1) as config:
        store = BalanceStore(url)
        try:
            view = RoundView(config, rate=1e9)
            today = dt.date.today()
            for run in range(runs):
                for variant, samples in (("warm", warm), ("cold", cold)):
                    day = today + dt.timedelta(days=1 + 2 * run + (variant == "cold"))
                    noon = dt.datetime.combine(day, dt.time(12), dt.timezone.utc)
                    recorder = HistoryRecorder(view, store, config.settings, now=lambda noon=noon: noon).start()
                    view.round(run)
                    recorder.flush()
                    if variant == "cold":  # a restart: the new writer has not written anything yet
                        recorder.stop()
                        recorder = HistoryRecorder(view, store, config.settings, now=lambda noon=noon: noon)
                    started = time.perf_counter()
                    closed = recorder.close_day(day)
                    samples.append(time.perf_counter() - started)
                    recorder.stop()
                    assert closed == users, (variant, closed)
        finally:
            store.close()
    return {"warm": warm, "cold": cold}


QUERY_ACCOUNTS = 20


@contextmanager
def history_app(url: str):
    """The Flask app (``web.create_app``, no scheduler, no token: loopback admin) on the filled
    store ``url``, with the bench's accounts (``tests.bench.store.account_id``) configured as
    paper accounts so that their histories are visible; its test client."""
    from tests.bench.store import account_id
    from web import close_app, create_app

    with tempfile.TemporaryDirectory(prefix="mb-bench-history-app-") as tmp:
        root = Path(tmp)
        (root / "users").mkdir()
        (root / "settings.json").write_text(json.dumps({"database_url": url}))
        owners: dict[str, dict] = {}
        for i in range(QUERY_ACCOUNTS):
            owner, broker = account_id(i).split(":")
            owners.setdefault(owner, {})[broker] = {"paper": True, "balances": {"USD": "1"}}
        for owner, brokers in owners.items():
            (root / "users" / f"{owner}.json").write_text(json.dumps({"user_id": owner, "brokers": brokers}))
        app = create_app(config_dir=root, environ={})
        try:
            yield app.test_client()
        finally:
            close_app(app)


def _previous_endpoint(store: BalanceStore, account: str, start: dt.datetime, end: dt.datetime) -> bytes:
    """The body as the endpoint built it before `series_body` (Snapshot objects, snapshot_cash,
    a dict per snapshot, json.dumps): the same-machine reference for the figure."""
    from bot.core.timefmt import iso
    from web.payloads import series_json

    snapshots = store.snapshot_history(account, start, end)
    cash = store.snapshot_cash([s.id for s in snapshots])
    body = {"account_id": account, "start_date": iso(start), "end_date": iso(end), "source": None,
            **series_json(snapshots, cash, True, "USD")}
    return json.dumps(body, separators=(",", ":")).encode()


QUERY_VARIANTS = ("api", "previous", "columns", "objects")


def query_runs(url: str, fill, runs: int) -> dict[str, list[float]]:
    """Per run, the median of 30 calls of each variant (interleaved call by call, so that load
    from elsewhere on the machine falls on all of them alike), over 90 days of one account:

    api       ``GET /api/accounts/<id>/balance-history`` through the WSGI app in process (routing,
              auth, parameter checks, the query, the JSON text), body read
    previous  the same body built as the endpoint did before (`_previous_endpoint`)
    columns   ``snapshot_history_columns`` (the endpoint's query: tuples, with the cash)
    objects   ``snapshot_history`` (the Python API: `Snapshot` objects)
    """
    from bot.core.timefmt import iso
    from tests.bench.store import END, account_id

    BalanceStore(url).close()
    fill(QUERY_ACCOUNTS, 90)
    store = BalanceStore(url)
    start = END - dt.timedelta(days=90)
    query = f"?start_date={iso(start)}&end_date={iso(END)}"
    medians: dict[str, list[float]] = {name: [] for name in QUERY_VARIANTS}
    try:
        with history_app(url) as client:
            def api(account):
                response = client.get(f"/api/accounts/{account}/balance-history{query}")
                assert response.status_code == 200, response.status_code
                return response.get_data()

            calls = {"api": api,
                     "previous": lambda account: _previous_endpoint(store, account, start, END),
                     "columns": lambda account: store.snapshot_history_columns(account, start, END),
                     "objects": lambda account: store.snapshot_history(account, start, END)}
            first = account_id(0)
            assert api(first) == _previous_endpoint(store, first, start, END)  # the same bytes
            assert len(store.snapshot_history_columns(first, start, END)) == 8640
            for run in range(runs):
                samples: dict[str, list[float]] = {name: [] for name in QUERY_VARIANTS}
                for i in range(33):
                    account = account_id((run * 7 + i) % QUERY_ACCOUNTS)
                    for name in QUERY_VARIANTS:
                        began = time.perf_counter()
                        result = calls[name](account)
                        elapsed = time.perf_counter() - began
                        del result
                        if i >= 3:
                            samples[name].append(elapsed)
                for name in QUERY_VARIANTS:
                    medians[name].append(statistics.median(samples[name]))
    finally:
        store.close()
    return medians


def report_query(backend: str, medians: dict[str, list[float]]) -> None:
    labels = {"api": "GET /api/accounts/<id>/balance-history, end to end (WSGI in process, 2.5 MB of JSON)",
              "previous": "the same body built as before (Snapshot objects, snapshot_cash, dicts, json.dumps)",
              "columns": "snapshot_history_columns (the endpoint's query: tuples with the cash)",
              "objects": "snapshot_history (Python API: Snapshot objects)"}
    print(f"[history:{backend}] 90-day history of one account (8,640 rows), median of 30 calls per run, "
          f"interleaved:", flush=True)
    for name in QUERY_VARIANTS:
        goal = "" if name == "previous" else f" (goal <= 20 ms: {verdict(medians[name], 0.020)})"
        print(f"      {labels[name]}: {spread(medians[name], 1000, 1)} ms{goal}", flush=True)
    ratio = [a / b for a, b in zip(medians["api"], medians["previous"])]
    print(f"      end to end now / before on this machine: {spread(ratio, digits=2)}", flush=True)


def spread(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    v = sorted(x * scale for x in values)
    return f"{v[0]:.{digits}f} / {statistics.median(v):.{digits}f} / {v[-1]:.{digits}f}"


def verdict(values: list[float], goal: float) -> str:
    return "PASS" if statistics.median(values) <= goal else "FAIL"


def report_rounds(backend: str, accounts: int, results: list[dict]) -> None:
    for name in ("first", "unchanged", "changed"):
        lags = [r[name]["lag"] for r in results]
        closes = [r[name]["closes"] for r in results]
        snaps = [r[name]["snapshots"] for r in results]
        commits = [r[name]["commits"] for r in results]
        line = (f"[history:{backend}] {name} round, {accounts:,} accounts: lag after the round {spread(lags)} s "
                f"(goal <= 1 s: {verdict(lags, 1.0)}); snapshots {spread(snaps, digits=0)}, daily closes "
                f"{spread(closes, digits=0)}, commits {spread(commits, digits=0)}")
        if name == "unchanged":
            nothing = all(c == 0 for c in closes + snaps)
            line += f" (goal 0 closes, 0 snapshots: {'PASS' if nothing else 'FAIL'})"
        print(line, flush=True)


def backends():
    """(name, url context manager, fill(accounts, days)) for SQLite and, if configured, PostgreSQL."""
    from tests.bench.store import fill_postgres, fill_sqlite, throwaway_postgres

    @contextmanager
    def sqlite_url():
        with tempfile.TemporaryDirectory(prefix="mb-bench-history-db-") as tmp:
            url = default_database_url(Path(tmp))
            yield url, lambda a, d: fill_sqlite(make_url(url).database, a, d)

    yield "sqlite", sqlite_url
    admin = os.environ.get("BALANCES_TEST_POSTGRES_URL")
    if admin:
        @contextmanager
        def postgres_url():
            with throwaway_postgres(admin) as url:
                yield url, lambda a, d: fill_postgres(url, a, d)
        yield "postgresql", postgres_url
    else:
        print("[history:postgresql] skipped: BALANCES_TEST_POSTGRES_URL is not set", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.history", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=4000, help="accounts published per second in a round")
    parser.add_argument("--big", type=int, default=20000, help="accounts of the large round")
    parser.add_argument("--only", choices=("rounds", "close", "query"), help="one group of figures")
    args = parser.parse_args(argv)
    print(f"[history] {args.runs} runs per figure (min / median / max); rounds published at {args.rate:.0f} "
          f"accounts/s from one thread", flush=True)
    for backend, make_url_ in backends():
        for accounts in (2000, args.big) if args.only in (None, "rounds") else ():
            results = []
            for _ in range(args.runs):
                with make_url_() as (url, _fill):
                    results.append(writer_round(url, accounts // 2, args.rate))
            report_rounds(backend, accounts, results)
        if args.only in (None, "close"):
            with make_url_() as (url, _fill):
                closes = close_runs(url, 2000, args.runs)
            for variant in ("warm", "cold"):
                print(f"[history:{backend}] midnight close of 2,000 users ({variant}): {spread(closes[variant])} s "
                      f"(goal <= 0.5 s: {verdict(closes[variant], 0.5)})", flush=True)
        if args.only not in (None, "query"):
            continue
        with make_url_() as (url, fill):
            report_query(backend, query_runs(url, fill, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
