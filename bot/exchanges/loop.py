"""`FetchLoop`: the one asyncio event loop all exchange I/O runs on, in its own daemon thread.

Started lazily by the first `submit` / `call_soon`. `close(timeout, shutdown)` cancels every task
in flight, awaits ``shutdown()`` (closing sessions), stops the loop and joins the thread, all
within ``timeout`` seconds; later submissions raise `LoopClosed`. Thread-safe: ``_lock`` guards
``_loop``, ``_thread`` and ``_closed``; everything that runs on the loop is loop-only.
"""
from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from typing import Awaitable, Callable, Coroutine

log = logging.getLogger(__name__)


class LoopClosed(RuntimeError):
    """Work was submitted to a closed fetch loop."""


class FetchLoop:
    def __init__(self, name: str = "balance-fetch"):
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise LoopClosed("the fetch loop is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(target=self._run, args=(loop, ready), name=self._name, daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def in_loop(self) -> bool:
        """True on the loop's own thread."""
        return self._thread is not None and threading.current_thread() is self._thread

    def submit(self, coro: Coroutine) -> Future:
        """Run ``coro`` on the loop; its result as a `concurrent.futures.Future`."""
        try:
            loop = self._ensure()
        except LoopClosed:
            coro.close()
            raise
        return asyncio.run_coroutine_threadsafe(coro, loop)

    def call_soon(self, callback: Callable, *args) -> None:
        """Call ``callback(*args)`` on the loop thread."""
        self._ensure().call_soon_threadsafe(callback, *args)

    def close(self, timeout: float = 5.0, shutdown: Callable[[], Awaitable] | None = None) -> None:
        """Cancel the tasks in flight, await ``shutdown()``, stop the loop, join the thread."""
        with self._lock:
            self._closed = True
            loop, thread = self._loop, self._thread
            self._loop = None  # idempotent: a second close finds nothing to stop
        if loop is None or thread is None:
            return
        if threading.current_thread() is thread:
            raise RuntimeError("FetchLoop.close() called from the loop's own thread")
        done = asyncio.run_coroutine_threadsafe(self._shutdown(shutdown, timeout * 0.6), loop)
        try:
            done.result(timeout)
        except Exception as exc:  # a failing or slow shutdown must not keep the thread alive
            log.warning("fetch loop shutdown incomplete: %s", type(exc).__name__)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)

    @staticmethod
    async def _shutdown(shutdown, wait: float) -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=wait)
        if shutdown is not None:
            await asyncio.wait_for(shutdown(), timeout=max(0.5, wait))
