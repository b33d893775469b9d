"""Outbox workers racing for one database: each in its own thread, event loop and engine, like separate processes.

Used by the chat notifiers' race tests: each worker builds its own handlers
(its own HTTP client, its own notifier) in its own loop, then polls the shared
database through its own connection pool, exactly as a second `serve` worker
or a replica would. Nothing is shared between the workers but the database
and the chat server they post to.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select

__all__ = ["jobs_left", "racing_workers"]

MakeHandlers = Callable[[Any], Awaitable[dict[str, Any]]]


def jobs_left(db: Any) -> int:
    """Jobs not yet finished (waiting or running)."""
    from assistant.storage.outbox_tables import outbox_jobs

    with db.read() as session:
        return int(session.execute(select(func.count()).where(outbox_jobs.c.status.in_(("pending", "running")))).scalar_one())


def racing_workers(
    url: str,
    make_handlers: MakeHandlers,
    *,
    count: int = 2,
    options: Any = None,
    until: Callable[[], bool],
    timeout: float = 60.0,
    delay: Callable[[], Awaitable[None]] | None = None,
) -> list[str]:
    """Run ``count`` outbox workers on ``url`` until ``until()`` holds; returns their worker ids.

    ``delay`` (awaited before each handler) widens the window between a claim
    and the handler's first write, where a race would show.
    """
    from assistant.outbox_worker import OutboxWorker, WorkerOptions
    from assistant.storage import Database

    options = options or WorkerOptions(poll_s=0.02, concurrency=3, backoff_base_s=0.01, backoff_max_s=0.05, wake_delay_s=0.0)
    stop = threading.Event()
    errors: list[BaseException] = []
    ids = [f"racer-{n}" for n in range(count)]

    def slowed(handler: Any) -> Any:
        if delay is None:
            return handler

        async def run(job: Any) -> None:
            await delay()
            await handler(job)

        return run

    def one(worker_id: str) -> None:
        db = Database(url)
        loop = asyncio.new_event_loop()
        try:
            async def main() -> None:
                handlers = {kind: slowed(h) for kind, h in (await make_handlers(db)).items()}
                worker = OutboxWorker(db, handlers=handlers, options=options, worker_id=worker_id)
                await worker.start()
                try:
                    while not stop.is_set():
                        await asyncio.sleep(0.01)
                finally:
                    await worker.stop()

            loop.run_until_complete(main())
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)
        finally:
            loop.close()
            db.dispose()

    threads = [threading.Thread(target=one, args=(worker_id,), name=worker_id, daemon=True) for worker_id in ids]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not until():
            if errors:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the racing workers did not finish within {timeout}s")
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    if errors:
        raise errors[0]
    return ids
