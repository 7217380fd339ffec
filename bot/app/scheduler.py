"""The background jobs (APScheduler ``BackgroundScheduler``), started explicitly.

The scheduler is handed callables, not the manager: ``refresh()`` (a forced round),
``log_balances()`` and the history ``recorder`` (midnight close, pruning) when history is on.

Jobs: refresh every account every ``cache_ttl_seconds`` (scheduled_sync), ``log_all_balances``
hourly, the daily close at midnight in ``settings.timezone``, and retention pruning once a day.
No job overlaps itself (``max_instances=1``, ``coalesce=True``); an exception is logged by
APScheduler and the job runs again at its next time; ``shutdown`` waits for running jobs.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)

JOB_DEFAULTS = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 300}


class BalanceScheduler:
    def __init__(self, settings, refresh: Callable[[], object], log_balances: Callable[[], None], recorder=None):
        self._refresh = refresh
        self._log_balances = log_balances
        self._recorder = recorder
        self._settings = settings
        self._scheduler = BackgroundScheduler(timezone=settings.timezone, job_defaults=JOB_DEFAULTS)

    @property
    def running(self) -> bool:
        return self._scheduler.running

    def jobs(self) -> dict[str, dt.datetime | None]:
        """Job id → next run time (for health checks)."""
        return {job.id: job.next_run_time for job in self._scheduler.get_jobs()}

    def start(self) -> None:
        s, add = self._settings, self._scheduler.add_job
        add(self._refresh, IntervalTrigger(seconds=s.cache_ttl_seconds), id="refresh",
            next_run_time=dt.datetime.now(dt.timezone.utc))
        add(self._log_balances, IntervalTrigger(hours=1), id="log_balances")
        if self._recorder is not None:
            add(self._close_yesterday, CronTrigger(hour=0, minute=0, timezone=s.timezone), id="daily_close")
            add(self._recorder.prune, CronTrigger(hour=0, minute=30, timezone=s.timezone), id="prune",
                kwargs={"retention_days": s.retention_days})
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def _close_yesterday(self) -> None:
        day = self._recorder.today() - dt.timedelta(days=1)
        closed = self._recorder.close_day(day)
        log.info("daily close of %s: %d users finalised", day.isoformat(), closed)
