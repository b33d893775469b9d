"""The outbox: jobs live and die with their transaction, run until they succeed, and survive a killed worker."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from assistant import clock, outbox
from assistant.outbox import GiveUp, InvalidJob, Job, RetryLater
from assistant.outbox_worker import OutboxWorker, WorkerOptions, backoff_delay
from assistant.storage import Database
from assistant.storage.outbox_tables import outbox_attempts, outbox_jobs

@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def module_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One migrated database per backend for this file (creating a Postgres database costs seconds)."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path_factory.mktemp('outbox') / 'gitops-health.db'}")
        database.upgrade()
        yield database
        database.dispose()
        return
    base = os.environ.get("GITOPS_HEALTH_TEST_POSTGRES_URL")
    if not base:
        if os.environ.get("GITOPS_HEALTH_REQUIRE_POSTGRES") == "1":
            pytest.fail("GITOPS_HEALTH_REQUIRE_POSTGRES=1 but GITOPS_HEALTH_TEST_POSTGRES_URL is not set")
        pytest.skip("no Postgres: set GITOPS_HEALTH_TEST_POSTGRES_URL")
    import psycopg

    name = f"gh_test_outbox_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database = Database(f"{base.rpartition('/')[0]}/{name}")
    try:
        database.upgrade()
        yield database
    finally:
        database.dispose()
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db(module_db: Database) -> Database:
    """The file's database, emptied of jobs (each test starts with none)."""
    with module_db.session() as s:
        s.execute(outbox_attempts.delete())
        s.execute(outbox_jobs.delete())
    return module_db


FAST = WorkerOptions(backoff_base_s=0.01, backoff_max_s=0.05, poll_s=0.05, lease_s=30)


def jobs(db: Database) -> list[Any]:
    with db.read() as s:
        return s.execute(select(outbox_jobs).order_by(outbox_jobs.c.id)).all()


def attempts(db: Database, job_id: int) -> list[Any]:
    with db.read() as s:
        return s.execute(select(outbox_attempts).where(outbox_attempts.c.job_id == job_id).order_by(outbox_attempts.c.attempt)).all()


def add(db: Database, kind: str = "test.job", payload: dict[str, Any] | None = None, **kw: Any) -> int:
    with db.session() as s:
        return outbox.enqueue(s, kind, payload or {"n": 1}, **kw)


class Recorder:
    """A handler that records the jobs it ran and fails the first `fail` runs."""

    def __init__(self, fail: int = 0, exc: BaseException | None = None) -> None:
        self.fail = fail
        self.exc = exc
        self.seen: list[Job] = []

    async def __call__(self, job: Job) -> None:
        self.seen.append(job)
        if len(self.seen) <= self.fail:
            raise self.exc or RuntimeError(f"receiver down (run {len(self.seen)})")


async def drain_until(worker: OutboxWorker, done: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("the outbox did not get there in time")
        await worker.run_once()
        await asyncio.sleep(0.01)


# --------------------------------------------------------------------------- enqueue


async def test_a_job_runs_after_its_transaction_commits_and_never_if_it_rolls_back(db: Database) -> None:
    with pytest.raises(RuntimeError), db.session() as s:
        outbox.enqueue(s, "test.job", {"deployment_id": "dep_rolled_back"})
        raise RuntimeError("the change failed")
    job_id = add(db, payload={"deployment_id": "dep_1"})
    rec = Recorder()
    worker = OutboxWorker(db, handlers={"test.job": rec})

    assert await worker.run_once() == 1
    assert [j.payload for j in rec.seen] == [{"deployment_id": "dep_1"}]
    assert rec.seen[0].id == job_id and rec.seen[0].attempt == 1
    (row,) = jobs(db)
    assert (row.status, row.attempts, row.last_error) == ("done", 1, None)
    assert [a.outcome for a in attempts(db, job_id)] == ["ok"]
    assert await worker.run_once() == 0  # done stays done


def test_a_dedupe_key_whose_waiting_job_is_claimed_mid_enqueue_still_gets_a_job(db: Database) -> None:
    """Postgres (READ COMMITTED): a worker may claim the waiting job between enqueue's insert and its read of that
    job. The change being enqueued (a vote's card update) must still get a job, not fail the vote's transaction."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite's single writer cannot interleave a claim inside another write transaction")
    from sqlalchemy import event

    waiting = add(db, kind="test.card", dedupe_key="test.card:dep_1")
    worker = OutboxWorker(db, handlers={"test.card": Recorder()})
    claimed: list[Any] = []

    def claim_after_the_insert(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not claimed and statement.lstrip().upper().startswith("INSERT INTO OUTBOX_JOBS"):
            claimed.append(worker._claim(10))  # another transaction, committed before enqueue reads the waiting job

    with db.session() as s:
        connection = s.connection()
        event.listen(connection, "after_cursor_execute", claim_after_the_insert)
        try:
            job_id = outbox.enqueue(s, "test.card", {"deployment_id": "dep_1"}, dedupe_key="test.card:dep_1")
        finally:
            event.remove(connection, "after_cursor_execute", claim_after_the_insert)
    assert [job.id for job in claimed[0]] == [waiting]
    assert job_id != waiting
    assert [(row.id, row.status) for row in jobs(db)] == [(waiting, "running"), (job_id, "pending")]


def test_a_waiting_job_that_stands_for_a_change_is_not_claimed_before_the_change_commits(db: Database) -> None:
    """Postgres: an enqueue that found the waiting job (its key coalesced) locks it, so a worker's claim waits for the
    commit and its handler sees the change. Claimed in between, the handler would render the state without it (a card
    missing the vote) and no job would be left for it."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite's single writer cannot interleave a claim inside another write transaction")
    waiting = add(db, kind="test.card", dedupe_key="test.card:dep_1")
    worker = OutboxWorker(db, handlers={"test.card": Recorder()})
    claimed: list[Any] = []
    claim = threading.Thread(target=lambda: claimed.append(worker._claim(10)))
    with db.session() as s:
        assert outbox.enqueue(s, "test.card", {"deployment_id": "dep_1"}, dedupe_key="test.card:dep_1") == waiting
        claim.start()
        claim.join(0.5)
        assert claim.is_alive() and claimed == []  # the claim waits for this transaction
    claim.join(10)
    assert [job.id for job in claimed[0]] == [waiting]
    assert [(row.id, row.status) for row in jobs(db)] == [(waiting, "running")]


def test_enqueue_refuses_what_it_cannot_store_and_says_why(db: Database) -> None:
    with db.session() as s:
        with pytest.raises(InvalidJob, match="dotted lower-case"):
            outbox.enqueue(s, "Deployment Callback", {})
        with pytest.raises(InvalidJob, match="JSON object"):
            outbox.enqueue(s, "test.job", ["dep_1"])  # type: ignore[arg-type]
        with pytest.raises(InvalidJob, match="not JSON-serialisable"):
            outbox.enqueue(s, "test.job", {"view": object()})
        with pytest.raises(InvalidJob, match="aware datetime"):
            outbox.enqueue(s, "test.job", {}, run_at=clock.now().replace(tzinfo=None))
        with pytest.raises(InvalidJob, match="dedupe_key"):
            outbox.enqueue(s, "test.job", {}, dedupe_key="")
    assert jobs(db) == []


async def test_a_waiting_dedupe_key_coalesces_but_a_started_job_does_not_swallow_later_changes(db: Database) -> None:
    first = add(db, "test.card", {"deployment_id": "dep_1"}, dedupe_key="card:dep_1")
    assert add(db, "test.card", {"deployment_id": "dep_1"}, dedupe_key="card:dep_1") == first
    other = add(db, "test.card", {"deployment_id": "dep_2"}, dedupe_key="card:dep_2")
    assert other != first

    later: list[int] = []

    async def handler(job: Job) -> None:
        if job.id == first and not later:  # a vote lands while the card is being updated
            later.append(await asyncio.to_thread(add, db, "test.card", {"deployment_id": "dep_1"}, dedupe_key="card:dep_1"))

    worker = OutboxWorker(db, handlers={"test.card": handler})
    assert await worker.run_once() == 2
    assert later and later[0] not in (first, other)
    assert [(r.id, r.status) for r in jobs(db)] == [(first, "done"), (other, "done"), (later[0], "pending")]
    assert await worker.run_once() == 1


async def test_run_at_holds_a_job_back_and_an_earlier_enqueue_with_the_key_brings_it_forward(db: Database) -> None:
    rec = Recorder()
    worker = OutboxWorker(db, handlers={"test.job": rec})
    job_id = add(db, run_at=clock.now() + timedelta(hours=1), dedupe_key="k")
    assert await worker.run_once() == 0
    assert add(db, run_at=clock.now() + timedelta(milliseconds=200), dedupe_key="k") == job_id
    assert await worker.run_once() == 0
    await asyncio.sleep(0.25)
    assert await worker.run_once() == 1


# --------------------------------------------------------------------------- retries


async def test_failures_retry_with_backoff_until_success_and_every_attempt_is_recorded(db: Database) -> None:
    rec = Recorder(fail=2)
    worker = OutboxWorker(db, handlers={"test.job": rec}, options=FAST)
    job_id = add(db)

    await drain_until(worker, lambda: jobs(db)[0].status == "done")

    assert [j.attempt for j in rec.seen] == [1, 2, 3]
    assert [a.outcome for a in attempts(db, job_id)] == ["retry", "retry", "ok"]
    first, second, _ = attempts(db, job_id)
    assert first.error == "RuntimeError: receiver down (run 1)"
    assert second.started_at >= first.finished_at
    assert jobs(db)[0].last_error is None


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    rng = random.Random(7)
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (20, 300.0), (10_000, 300.0)):
        delays = [backoff_delay(attempt, 1.0, 300.0, rng) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8 and min(delays) < ceiling * 0.2  # spread over the whole range


async def test_a_handler_names_its_own_delay_with_retry_later(db: Database) -> None:
    rec = Recorder(fail=1, exc=RetryLater("rate limited", delay=120))
    worker = OutboxWorker(db, handlers={"test.job": rec}, options=FAST)
    add(db)
    before = clock.now().timestamp()
    assert await worker.run_once() == 1
    (row,) = jobs(db)
    assert row.status == "pending" and row.last_error == "rate limited"
    assert before + 119 < row.run_at < before + 122
    assert await worker.run_once() == 0


async def test_give_up_stops_retrying_and_says_why(db: Database) -> None:
    rec = Recorder(fail=1, exc=GiveUp("dep_gone does not exist"))
    worker = OutboxWorker(db, handlers={"test.job": rec}, options=FAST)
    job_id = add(db)
    assert await worker.run_once() == 1
    await asyncio.sleep(0.06)
    assert await worker.run_once() == 0
    (row,) = jobs(db)
    assert (row.status, row.last_error) == ("failed", "dep_gone does not exist")
    assert [a.outcome for a in attempts(db, job_id)] == ["failed"]


async def test_errors_are_stored_without_phi(db: Database) -> None:
    rec = Recorder(fail=1, exc=ValueError("lookup failed for SSN 123-45-6789, email jane.doe@example.com"))
    worker = OutboxWorker(db, handlers={"test.job": rec}, options=FAST)
    job_id = add(db)
    await worker.run_once()
    stored = [jobs(db)[0].last_error, attempts(db, job_id)[0].error]
    for error in stored:
        assert "123-45-6789" not in error and "jane.doe" not in error and error.startswith("ValueError: lookup failed")


async def test_kinds_without_a_handler_here_are_left_alone(db: Database) -> None:
    add(db, "slack.post_card", {"deployment_id": "dep_1"})
    worker = OutboxWorker(db, handlers={"test.job": Recorder()})
    assert await worker.run_once() == 0
    assert jobs(db)[0].status == "pending"


async def test_the_global_registry_is_what_a_default_worker_runs(db: Database) -> None:
    rec = Recorder()
    outbox.register("test.registered", rec)
    try:
        add(db, "test.registered")
        assert await OutboxWorker(db).run_once() == 1
        assert len(rec.seen) == 1
    finally:
        outbox.unregister("test.registered")
    with pytest.raises(InvalidJob):
        outbox.register("test.registered", "not a function")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- crashes and races


def test_two_workers_racing_run_every_job_exactly_once(db: Database) -> None:
    with db.session() as s:
        for n in range(60):
            outbox.enqueue(s, "test.job", {"n": n})
    seen: list[int] = []
    lock = threading.Lock()

    async def handler(job: Job) -> None:
        await asyncio.sleep(0.001)
        with lock:
            seen.append(job.payload["n"])

    def work(name: str) -> None:
        worker = OutboxWorker(db, handlers={"test.job": handler}, worker_id=name)

        async def go() -> None:
            while await worker.run_once(limit=5):
                pass

        asyncio.run(go())

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(seen) == list(range(60))
    assert {r.status for r in jobs(db)} == {"done"}
    assert {r.attempts for r in jobs(db)} == {1}


def test_a_stalled_worker_cannot_overwrite_the_outcome_of_the_worker_that_took_over(db: Database) -> None:
    job_id = add(db)
    short = WorkerOptions(lease_s=0.3, poll_s=0.05, backoff_base_s=0.01, backoff_max_s=0.05)

    async def stall(job: Job) -> None:
        time.sleep(0.8)  # blocks its event loop: no heartbeat, the lease runs out
        raise RuntimeError("stalled worker's late failure")

    async def fine(job: Job) -> None:
        return None

    stalled = threading.Thread(target=lambda: asyncio.run(OutboxWorker(db, handlers={"test.job": stall}, options=short, worker_id="slow").run_once()))
    stalled.start()
    time.sleep(0.5)
    assert asyncio.run(OutboxWorker(db, handlers={"test.job": fine}, options=short, worker_id="fast").run_once()) == 1
    stalled.join(10)

    (row,) = jobs(db)
    assert (row.status, row.attempts, row.claimed_by) == ("done", 2, "fast")
    first, second = attempts(db, job_id)
    assert (first.worker, first.outcome) == ("slow", "lost")
    assert (second.worker, second.outcome) == ("fast", "ok")


WORKER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from assistant.outbox_worker import OutboxWorker, WorkerOptions
    from assistant.storage import Database

    async def hang(job):
        print("running", job.id, flush=True)
        await asyncio.sleep(3600)

    db = Database(sys.argv[1])
    asyncio.run(OutboxWorker(db, handlers={"test.job": hang}, options=WorkerOptions(lease_s=float(sys.argv[2])), worker_id="doomed").run_once())
    """
)


def test_a_job_whose_worker_was_killed_runs_again_after_the_lease(db: Database, tmp_path: Path) -> None:
    job_id = add(db, payload={"deployment_id": "dep_kill"})
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    url = db.url.render_as_string(hide_password=False)
    proc = subprocess.Popen([sys.executable, str(script), url, "1.0"], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().split() == ["running", str(job_id)]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rec = Recorder()
    survivor = OutboxWorker(db, handlers={"test.job": rec}, worker_id="survivor")
    assert jobs(db)[0].status == "running"
    assert asyncio.run(survivor.run_once()) == 0  # the dead worker's lease still holds
    time.sleep(1.1)
    assert asyncio.run(survivor.run_once()) == 1
    assert [(j.payload, j.attempt) for j in rec.seen] == [({"deployment_id": "dep_kill"}, 2)]
    assert [(a.worker, a.outcome) for a in attempts(db, job_id)] == [("doomed", "lost"), ("survivor", "ok")]


# --------------------------------------------------------------------------- the running worker


async def test_a_started_worker_wakes_on_commit_and_hands_unfinished_jobs_back_on_stop(db: Database) -> None:
    started = asyncio.Event()
    done: list[int] = []

    async def quick(job: Job) -> None:
        done.append(job.id)

    async def slow(job: Job) -> None:
        started.set()
        await asyncio.sleep(60)

    worker = OutboxWorker(
        db, handlers={"test.quick": quick, "test.slow": slow}, options=WorkerOptions(poll_s=120, stop_timeout_s=0.2)
    )
    await worker.start()
    try:
        await asyncio.sleep(0.05)  # the first (empty) poll is over; only a wake-up can find the next job
        t0 = time.monotonic()
        quick_id = await asyncio.to_thread(add, db, "test.quick")
        while not done and time.monotonic() - t0 < 30:
            await asyncio.sleep(0.005)
        assert done == [quick_id] and time.monotonic() - t0 < 30  # the wake-up, not the 120 s poll
        slow_id = await asyncio.to_thread(add, db, "test.slow")
        await asyncio.wait_for(started.wait(), 5)
    finally:
        await worker.stop()
    slow_row = next(r for r in jobs(db) if r.id == slow_id)
    assert (slow_row.status, slow_row.lease_until, slow_row.claimed_by) == ("pending", None, worker.worker_id)
    assert [(a.outcome, a.error) for a in attempts(db, slow_id)] == [("lost", "the worker stopped before the handler finished")]


async def test_periodic_tasks_keep_running_when_one_run_fails(db: Database) -> None:
    runs: list[float] = []

    async def tick() -> None:
        runs.append(time.monotonic())
        if len(runs) == 1:
            raise RuntimeError("database briefly away")

    worker = OutboxWorker(db, handlers={}, options=WorkerOptions(poll_s=1))
    worker.every(0.05, "tick", tick)
    await worker.start()
    try:
        await asyncio.sleep(0.4)
    finally:
        await worker.stop()
    assert len(runs) >= 3
    with pytest.raises(ValueError, match="interval"):
        worker.every(0, "never", tick)


def test_worker_options_from_the_environment_name_the_bad_variable() -> None:
    opts = WorkerOptions.from_env({"GITOPS_HEALTH_OUTBOX_LEASE_SECONDS": "5", "GITOPS_HEALTH_OUTBOX_CONCURRENCY": "2"})
    assert (opts.lease_s, opts.concurrency, opts.backoff_base_s) == (5.0, 2, 1.0)
    with pytest.raises(ValueError, match="GITOPS_HEALTH_OUTBOX_LEASE_SECONDS: 'soon' is not a number of seconds"):
        WorkerOptions.from_env({"GITOPS_HEALTH_OUTBOX_LEASE_SECONDS": "soon"})
    with pytest.raises(ValueError, match="GITOPS_HEALTH_OUTBOX_BACKOFF_BASE_SECONDS.*positive"):
        WorkerOptions.from_env({"GITOPS_HEALTH_OUTBOX_BACKOFF_BASE_SECONDS": "-1"})
    with pytest.raises(ValueError, match="CONCURRENCY: '1.5' is not a whole number"):
        WorkerOptions.from_env({"GITOPS_HEALTH_OUTBOX_CONCURRENCY": "1.5"})


def test_the_migration_stores_times_that_compare_as_numbers(db: Database) -> None:
    add(db)
    with db.read() as s:
        due = s.execute(text("SELECT count(*) FROM outbox_jobs WHERE run_at <= :now"), {"now": clock.now().timestamp()}).scalar()
    assert due == 1


async def test_finished_jobs_are_purged_after_the_retention_but_failed_and_waiting_ones_stay(db: Database) -> None:
    worker = OutboxWorker(
        db,
        handlers={"test.ok": Recorder(), "test.bad": Recorder(fail=1, exc=GiveUp("gone"))},
        options=WorkerOptions(retain_days=1.0),
    )
    # Different payloads: two jobs of one family about the same thing would run one after the other.
    done_id, failed_id = add(db, "test.ok", {"n": 1}), add(db, "test.bad", {"n": 2})
    assert await worker.run_once() == 2
    waiting_id = add(db, "test.ok", run_at=clock.now() + timedelta(hours=1))
    assert await worker.purge() == 0  # not old enough yet
    # A day and a bit later (the clock frozen there, not slept to: a loaded machine once took longer than the
    # half-second retention this test used to wait out between its two purges).
    from freezegun import freeze_time

    with freeze_time(clock.now() + timedelta(days=1, minutes=1)):
        assert worker._purge() == 1
    assert [(r.id, r.status) for r in jobs(db)] == [(failed_id, "failed"), (waiting_id, "pending")]
    assert attempts(db, done_id) == [] and len(attempts(db, failed_id)) == 1
    with pytest.raises(ValueError, match="GITOPS_HEALTH_OUTBOX_RETAIN_DAYS: 'forever' is not a number of days"):
        WorkerOptions.from_env({"GITOPS_HEALTH_OUTBOX_RETAIN_DAYS": "forever"})


async def test_a_handler_that_hangs_is_cancelled_and_its_job_retried(db: Database) -> None:
    runs: list[int] = []

    async def hang_once(job: Job) -> None:
        runs.append(job.attempt)
        if job.attempt == 1:
            await asyncio.sleep(60)

    worker = OutboxWorker(db, handlers={"test.job": hang_once}, options=WorkerOptions(handler_timeout_s=0.2, backoff_base_s=0.01, backoff_max_s=0.02))
    job_id = add(db)
    await drain_until(worker, lambda: jobs(db)[0].status == "done")
    assert runs == [1, 2]
    assert attempts(db, job_id)[0].error == "the handler did not finish within 0.2 s; cancelled"


async def test_a_payload_edited_into_garbage_reaches_the_handler_as_an_empty_object(db: Database) -> None:
    rec = Recorder()
    job_id = add(db)
    with db.session() as s:
        s.execute(outbox_jobs.update().where(outbox_jobs.c.id == job_id).values(payload="not json"))
    assert await OutboxWorker(db, handlers={"test.job": rec}).run_once() == 1
    assert rec.seen[0].payload == {}
