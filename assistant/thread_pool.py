"""A fixed pool of threads for the server's blocking calls, whose `submit` never waits on other pools.

`concurrent.futures.ThreadPoolExecutor.submit` holds an interpreter-wide lock
while it starts a thread, and starting one waits until the new thread gets
the GIL. LangGraph builds a fresh ThreadPoolExecutor for every graph run (two
per deploy request), so under load the event loop's own `run_in_executor`
calls queued behind those thread starts, and Slack acks waited with them.
This pool starts its threads once, feeds them through one queue and takes
only its own lock in `submit`, so handing work to it costs the loop
microseconds whatever other pools are doing.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

__all__ = ["FixedThreadPool"]

T = TypeVar("T")

_Item = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class FixedThreadPool(Executor):
    """`workers` threads started now, taking work in submission order until `shutdown`.

    The threads are daemons so a pool nobody shut down (a test app whose
    lifespan never ran) cannot hold the interpreter open; servers call
    `shutdown(wait=True)` so work already submitted finishes first.
    """

    def __init__(self, workers: int, name: str) -> None:
        if workers < 1:
            raise ValueError(f"a thread pool needs at least one worker thread (got {workers})")
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._threads = [threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown (the server is stopping)")
            self._queue.put((future, fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                if cancel_futures:
                    self._cancel_queued()
                for _ in self._threads:
                    self._queue.put(None)  # after all work already queued: it still runs
        if wait:
            me = threading.current_thread()
            for thread in self._threads:
                if thread is not me:
                    thread.join()

    def _cancel_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item[0].cancel()

    def _work(self) -> None:
        _name_native_thread(threading.current_thread().name)
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever awaits the future
                future.set_exception(exc)
            else:
                future.set_result(result)
            del item, future, fn, args, kwargs  # drop references before waiting for the next item


def _name_native_thread(name: str) -> None:
    """Give the OS thread the pool's name (Linux keeps 15 bytes), so /proc/<pid>/task/*/comm, top -H and
    bench/approvals.py can tell the server's threads apart (Python < 3.14 leaves them all named after the
    process). Best effort: elsewhere, or without libc, nothing happens."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).prctl(_PR_SET_NAME, name.encode("utf-8", "replace")[:15], 0, 0, 0)
    except (OSError, AttributeError):
        return


_PR_SET_NAME = 15
