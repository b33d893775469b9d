"""The outbox worker: claims due jobs, runs their handlers, retries with backoff, survives crashes.

Claiming sets a job ``running`` with a lease (``lease_until``) and records
the attempt, in one transaction; claims take turns across processes
(Postgres: an advisory lock held to the commit; SQLite: the single writer),
so replicas never claim the same job, and never two jobs of one family about
the same thing (same payload) at once -- a card post and a card update of one
request in two processes would both post a card. While a handler runs, a heartbeat extends the lease. A worker that
is killed (``kill -9``) or stalls stops extending it; once it runs out any
worker claims the job again and marks the cut-short attempt ``lost``. Every
write after a handler is fenced on (claimed_by, attempts), so a stalled
worker that wakes up late cannot overwrite the newer run's outcome.

Failures retry until success with exponential backoff and full jitter
(delay = uniform(0, min(cap, base * 2**(attempt-1)))), which spreads the
retries of many jobs that failed together instead of hammering a receiver
that has just come back. A handler raises :class:`~assistant.outbox.RetryLater`
to name its own delay, :class:`~assistant.outbox.GiveUp` when retrying
cannot help.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Double, and_, bindparam, delete, exists, func, insert, or_, select, text, update
from sqlalchemy.orm import Session

from assistant import clock
from assistant.outbox import GiveUp, Handler, Job, RetryLater, add_waker, handlers as registered_handlers, remove_waker, utc
from assistant.storage import Database
from assistant.storage.outbox_tables import outbox_attempts, outbox_jobs
from assistant.thread_pool import FixedThreadPool

__all__ = ["OutboxWorker", "WorkerOptions", "backoff_delay"]

MAX_ERROR_CHARS = 2000
PURGE_EVERY_S = 600.0
PURGE_BATCH = 5000


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    lease_s: float = 30.0  # a crashed worker's job is claimable again this long after its last heartbeat
    poll_s: float = 0.5  # how often other processes' jobs and due retries are looked for
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    concurrency: int = 8  # handlers running at once
    handler_timeout_s: float = 300.0  # a handler still running after this is cancelled and its job retried
    stop_timeout_s: float = 10.0  # how long stop() lets running handlers finish before handing their jobs back
    wake_delay_s: float = 0.02  # after a wake-up, wait this long so a burst of commits is claimed together
    retain_days: float = 7.0  # finished jobs (and their attempts) are purged this long after they finished; failed ones stay

    ENV = {
        "lease_s": "GITOPS_HEALTH_OUTBOX_LEASE_SECONDS",
        "poll_s": "GITOPS_HEALTH_OUTBOX_POLL_SECONDS",
        "backoff_base_s": "GITOPS_HEALTH_OUTBOX_BACKOFF_BASE_SECONDS",
        "backoff_max_s": "GITOPS_HEALTH_OUTBOX_BACKOFF_MAX_SECONDS",
        "concurrency": "GITOPS_HEALTH_OUTBOX_CONCURRENCY",
        "retain_days": "GITOPS_HEALTH_OUTBOX_RETAIN_DAYS",
    }

    def __post_init__(self) -> None:
        if not isinstance(self.wake_delay_s, (int, float)) or self.wake_delay_s < 0:
            raise ValueError(f"outbox option wake_delay_s must be zero or a positive number of seconds, not {self.wake_delay_s!r}")
        for name in ("lease_s", "poll_s", "backoff_base_s", "backoff_max_s", "handler_timeout_s", "stop_timeout_s", "retain_days"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not value > 0:
                unit = "days" if name == "retain_days" else "seconds"
                raise ValueError(f"outbox option {name} must be a positive number of {unit}, not {value!r}")
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("outbox backoff maximum must be at least the backoff base")
        if not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise ValueError(f"outbox concurrency must be a whole number >= 1, not {self.concurrency!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerOptions:
        """Options from GITOPS_HEALTH_OUTBOX_* variables; ValueError naming the variable on a bad value."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, var in cls.ENV.items():
            raw = env.get(var, "").strip()
            if not raw:
                continue
            try:
                values[name] = int(raw) if name == "concurrency" else float(raw)
            except ValueError:
                kind = "a whole number" if name == "concurrency" else "a number of days" if name == "retain_days" else "a number of seconds"
                raise ValueError(f"{var}: {raw!r} is not {kind}") from None
        try:
            return cls(**values)
        except ValueError as exc:
            names = ", ".join(cls.ENV[n] for n in values) or "defaults"
            raise ValueError(f"{names}: {exc}") from None


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full jitter: a uniform delay up to the exponential ceiling for this attempt (1-based)."""
    ceiling = min(cap, base * 2 ** min(max(attempt - 1, 0), 62))
    return (rng or random).uniform(0, ceiling)


@dataclass(frozen=True, slots=True)
class _Outcome:
    job: Job
    outcome: str  # ok | retry | failed
    error: str | None
    delay: float | None


@dataclass(slots=True)
class _Periodic:
    name: str
    interval_s: float
    fn: Callable[[], Awaitable[None]]
    next_at: float = 0.0
    task: asyncio.Task[None] | None = None


class OutboxWorker:
    """Runs outbox jobs in this process; start()/stop() from the server's lifespan, or run_once() in tests."""

    def __init__(
        self,
        db: Database,
        *,
        options: WorkerOptions | None = None,
        handlers: Mapping[str, Handler] | None = None,
        worker_id: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self.options = options or WorkerOptions()
        self._fixed_handlers = dict(handlers) if handlers is not None else None
        self.worker_id = worker_id or f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._rng = rng or random.Random()
        self._tasks: set[asyncio.Task[None]] = set()
        self._periodic: list[_Periodic] = []
        self._loop_task: asyncio.Task[None] | None = None
        self._wake_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._executor: FixedThreadPool | None = None
        self._finish_queue: list[tuple[_Outcome, asyncio.Future[None]]] = []
        self._flushing = False
        self.every(PURGE_EVERY_S, "purge_finished", self._purge_async)
        from assistant.logging import get_logger

        self._log = get_logger("gitops_health.outbox")

    # ------------------------------------------------------------------ public

    @property
    def running(self) -> bool:
        return self._loop_task is not None

    def handlers(self) -> dict[str, Handler]:
        return dict(self._fixed_handlers) if self._fixed_handlers is not None else registered_handlers()

    def every(self, interval_s: float, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        """Run ``fn`` every ``interval_s`` seconds while the worker runs (never two runs of it at once)."""
        if not interval_s > 0:
            raise ValueError(f"periodic task {name!r}: interval must be positive, not {interval_s!r}")
        self._periodic.append(_Periodic(name, float(interval_s), fn))

    async def run_once(self, limit: int = 100) -> int:
        """Claim up to ``limit`` jobs due now, run them (``concurrency`` at a time), return how many ran."""
        jobs = await self._db(self._claim, limit)
        if not jobs:
            return 0
        gate = asyncio.Semaphore(self.options.concurrency)

        async def gated(job: Job) -> None:
            async with gate:
                await self._run(job)

        await asyncio.gather(*(gated(job) for job in jobs))
        return len(jobs)

    async def drain(self, max_rounds: int = 100) -> int:
        """run_once() until nothing is due now; returns the total run (a test helper: due retries run too)."""
        total = 0
        for _ in range(max_rounds):
            ran = await self.run_once()
            if not ran:
                break
            total += ran
        return total

    async def purge(self) -> int:
        """Delete jobs finished (done or superseded) more than retain_days ago, with their attempts; how many."""
        return await self._db(self._purge)

    async def _purge_async(self) -> None:
        purged = await self.purge()
        if purged:
            self._log.info("outbox_purged", jobs=purged, older_than_days=self.options.retain_days)

    async def run_periodic_once(self) -> None:
        """Run every periodic task once, now (tests)."""
        for periodic in self._periodic:
            await self._run_periodic(periodic)

    async def start(self) -> None:
        """Start polling in the running event loop; returns at once."""
        if self._loop_task is not None:
            return
        self._stopping = False
        self._loop = asyncio.get_running_loop()
        self._wake_event = asyncio.Event()
        add_waker(self.wake)
        self._loop_task = asyncio.create_task(self._main(), name=f"outbox-worker {self.worker_id}")
        self._log.info("outbox_worker_started", worker=self.worker_id, kinds=sorted(self.handlers()))

    async def stop(self) -> None:
        """Stop claiming; let running handlers finish (up to stop_timeout_s), hand unfinished jobs back."""
        if self._loop_task is None:
            return
        self._stopping = True
        remove_waker(self.wake)
        self.wake()
        await self._loop_task
        self._loop_task = None
        running = set(self._tasks) | {p.task for p in self._periodic if p.task is not None and not p.task.done()}
        if running:
            _done, pending = await asyncio.wait(running, timeout=self.options.stop_timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        released = await self._db(self._release_mine)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
        self._log.info("outbox_worker_stopped", worker=self.worker_id, handed_back=released)

    def wake(self) -> None:
        """Thread-safe: look for due jobs now instead of at the next poll."""
        loop, event = self._loop, self._wake_event
        if loop is None or event is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(event.set)
        except RuntimeError:  # the loop closed meanwhile
            pass

    # ------------------------------------------------------------------ the loop

    async def _main(self) -> None:
        assert self._wake_event is not None
        while not self._stopping:
            claimed = 0
            free = self.options.concurrency - len(self._tasks)
            if free > 0:
                try:
                    jobs = await self._db(self._claim, free)
                except Exception as exc:  # noqa: BLE001 - the database may be briefly away; keep polling
                    self._log.warning("outbox_claim_failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")
                    jobs = []
                claimed = len(jobs)
                for job in jobs:
                    task = asyncio.create_task(self._run(job), name=f"outbox {job.kind} #{job.id}")
                    self._tasks.add(task)
                    task.add_done_callback(self._job_finished)
            now = time.monotonic()
            for periodic in self._periodic:
                if periodic.next_at <= now and (periodic.task is None or periodic.task.done()):
                    periodic.next_at = now + periodic.interval_s
                    periodic.task = asyncio.create_task(self._run_periodic(periodic), name=f"outbox periodic {periodic.name}")
            if claimed and claimed == free:
                continue  # more may be due
            timeout = self.options.poll_s
            if self._periodic:
                timeout = max(0.0, min(timeout, min(p.next_at for p in self._periodic) - time.monotonic()))
            try:
                await asyncio.wait_for(self._wake_event.wait(), timeout)
            except TimeoutError:
                pass
            else:
                # Woken by a commit: let the commits of the next moment join this claim (one transaction
                # for a burst of clicks, and more card updates coalesced by their dedupe key).
                await asyncio.sleep(self.options.wake_delay_s)
            self._wake_event.clear()

    def _job_finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._wake_event is not None and not self._stopping:
            self._wake_event.set()  # a slot is free

    async def _run_periodic(self, periodic: _Periodic) -> None:
        try:
            await periodic.fn()
        except Exception as exc:  # noqa: BLE001 - a failing tick must not stop the worker
            self._log.warning("outbox_periodic_failed", task=periodic.name, error=f"{type(exc).__name__}: {str(exc)[:300]}")

    # ------------------------------------------------------------------ one job

    async def _run(self, job: Job) -> None:
        handler = self.handlers().get(job.kind)
        outcome, error, delay = "ok", None, None
        heartbeat = asyncio.create_task(self._heartbeat(job))
        started = time.monotonic()
        try:
            if handler is None:
                raise RetryLater(f"no handler for {job.kind!r} in this process any more")
            await asyncio.wait_for(handler(job), self.options.handler_timeout_s)
        except TimeoutError as exc:
            if time.monotonic() - started >= self.options.handler_timeout_s:
                outcome, error = "retry", f"the handler did not finish within {self.options.handler_timeout_s:g} s; cancelled"
            else:  # the handler's own timeout, not ours
                outcome, error = "retry", f"TimeoutError: {exc}"
        except RetryLater as exc:
            outcome, error, delay = "retry", exc.reason, exc.delay
        except GiveUp as exc:
            outcome, error = "failed", exc.reason
        except asyncio.CancelledError:
            heartbeat.cancel()
            raise  # stop() hands the job back
        except Exception as exc:  # noqa: BLE001 - any handler failure is retried
            outcome, error = "retry", f"{type(exc).__name__}: {exc}"
        finally:
            heartbeat.cancel()
        if delay is None and outcome == "retry":
            delay = backoff_delay(job.attempt, self.options.backoff_base_s, self.options.backoff_max_s, self._rng)
        if error is not None:
            error = _clean_error(error)
        try:
            await self._finish_batched(_Outcome(job, outcome, error, delay))
        except Exception as exc:  # noqa: BLE001 - the lease runs out and the job is retried
            self._log.warning("outbox_finish_failed", job=job.id, kind=job.kind, error=f"{type(exc).__name__}: {str(exc)[:300]}")
            return
        if outcome == "ok":
            # Debug: at a few hundred cards a second an info line per job cost more CPU than the claim and the
            # finish together (~0.3 ms); retries and failures stay warnings, and every attempt is in outbox_attempts.
            self._log.debug("outbox_job_done", job=job.id, kind=job.kind, attempt=job.attempt)
        elif outcome == "retry":
            self._log.warning("outbox_job_retry", job=job.id, kind=job.kind, attempt=job.attempt, retry_in_s=round(delay or 0, 3), error=error)
        else:
            self._log.error("outbox_job_failed", job=job.id, kind=job.kind, attempt=job.attempt, error=error)

    async def _heartbeat(self, job: Job) -> None:
        interval = self.options.lease_s / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._db(self._extend_lease, job)
            except Exception as exc:  # noqa: BLE001 - keep trying; the lease may still hold
                self._log.warning("outbox_heartbeat_failed", job=job.id, error=f"{type(exc).__name__}: {str(exc)[:300]}")

    # ------------------------------------------------------------------ database (run in threads)
    # The worker's transactions run on threads of its own: on SQLite exactly one
    # (the single writer: its claims, heartbeats and finishes never wait on each
    # other's lock, where SQLite's busy handler would sleep up to 100 ms per
    # retry); on Postgres a few. Outcomes of handlers that finish together are
    # written in one transaction.

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._executor is None:
            workers = 1 if self.db.dialect == "sqlite" else 4
            self._executor = FixedThreadPool(workers, "outbox-db")  # submit never waits on other pools' thread starts
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _finish_batched(self, outcome: _Outcome) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._finish_queue.append((outcome, future))
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self._finish_queue:
                batch, self._finish_queue = self._finish_queue, []
                try:
                    await self._db(self._finish_many, [o for o, _ in batch])
                except Exception as exc:  # noqa: BLE001 - reported to each waiting job
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._flushing = False

    def _finish_many(self, outcomes: list[_Outcome]) -> None:
        """One transaction for the batch; if it fails, one per outcome so one bad row cannot hold back the rest."""
        if len(outcomes) > 1:
            try:
                with self.db.session() as session:
                    self._finish_in(session, outcomes)
                return
            except Exception:  # noqa: BLE001 - retried one by one below
                pass
        failure: Exception | None = None
        for o in outcomes:
            try:
                with self.db.session() as session:
                    self._finish_in(session, [o])
            except Exception as exc:  # noqa: BLE001 - the lease runs out and that job is retried
                failure = exc
        if failure is not None:
            raise failure

    def _finish_in(self, session: Session, outcomes: list[_Outcome]) -> None:
        """Write outcomes, fenced: a job another worker claimed since (its lease ran out) keeps that worker's state."""
        now = clock.now().timestamp()
        jobs: list[dict[str, Any]] = []
        tries: list[dict[str, Any]] = []
        for o in outcomes:
            job = o.job
            if o.outcome == "ok":
                status, finished, run_at, error = "done", now, None, None
            elif o.outcome == "failed":
                status, finished, run_at, error = "failed", now, None, o.error
            elif job.dedupe_key is not None and session.execute(_NEWER_WAITING, {"key": job.dedupe_key, "job_id": job.id}).scalar():
                status, finished, run_at, error = "superseded", now, None, o.error
            else:
                status, finished, run_at, error = "pending", None, now + (o.delay or 0.0), o.error
            jobs.append(
                {"j_id": job.id, "j_worker": self.worker_id, "j_attempt": job.attempt,
                 "v_status": status, "v_finished": finished, "v_run_at": run_at, "v_error": error}
            )
            tries.append({"a_job": job.id, "a_attempt": job.attempt, "a_finished": now, "a_outcome": o.outcome, "a_error": o.error})
        changed = session.execute(_FINISH_JOB, jobs).rowcount
        session.execute(_FINISH_ATTEMPT, tries)
        if changed is not None and 0 <= changed < len(jobs):
            self._log.warning(
                "outbox_lease_lost", jobs=[o.job.id for o in outcomes], lost=len(jobs) - changed,
                detail="another worker claimed a job again after its lease ran out; that worker's outcome stands",
            )

    def _claim(self, limit: int) -> list[Job]:
        kinds = sorted(self.handlers())
        if not kinds or limit < 1:
            return []
        now = clock.now().timestamp()
        params = {"kinds": kinds, "now": now, "limit": limit, "window": limit * 4 + 16}
        # A read first: on SQLite an idle poll must not take the write lock.
        with self.db.read() as session:
            if session.execute(_ANY_DUE, params).first() is None:
                return []
        claim = _CLAIM_PG if self.db.dialect == "postgresql" else _CLAIM
        with self.db.session() as session:
            if self.db.dialect == "postgresql":
                session.execute(_PG_CLAIM_LOCK)
            rows = session.execute(
                claim, {**params, "lease_until": now + self.options.lease_s, "worker": self.worker_id}
            ).all()
            if not rows:
                return []
            # A first attempt has no earlier one a dead worker could have left unfinished.
            again = [row.id for row in rows if row.attempts > 1]
            if again:
                session.execute(_MARK_LOST, {"ids": again, "now": now})
            session.execute(
                _INSERT_ATTEMPT,
                [{"job_id": row.id, "attempt": row.attempts, "worker": self.worker_id, "started_at": now} for row in rows],
            )
        return [
            Job(
                id=row.id,
                kind=row.kind,
                payload=_payload(row.payload),
                attempt=row.attempts,
                created_at=utc(row.created_at),
                dedupe_key=row.dedupe_key,
                worker=self.worker_id,
            )
            for row in sorted(rows, key=lambda r: r.id)
        ]

    def _mine(self, job: Job) -> Any:
        c = outbox_jobs.c
        return and_(c.id == job.id, c.status == "running", c.claimed_by == self.worker_id, c.attempts == job.attempt)

    def _extend_lease(self, job: Job) -> None:
        with self.db.session() as session:
            session.execute(
                update(outbox_jobs).where(self._mine(job)).values(lease_until=clock.now().timestamp() + self.options.lease_s)
            )

    def _purge(self) -> int:
        cutoff = clock.now().timestamp() - self.options.retain_days * 86400
        c = outbox_jobs.c
        with self.db.session() as session:
            old = select(c.id).where(c.status.in_(("done", "superseded")), c.finished_at < cutoff).limit(PURGE_BATCH)
            ids = list(session.execute(old).scalars())
            if ids:
                session.execute(delete(outbox_attempts).where(outbox_attempts.c.job_id.in_(ids)))
                session.execute(delete(outbox_jobs).where(c.id.in_(ids)))
        return len(ids)

    def _release_mine(self) -> int:
        """Hand back jobs this worker still holds (cut short by stop()) so another worker takes them at once."""
        now = clock.now().timestamp()
        c = outbox_jobs.c
        a = outbox_attempts.c
        with self.db.session() as session:
            rows = session.execute(
                select(c.id, c.attempts, c.dedupe_key).where(c.status == "running", c.claimed_by == self.worker_id)
            ).all()
            for row in rows:
                session.execute(
                    update(outbox_attempts)
                    .where(a.job_id == row.id, a.attempt == row.attempts, a.outcome.is_(None))
                    .values(outcome="lost", finished_at=now, error="the worker stopped before the handler finished")
                )
                status = "pending"
                if row.dedupe_key is not None and session.execute(
                    select(exists().where(c.dedupe_key == row.dedupe_key, c.status == "pending"))
                ).scalar():
                    status = "superseded"
                session.execute(
                    update(outbox_jobs)
                    .where(c.id == row.id, c.claimed_by == self.worker_id, c.status == "running")
                    .values(status=status, run_at=now, lease_until=None, finished_at=now if status == "superseded" else None)
                )
        return len(rows)


_J = outbox_jobs.c
_A = outbox_attempts.c
_FINISH_JOB = (
    update(outbox_jobs)
    .where(_J.id == bindparam("j_id"), _J.status == "running", _J.claimed_by == bindparam("j_worker"), _J.attempts == bindparam("j_attempt"))
    .values(
        status=bindparam("v_status"),
        finished_at=bindparam("v_finished"),
        run_at=func.coalesce(bindparam("v_run_at", type_=Double), _J.run_at),
        lease_until=None,
        last_error=bindparam("v_error"),
    )
)
# Fenced too: an attempt the next claimer already marked "lost" keeps that mark.
_FINISH_ATTEMPT = (
    update(outbox_attempts)
    .where(_A.job_id == bindparam("a_job"), _A.attempt == bindparam("a_attempt"), _A.outcome.is_(None))
    .values(finished_at=bindparam("a_finished"), outcome=bindparam("a_outcome"), error=bindparam("a_error"))
)
# The claim's statements, built once (building and cache-keying them cost more than running them).
_DUE = and_(
    _J.kind.in_(bindparam("kinds", expanding=True)),
    or_(
        and_(_J.status == "pending", _J.run_at <= bindparam("now", type_=Double)),
        and_(_J.status == "running", _J.lease_until < bindparam("now", type_=Double)),
    ),
)
_ANY_DUE = select(_J.id).where(_DUE).limit(1)


def _family(kind: Any, dialect: str) -> Any:
    """The kind's first dotted word ("slack" of "slack.update_card"): jobs of one family act on the same things."""
    if dialect == "postgresql":
        return func.split_part(kind, ".", 1)
    return func.substr(kind, 1, func.instr(kind + ".", ".") - 1)


def _claim_statement(dialect: str) -> Any:
    """Claim due jobs, at most one per (family, payload), none whose (family, payload) has a live running job.

    A job's payload names what it acts on, so two jobs of one family with the
    same payload -- "post the card of dep_1" and "update the card of dep_1" --
    must never run at once, in any process: both would find no card yet and
    both would post one. The claim is where every process meets, so the rule
    is enforced here: a job waits while one of its group runs under a live
    lease (a dead claimer's lease runs out and its job is claimed again, still
    alone), and one claim takes only the oldest due job of a group. The
    caller makes claims mutually exclusive (SQLite: the single writer;
    Postgres: an advisory lock) so the check and the claim cannot interleave
    with another process's.
    """
    # The oldest due jobs first (a top-N over the due index), and only those are checked and ranked: the
    # check costs a lookup per candidate, and a backlog of thousands must not make every claim scan it.
    candidates = (
        select(_J.id, _J.run_at, _J.kind, _J.payload)
        .where(_DUE)
        .order_by(_J.run_at, _J.id)
        .limit(bindparam("window"))
        .subquery("candidate")
    )
    c = candidates.c
    running = outbox_jobs.alias("running")
    r = running.c
    busy = exists().where(
        r.status == "running",
        r.lease_until >= bindparam("now", type_=Double),
        r.payload == c.payload,
        _family(r.kind, dialect) == _family(c.kind, dialect),
    )
    ranked = (
        select(
            c.id,
            c.run_at,
            func.row_number().over(partition_by=(_family(c.kind, dialect), c.payload), order_by=(c.run_at, c.id)).label("turn"),
        )
        .where(~busy)
        .subquery()
    )
    due = select(ranked.c.id).where(ranked.c.turn == 1).order_by(ranked.c.run_at, ranked.c.id).limit(bindparam("limit"))
    claim = _J.id.in_(due.scalar_subquery())
    if dialect == "postgresql":
        # _DUE again: a row changed since the subquery's snapshot (finished by its late worker) is re-checked.
        # Not on SQLite: no writer runs beside us there, and the planner would scan every due row for it.
        claim = and_(claim, _DUE)
    return (
        update(outbox_jobs)
        .where(claim)
        .values(
            status="running",
            attempts=_J.attempts + 1,
            lease_until=bindparam("lease_until", type_=Double),
            claimed_by=bindparam("worker"),
        )
        .returning(_J.id, _J.kind, _J.payload, _J.dedupe_key, _J.attempts, _J.created_at)
    )


_CLAIM = _claim_statement("sqlite")
_CLAIM_PG = _claim_statement("postgresql")
# Claims on Postgres take turns (held to the commit): the busy check and the claim then see every earlier claim.
_PG_CLAIM_LOCK = text("SELECT pg_advisory_xact_lock(7243010)")
_MARK_LOST = (
    update(outbox_attempts)
    .where(_A.job_id.in_(bindparam("ids", expanding=True)), _A.outcome.is_(None))
    .values(
        outcome="lost",
        finished_at=bindparam("now", type_=Double),
        error="the worker running it died or stalled past its lease; claimed again",
    )
)
_INSERT_ATTEMPT = insert(outbox_attempts)
_NEWER_WAITING = select(exists().where(_J.dedupe_key == bindparam("key"), _J.status == "pending", _J.id != bindparam("job_id")))


def _payload(text: str) -> dict[str, Any]:
    """The stored payload; a row edited into something else reaches the handler as {} (which gives up on it)."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _clean_error(error: str) -> str:
    """What is stored about a failure: PHI redacted, bounded."""
    from assistant.redact import redact

    text = redact(error)
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"
