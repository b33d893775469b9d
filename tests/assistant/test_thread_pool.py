"""FixedThreadPool: runs work in order on its own threads, and submit never waits on other pools' thread starts."""

from __future__ import annotations

import asyncio
import concurrent.futures.thread as cf_thread
import sys
import threading
import time
from pathlib import Path

import pytest

from assistant.thread_pool import FixedThreadPool


def test_runs_work_and_returns_results_and_exceptions() -> None:
    pool = FixedThreadPool(2, "test")
    try:
        assert pool.submit(lambda a, b=0: a + b, 2, b=3).result(5) == 5
        names = {pool.submit(lambda: threading.current_thread().name).result(5) for _ in range(20)}
        assert names <= {"test_0", "test_1"}
        with pytest.raises(ZeroDivisionError):
            pool.submit(lambda: 1 / 0).result(5)
    finally:
        pool.shutdown()


def test_one_worker_runs_in_submission_order() -> None:
    pool = FixedThreadPool(1, "order")
    seen: list[int] = []
    futures = [pool.submit(seen.append, i) for i in range(100)]
    pool.shutdown(wait=True)
    assert all(f.done() for f in futures)
    assert seen == list(range(100))


def test_shutdown_waits_for_queued_work_then_refuses_new_work() -> None:
    pool = FixedThreadPool(1, "drain")
    gate = threading.Event()
    first = pool.submit(gate.wait, 5)
    second = pool.submit(lambda: "ran")
    threading.Timer(0.05, gate.set).start()
    pool.shutdown(wait=True)
    assert first.result(0) is True and second.result(0) == "ran"
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(lambda: None)


def test_shutdown_can_cancel_queued_work() -> None:
    pool = FixedThreadPool(1, "cancel")
    gate = threading.Event()
    running = pool.submit(gate.wait, 5)
    queued = pool.submit(lambda: "never")
    time.sleep(0.05)
    threading.Timer(0.05, gate.set).start()
    pool.shutdown(wait=True, cancel_futures=True)
    assert running.result(0) is True
    assert queued.cancelled()


def test_submit_does_not_wait_for_another_pool_starting_a_thread() -> None:
    """ThreadPoolExecutor.submit holds an interpreter-wide lock while it starts a thread; ours must not need it."""
    pool = FixedThreadPool(1, "free")
    try:
        with cf_thread._global_shutdown_lock:  # what a ThreadPoolExecutor holds while its new thread starts
            done = threading.Event()

            def submit_from_elsewhere() -> None:
                pool.submit(lambda: None).result(5)
                done.set()

            threading.Thread(target=submit_from_elsewhere).start()
            assert done.wait(5), "submit waited for the lock other pools hold while starting threads"
    finally:
        pool.shutdown()


def test_serves_asyncio_run_in_executor() -> None:
    pool = FixedThreadPool(2, "loop")

    async def main() -> list[int]:
        loop = asyncio.get_running_loop()
        return list(await asyncio.gather(*(loop.run_in_executor(pool, pow, i, 2) for i in range(10))))

    try:
        assert asyncio.run(main()) == [i * i for i in range(10)]
    finally:
        pool.shutdown()


def test_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        FixedThreadPool(0, "none")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="native thread names are read from /proc (Linux)")
def test_its_threads_carry_the_pool_name_in_the_os() -> None:
    """/proc/<pid>/task/<tid>/comm shows the pool's thread name (15 bytes), so a profiler or the bench can tell the threads apart."""
    pool = FixedThreadPool(1, "deployments-core")
    try:
        tid = pool.submit(lambda: threading.get_native_id()).result(5)
        assert Path(f"/proc/self/task/{tid}/comm").read_text().strip() == "deployments-cor"
    finally:
        pool.shutdown()
