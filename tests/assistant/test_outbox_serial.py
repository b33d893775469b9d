"""Claims never hand out two jobs of one family about the same thing (same payload) at once, in any process."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from freezegun import freeze_time

from assistant import clock

from assistant.outbox import Job
from assistant.outbox_worker import OutboxWorker, WorkerOptions
from assistant.storage import Database
from assistant.storage.outbox_tables import outbox_jobs
from tests.assistant.test_outbox import FAST, add, attempts, db, jobs, module_db  # noqa: F401  (fixtures)

CARD = {"deployment_id": "dep_1"}


async def nothing(job: Job) -> None:
    return None


def worker(database: Database, worker_id: str, **options: Any) -> OutboxWorker:
    kinds = ("chat.post_card", "chat.update_card", "other.post_card")
    opts = WorkerOptions(**{**{"poll_s": 0.05, "lease_s": 30.0}, **options})
    return OutboxWorker(database, handlers={k: nothing for k in kinds}, options=opts, worker_id=worker_id)


def claimed(w: OutboxWorker, limit: int = 10) -> list[tuple[str, dict[str, Any]]]:
    return [(j.kind, j.payload) for j in w._claim(limit)]


def test_one_claim_takes_only_the_oldest_job_of_a_group(db):
    add(db, "chat.post_card", CARD)
    add(db, "chat.update_card", CARD)
    add(db, "chat.update_card", {"deployment_id": "dep_2"})
    add(db, "other.post_card", CARD)  # another family: not the same card

    got = claimed(worker(db, "a"))

    assert got == [("chat.post_card", CARD), ("chat.update_card", {"deployment_id": "dep_2"}), ("other.post_card", CARD)]


def test_a_running_job_holds_back_its_group_in_every_worker_until_it_finishes(db):
    add(db, "chat.post_card", CARD)
    a, b = worker(db, "a"), worker(db, "b")
    assert claimed(a) == [("chat.post_card", CARD)]
    add(db, "chat.update_card", CARD)

    assert claimed(b) == [] and claimed(a) == []  # the post still runs: the update waits

    with db.session() as s:  # the post finishes (as the worker's finish writes it)
        s.execute(outbox_jobs.update().values(status="done", lease_until=None).where(outbox_jobs.c.kind == "chat.post_card"))
    assert claimed(b) == [("chat.update_card", CARD)]


def test_a_dead_claimers_group_is_free_again_when_its_lease_runs_out(db):
    add(db, "chat.post_card", CARD)
    add(db, "chat.update_card", CARD)
    dead = worker(db, "dead", lease_s=30.0)
    assert claimed(dead) == [("chat.post_card", CARD)]
    live = worker(db, "live")
    assert claimed(live) == []

    # Past the lease (the clock moved, not slept: a loaded machine once took longer than a short lease between
    # the two claims above). The dead claimer's job comes first (it is older), alone; the update still waits.
    with freeze_time(clock.now() + timedelta(seconds=31)):
        (post,) = live._claim(10)
        assert (post.kind, post.attempt) == ("chat.post_card", 2)
        assert [a.outcome for a in attempts(db, post.id)] == ["lost", None]
        assert claimed(worker(db, "third")) == []
