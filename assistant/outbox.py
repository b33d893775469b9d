"""Durable side effects: a job is written in the same transaction as the change that causes it.

A state change (a vote, a decision) and the work it implies (post the card,
call CI back) must never disagree: if the transaction commits, the job
exists and will run until it succeeds; if it rolls back, the job never
existed. So the core calls :func:`enqueue` with its own session, and a
worker (:mod:`assistant.outbox_worker`) runs the handler registered for the
job's kind (:func:`register`) after the commit, retrying with exponential
backoff and full jitter. Delivery is at least once: a handler must tolerate
running again after a crash (load current state, update rather than
re-create, or let the receiver dedupe on the job id).

A kind is ``family.action`` and the payload names what the job acts on:
jobs of one family with the same payload (``slack.post_card`` and
``slack.update_card`` of one request) never run at the same time, in any
process -- the worker's claim holds the later ones back while one runs, so
two of them can never both find no card and both post one.

Kinds used by issue 5 (payload ``{"deployment_id": ...}`` for all):
``deployment.callback``, ``slack.post_card``, ``slack.update_card``,
``slack.blocked_notice``, ``teams.post_card``, ``teams.update_card``,
``teams.blocked_notice``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from assistant import clock
from assistant.storage.outbox_tables import outbox_jobs

__all__ = [
    "GiveUp",
    "Handler",
    "InvalidJob",
    "Job",
    "RetryLater",
    "enqueue",
    "handlers",
    "register",
    "unregister",
]

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")
MAX_KIND = 100
MAX_DEDUPE_KEY = 200
_DEDUPE_TRIES = 5


@dataclass(frozen=True, slots=True)
class Job:
    """One run of one job, as its handler sees it."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempt: int  # 1 for the first run; counts runs that were started, including ones a crash cut short
    created_at: datetime
    dedupe_key: str | None = None
    worker: str = field(default="", compare=False)


Handler = Callable[[Job], Awaitable[None]]


class InvalidJob(ValueError):
    """enqueue() was given something that cannot be stored as a job; the message says what."""


class RetryLater(Exception):
    """Raised by a handler for a transient failure; ``delay`` (seconds) overrides the backoff, e.g. a Retry-After."""

    def __init__(self, reason: str, *, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class GiveUp(Exception):
    """Raised by a handler when running again cannot help (the job refers to something that no longer exists)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- handlers

_handlers: dict[str, Handler] = {}
_handlers_lock = threading.Lock()


def register(kind: str, handler: Handler) -> None:
    """Make ``handler`` (an ``async def handler(job: Job) -> None``) run jobs of ``kind`` in this process.

    Registering a kind again replaces its handler (an app built again in the
    same process brings fresh clients). A worker only claims kinds that have
    a handler, so jobs for a chat that is not configured here wait, untouched.
    """
    _check_kind(kind)
    if not callable(handler):
        raise InvalidJob(f"handler for {kind!r} is {type(handler).__name__}, not an async function taking a Job")
    with _handlers_lock:
        _handlers[kind] = handler


def unregister(kind: str, handler: Handler | None = None) -> None:
    """Forget the handler of ``kind`` (only if it is still ``handler``, when given)."""
    with _handlers_lock:
        if handler is None or _handlers.get(kind) is handler:
            _handlers.pop(kind, None)


def handlers() -> dict[str, Handler]:
    """A snapshot of the registered handlers."""
    with _handlers_lock:
        return dict(_handlers)


# --------------------------------------------------------------------------- enqueue


def enqueue(
    session: Session | Connection,
    kind: str,
    payload: Mapping[str, Any],
    *,
    dedupe_key: str | None = None,
    run_at: datetime | None = None,
) -> int:
    """Add a job in the caller's transaction; it runs after the commit, never if the transaction rolls back.

    ``dedupe_key``: while a job with this key is still waiting to start,
    another enqueue with the same key adds nothing and returns the waiting
    job's id (the waiting job will load the latest state when it runs, so
    five votes in a second make one card update, not five). Once a job has
    started, the same key queues a new one, so a change made while a handler
    runs is never missed.

    ``run_at``: not before this aware datetime (default: now).
    Returns the id of the job that will do the work.
    """
    _check_kind(kind)
    if not isinstance(payload, Mapping):
        raise InvalidJob(f"payload for {kind!r} must be a JSON object (a dict), not {type(payload).__name__}")
    try:
        body = json.dumps(dict(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidJob(f"payload for {kind!r} is not JSON-serialisable ({exc}); pass ids and plain values, not objects") from None
    if dedupe_key is not None and (not isinstance(dedupe_key, str) or not dedupe_key or len(dedupe_key) > MAX_DEDUPE_KEY):
        raise InvalidJob(f"dedupe_key must be a non-empty string of at most {MAX_DEDUPE_KEY} characters")
    now = clock.now().timestamp()
    if run_at is None:
        due = now
    elif run_at.tzinfo is None:
        raise InvalidJob("run_at must be an aware datetime (e.g. clock.now() + timedelta(minutes=5)), not a naive one")
    else:
        due = run_at.timestamp()

    values = {
        "kind": kind,
        "payload": body,
        "dedupe_key": dedupe_key,
        "status": "pending",
        "attempts": 0,
        "run_at": due,
        "created_at": now,
    }
    if dedupe_key is None:
        job_id = session.execute(_INSERT, values).scalar_one()
    else:
        insert_unless_waiting = _INSERT_UNLESS_WAITING[_dialect(session)]
        for _ in range(_DEDUPE_TRIES):
            job_id = session.execute(insert_unless_waiting, values).scalar()
            if job_id is not None:
                break
            # A job with this key is waiting to start: it will do the work (locked till our commit, so it
            # starts after it). Unless a worker (another transaction, on Postgres) claimed it between our
            # insert and this read: then it no longer waits, and the insert is tried again -- the change
            # must not be missed.
            job_id = session.execute(_WAITING, {"key": dedupe_key}).scalar()
            if job_id is not None:
                if run_at is not None:  # an earlier due time wins
                    session.execute(_BRING_FORWARD, {"job_id": job_id, "due": due})
                break
        else:
            raise RuntimeError(f"could not enqueue {kind!r} with dedupe key {dedupe_key!r}: its waiting job was claimed {_DEDUPE_TRIES} times over")
    if isinstance(session, Session):
        session.info["outbox_wake"] = True
    return int(job_id)


def _build_statements() -> tuple[Any, dict[str, Any], Any, Any]:
    """Statements built once: constructing them costs more than executing them."""
    from sqlalchemy import bindparam, text
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    c = outbox_jobs.c
    plain = insert(outbox_jobs).returning(c.id)
    # INSERT ... ON CONFLICT DO NOTHING against the partial unique index on waiting jobs' dedupe keys.
    unless_waiting = {
        name: dialect_insert(outbox_jobs)
        .on_conflict_do_nothing(index_elements=["dedupe_key"], index_where=text("status = 'pending'"))
        .returning(c.id)
        for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
    }
    # FOR UPDATE (Postgres; SQLite's single writer needs none): the waiting job stands for this change only if no
    # worker claims it before this transaction commits -- a claim made in between would run the handler on the
    # state without this change and leave no job for it. Locked, the claim waits for the commit, then takes it.
    waiting = select(c.id).where(c.dedupe_key == bindparam("key"), c.status == "pending").with_for_update()
    forward = (
        outbox_jobs.update()
        .where(c.id == bindparam("job_id"), c.run_at > bindparam("due"))
        .values(run_at=bindparam("due"))
    )
    return plain, unless_waiting, waiting, forward


_INSERT, _INSERT_UNLESS_WAITING, _WAITING, _BRING_FORWARD = _build_statements()


def _check_kind(kind: str) -> None:
    if not isinstance(kind, str) or len(kind) > MAX_KIND or not KIND_PATTERN.match(kind):
        raise InvalidJob(
            f"job kind {kind!r} is not valid; use dotted lower-case words of at most {MAX_KIND} characters, e.g. 'deployment.callback'"
        )


def _dialect(session: Session | Connection) -> str:
    if isinstance(session, Connection):
        return session.dialect.name
    return session.get_bind().dialect.name


# --------------------------------------------------------------------------- wake-ups
# A worker in this process sleeps between polls; a commit that enqueued
# something wakes it at once, so a card or callback goes out in
# milliseconds, not at the next poll. Other processes find the job by polling.

_wakers: set[Callable[[], None]] = set()
_wakers_lock = threading.Lock()


def add_waker(wake: Callable[[], None]) -> None:
    """Call ``wake()`` (thread-safe, cheap) after every commit in this process that enqueued a job."""
    with _wakers_lock:
        _wakers.add(wake)


def remove_waker(wake: Callable[[], None]) -> None:
    with _wakers_lock:
        _wakers.discard(wake)


def _wake_all(*_args: Any) -> None:
    with _wakers_lock:
        wakers = list(_wakers)
    for wake in wakers:
        wake()


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    """One class-level listener (per-session listeners cost more than the insert): wake workers if this commit enqueued."""
    if session.info.pop("outbox_wake", False):
        _wake_all()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop("outbox_wake", None)


def utc(ts: float) -> datetime:
    """An aware UTC datetime from the stored unix seconds."""
    return datetime.fromtimestamp(ts, UTC)
