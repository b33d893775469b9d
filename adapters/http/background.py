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

from assistant import outbox
from assistant.callbacks import KIND as CALLBACK_KIND
from assistant.callbacks import register_callbacks
from assistant.outbox_worker import OutboxWorker, WorkerOptions

__all__ = ["EXPIRY_TICK_S", "install_outbox"]

EXPIRY_TICK_S = 1.0  # how late a request may be marked expired, at most


def install_outbox(app: FastAPI, *, options: WorkerOptions | None = None) -> OutboxWorker:
    """Run the outbox worker in the app's lifespan with the core's handlers, and expire due requests every tick.

    Call after ``create_app``. The callback handler is registered while the
    app runs; the chat adapters register theirs in their own lifespans (the
    worker looks handlers up on every claim).
    ``options`` default to the GITOPS_HEALTH_OUTBOX_* variables (ValueError
    naming the variable on a bad one).
    """
    db = app.state.db
    worker = OutboxWorker(db, options=options or WorkerOptions.from_env())

    async def expire() -> None:
        # The approval workflow is built in the deployments router's lifespan; look it up on each tick.
        approvals = getattr(app.state, "approvals", None)
        if approvals is not None:
            await asyncio.to_thread(approvals.expire_due)

    worker.every(EXPIRY_TICK_S, "expire_due", expire)

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(running_app: Any) -> AsyncIterator[Any]:
        # Inside the other lifespans: the workflow exists before the first tick and is closed after the last job.
        async with inner(running_app) as state:
            sender = register_callbacks(db, app.state.settings)
            await worker.start()
            try:
                yield state
            finally:
                await worker.stop()
                outbox.unregister(CALLBACK_KIND, sender)

    app.router.lifespan_context = lifespan
    app.state.outbox = worker
    return worker
