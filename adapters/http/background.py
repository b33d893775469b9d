"""The server's background work: the outbox worker (callbacks, chat cards) and the expiry tick, tied to the app's lifespan.

The worker starts when the server starts serving and stops after it stops
accepting requests: running handlers get ``stop_timeout_s`` to finish, and
jobs cut short are handed back so the next start (or another replica) runs
them at once. A crash skips all that and the lease brings the jobs back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from assistant import outbox
from assistant.callbacks import KIND as CALLBACK_KIND
from assistant.callbacks import register_callbacks
from assistant.outbox_worker import OutboxWorker, WorkerOptions

__all__ = ["EXPIRY_TICK_S", "OutboxCollector", "install_outbox"]

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
    metrics = getattr(app.state, "metrics", None)
    if metrics is not None:
        metrics.add_collector(OutboxCollector(db))
    return worker


class OutboxCollector:
    """Prometheus gauges read from the outbox table at scrape time, so every replica reports the shared queue.

    ``gitops_health_outbox_jobs{kind,status}``: jobs waiting, running or
    failed; ``gitops_health_outbox_oldest_due_seconds{kind}``: how long the
    oldest due job has waited (a callback stuck on a down CI, or a kind no
    process has a handler for, shows here). Labels: job kinds (a closed set)
    and statuses only.
    """

    def __init__(self, db: Any) -> None:
        self.db = db

    def describe(self) -> list[Any]:
        return []  # collected lazily; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily
        from sqlalchemy import func, select

        from assistant import clock
        from assistant.storage.outbox_tables import outbox_jobs

        c = outbox_jobs.c
        now = clock.now().timestamp()
        jobs = GaugeMetricFamily("gitops_health_outbox_jobs", "Outbox jobs waiting, running or failed, by kind.", labels=("kind", "status"))
        late = GaugeMetricFamily("gitops_health_outbox_oldest_due_seconds", "Seconds the oldest due outbox job has waited, by kind.", labels=("kind",))
        try:
            with self.db.read() as session:
                counts = session.execute(
                    select(c.kind, c.status, func.count()).where(c.status.in_(("pending", "running", "failed"))).group_by(c.kind, c.status)
                ).all()
                oldest = session.execute(
                    select(c.kind, func.min(c.run_at)).where(c.status == "pending", c.run_at <= now).group_by(c.kind)
                ).all()
        except Exception:  # noqa: BLE001 - /readyz reports the database; metrics must still answer
            return
        for kind, status, count in counts:
            jobs.add_metric((kind, status), count)
        for kind, first in oldest:
            late.add_metric((kind,), max(0.0, now - first))
        yield jobs
        yield late
