"""Alert evaluation cost versus the refresh it follows (goal: <= 5 % of the refresh's CPU time).

    python -m tests.bench.alerts [ACCOUNTS]   (default 5000)

A fake Kraken runs in its own process (`fake_process`), so this process's CPU time is the
client's only. ACCOUNTS accounts (two per user, so user totals are evaluated too) are read by a
manager (no history: the store's writes are another cost); after a cold refresh:

1. refresh CPU: `time.process_time()` over a forced warm refresh, median of 3, no monitoring;
2. evaluation CPU: the refresh's states fed to the rules engine (`AlertEngine.observe`, what the
   monitoring worker runs) on this thread, `time.thread_time()`, median of 20 rounds each, for a
   steady round (values unchanged: no alert) and a churning one (every value moves by up to
   ±15 % and a tenth of the accounts cross the LOW threshold each round, so alerts fire, repeat
   and resolve), with LOW, DROP (60-min window, one read every 2 minutes) and ACCOUNT_ERROR on;
3. listener CPU on the fetch loop: the enqueue of one (state, time) per read;
4. in place: a `MonitoringSystem` attached to the manager, the CPU time of its worker thread
   (``pthread_getcpuclockid``) over a forced refresh and its flush: the real evaluation of the
   real reads, in the real thread (values unchanged, so the steady case).
"""
from __future__ import annotations

import dataclasses
import queue
import random
import statistics
import sys
import time
from decimal import Decimal

from tests.bench.common import fake_process, write_kraken_config

NO_SPACING = {"rate_limits": {"kraken": {"min_interval_seconds": 0, "public_min_interval_seconds": 0}}}
ALERTS = {"low_balance": 500, "drop_percent": 10, "drop_window_minutes": 60, "cooldown_minutes": 30,
          "error_reads": 3}


def cpu_of(call) -> float:
    start = time.process_time()
    call()
    return time.process_time() - start


def evaluation_rounds(engine, states, churn: bool, rounds: int = 20) -> list[float]:
    rng = random.Random(7)
    now = time.time()
    samples = []
    for r in range(rounds):
        now += 120
        if churn:
            batch = []
            for i, state in enumerate(states):
                factor = Decimal(rng.randint(85, 115)) / 100
                if (i + r) % 10 == 0:
                    factor = Decimal("0.5")          # crosses LOW (600 -> 300) and DROP
                batch.append(dataclasses.replace(state, value=state.value * factor))
        else:
            batch = states
        observe = engine.observe
        start = time.thread_time()
        for state in batch:
            observe(state, now)
        samples.append(time.thread_time() - start)
    return samples


def main(argv: list[str]) -> int:
    from bot.core.state import Status
    from bot.alerts.rules import AlertEngine
    from bot.config.alerts import parse_alert_settings
    from bot.config import load_config
    from bot.monitoring_system import MonitoringSystem
    from bot.multi_account_broker_manager import MultiAccountBrokerManager

    accounts = int(argv[0]) if argv else 5000
    with fake_process("kraken", latency=0.001) as url, \
            write_kraken_config(url, accounts, {**NO_SPACING, "alerts": ALERTS}, brokers_per_user=2) as root:
        config = load_config(root)
        manager = MultiAccountBrokerManager(config, history=False)
        try:
            manager.refresh(force=False)                      # cold: markets, first reads
            refresh = statistics.median(cpu_of(lambda: manager.refresh(force=True)) for _ in range(3))
            states = manager.current_states()
            ok = sum(s.status is Status.OK for s in states)

            owners: dict[str, list[str]] = {}
            for state in states:
                owners.setdefault(state.owner, []).append(state.account_id)
            settings = parse_alert_settings(ALERTS, {}, root)
            steady = statistics.median(evaluation_rounds(AlertEngine(settings, owners, "USD"), states, churn=False))
            churn_engine = AlertEngine(settings, owners, "USD")
            churn = statistics.median(evaluation_rounds(churn_engine, states, churn=True))

            q = queue.SimpleQueue()
            start = time.thread_time()
            for state in states:
                q.put((state, time.time()))
            enqueue = time.thread_time() - start

            monitoring = MonitoringSystem(manager)
            manager.refresh(force=True)                       # first evaluation: windows created
            monitoring.flush()
            worker = time.pthread_getcpuclockid(monitoring._thread.ident)
            in_place = []
            for _ in range(3):
                before = time.clock_gettime(worker)
                manager.refresh(force=True)
                monitoring.flush()
                in_place.append(time.clock_gettime(worker) - before)
            in_place = statistics.median(in_place)
        finally:
            manager.close()

    print(f"alerts: {accounts} accounts ({ok} ok, {len(owners)} users), one forced refresh = "
          f"{refresh * 1000:.0f} ms CPU (client process, fake exchange in another process)")
    print(f"alerts: evaluation per refresh: steady {steady * 1000:.1f} ms CPU = {steady / refresh * 100:.2f} % "
          f"of the refresh; churning (alerts firing/resolving) {churn * 1000:.1f} ms = "
          f"{churn / refresh * 100:.2f} %  (goal <= 5 %)")
    print(f"alerts: listener enqueue on the fetch loop: {enqueue * 1000:.1f} ms per refresh "
          f"({enqueue / len(states) * 1e6:.2f} µs per read) = {enqueue / refresh * 100:.2f} %; in place, the "
          f"monitoring worker thread used {in_place * 1000:.1f} ms CPU per refresh = {in_place / refresh * 100:.2f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
