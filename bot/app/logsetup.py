"""Logging and version options shared by every entry point.

`add_common_options(parser, default_level)` adds ``--log-level`` (debug | info | warning | error),
``--log-format`` (text | json) and ``--version``; `configure_logging(args)` installs one stderr
handler accordingly. JSON lines carry ``time`` (RFC 3339, UTC), ``level``, ``logger``,
``message`` and, for an exception, ``exception`` (its traceback text). Migrations, scheduler
and task-queue job runs (alembic, apscheduler, procrastinate) log at WARNING and above whatever the level, so a start is quiet.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import threading
import time

import bot
from bot.core.secrets import install_log_redaction

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LOGGERS = ("alembic", "apscheduler", "procrastinate")


class JsonFormatter(logging.Formatter):
    """One JSON object per record (no secret is added here: records are already redacted)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class AtMostEvery(logging.Filter):
    """Lets at most one record through per ``seconds`` (by ``clock``); the first one after a quiet
    spell says how many were held back. For a logger that repeats itself under load (waitress's
    "Task queue depth" once per queued request). ``_lock`` guards ``_next`` and ``_held``."""

    def __init__(self, seconds: float, clock=time.monotonic):
        super().__init__()
        self._seconds, self._clock = seconds, clock
        self._lock = threading.Lock()
        self._next, self._held = float("-inf"), 0

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        with self._lock:
            if now < self._next:
                self._held += 1
                return False
            held, self._held, self._next = self._held, 0, now + self._seconds
        if held:
            record.msg = f"{record.msg} ({held} more not shown since the last one)"
        return True


def add_common_options(parser: argparse.ArgumentParser, default_level: str = "info") -> None:
    parser.add_argument("--log-level", choices=LEVELS, default=default_level,
                        help=f"least severe log records written to stderr (default {default_level})")
    parser.add_argument("--log-format", choices=FORMATS, default="text",
                        help="text lines, or one JSON object per line (default text)")
    parser.add_argument("--version", action="version", version=f"%(prog)s (multibalance) {bot.__version__}")


def configure_logging(args: argparse.Namespace) -> None:
    """Install one stderr handler on the root logger for ``args``' level and format (replacing the
    one an earlier call installed; handlers others installed, e.g. a test harness's, stay), and
    the filter that keeps URL paths out of urllib3's debug lines (`install_log_redaction`)."""
    install_log_redaction()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if args.log_format == "json" else logging.Formatter(TEXT_FORMAT))
    handler._multibalance = True
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_multibalance", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, args.log_level.upper()))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
