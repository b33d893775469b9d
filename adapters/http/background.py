"""The server's background work: the outbox worker (callbacks, chat cards) and the expiry tick, tied to the app's lifespan.

The worker starts when the server starts serving and stops after it stops
accepting requests: running handlers get ``stop_timeout_s`` to finish, and
jobs cut short are handed back so the next start (or another replica) runs
them at once. A crash skips all that and the lease brings the jobs back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from assistant.callbacks import register_callbacks
from assistant.outbox_worker import OutboxWorker, WorkerOptions

__all__ = ["EXPIRY_TICK_S", "install_outbox"]

EXPIRY_TICK_S = 1.0  # how late a request may be marked expired, at most


def install_outbox(app: FastAPI, *, options: WorkerOptions | None = None) -> OutboxWorker:
    """Register the core's handlers, run the worker in the app's lifespan, expire due requests every tick.

    Call after ``create_app`` (and after the chat adapters registered their
    handlers, or before: the worker looks handlers up on every claim).
    ``options`` default to the GITOPS_HEALTH_OUTBOX_* variables (ValueError
    naming the variable on a bad one).
    """
    db = app.state.db
    register_callbacks(db, app.state.settings)
    worker = OutboxWorker(db, options=options or WorkerOptions.from_env())
    approvals = getattr(app.state, "approvals", None)
    if approvals is not None:

        async def expire() -> None:
            await asyncio.to_thread(approvals.expire_due)

        worker.every(EXPIRY_TICK_S, "expire_due", expire)

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running_app: Any) -> AsyncIterator[Any]:
        await worker.start()
        try:
            async with inner(running_app) as state:
                yield state
        finally:
            await worker.stop()

    app.router.lifespan_context = lifespan
    app.state.outbox = worker
    return worker
