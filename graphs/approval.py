"""The approval workflow as one LangGraph graph; read top to bottom, it is the workflow.

    (request stored) ──▶ await_votes ⟲ (interrupt until the votes settle it) ──▶ decided

The request itself (review, policy, the stored row with its audit record and
outbox jobs) is `ApprovalService.request_deployment`, run just before the
thread starts: as a node of its own it cost a Pregel super-step and a task
write per request (~0.5 ms CPU, bench/approvals.py) and bought nothing, since
an Idempotency-Key replay starts no thread and the row, not the thread, is
the truth. The thread starts from the stored request's status, straight in
`await_votes` (a conditional edge from START would be a Pregel task of its
own, ~0.3 ms per POST); a request the policy already decided passes through
it to `decided` without waiting.

One thread per deploy request (thread id = deployment id), checkpointed in a
durable store (SQLite beside the database, or the same Postgres), so the wait
for humans survives restarts: a server that comes back finds each thread
parked in `interrupt()` where it was.

The database, not the checkpoint, is the truth. Votes are cast through
`ApprovalService.cast_vote` first (refusals go straight back to the clicker,
the decision is a compare-and-set, and the callback and card jobs are written
to the outbox in the decision's own transaction); only then is the thread
resumed, and `await_votes` re-reads the request instead of trusting what it
was handed. So a resume that is lost (a crash between the commit and the
resume) or that races another process loses nothing: the next resume, or
`catch_up`, brings the thread to the database's state. `decided` ends the
thread; the callback to CI is already on its way through the outbox.

`ApprovalWorkflow` offers the same commands as ApprovalService (adapters use
it as `app.state.approvals`), adding the thread bookkeeping around them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from assistant.approvals import AlreadyDecided, ApprovalService, VoteResult, new_deployment_id
from assistant.deployments import DeploymentRequest, DeploymentView
from assistant.logging import get_logger
from assistant.storage import Database

__all__ = ["ApprovalWorkflow", "build_approval_graph", "open_checkpointer"]

log = get_logger("gitops_health.approval")


@dataclass
class ApprovalContext:
    """What a run needs but must not be checkpointed (views, the service and its connections)."""

    service: ApprovalService
    out: dict[str, Any] = field(default_factory=dict)


class ApprovalState(TypedDict, total=False):
    deployment_id: str
    status: str
    created: bool
    votes: int
    decided_by: str | None
    decided_at: str | None


# --- nodes ------------------------------------------------------------------------------------


def await_votes(state: ApprovalState, runtime: Runtime[ApprovalContext]) -> dict[str, Any]:
    """Park until a vote (or an expiry) is recorded, then look at the database again; a decided request passes.

    The view it starts from may be the one this run just read or was handed
    by the vote that resumed it (read in the vote's own transaction): a
    decided view is final, and a pending one only feeds the interrupt, which
    on a resume returns at once -- what follows it is a fresh read.
    """
    ctx = runtime.context
    service = ctx.service
    view = ctx.out.pop("view_for_next", None) or service.get(state["deployment_id"])
    if view.status == "pending":
        waiting = service.outstanding(view)
        interrupt({"deployment_id": view.id, "waiting_for": [w.model_dump() for w in waiting], "votes": len(view.votes)})
        view = service.get(state["deployment_id"])
    ctx.out["view_for_next"] = view  # the next step (this node parking again, or decided) starts from it
    return {"status": view.status, "votes": len(view.votes)}


def decided(state: ApprovalState, runtime: Runtime[ApprovalContext]) -> dict[str, Any]:
    """The end: the callback and the final cards were enqueued with the decision, in its transaction."""
    view = runtime.context.out.pop("view_for_next", None) or runtime.context.service.get(state["deployment_id"])
    log.info("approval_decided", deployment_id=view.id, status=view.status, decided_by=view.decided_by, votes=len(view.votes))
    return {"status": view.status, "decided_by": view.decided_by, "decided_at": view.decided_at}


def _next(state: ApprovalState) -> str:
    """After each wake-up: wait again while pending, else end."""
    return "await_votes" if state["status"] == "pending" else "decided"


def build_approval_graph(checkpointer: Any = None) -> Any:
    graph = StateGraph(ApprovalState, context_schema=ApprovalContext)
    graph.add_node("await_votes", await_votes)
    graph.add_node("decided", decided)
    graph.add_edge(START, "await_votes")
    graph.add_conditional_edges("await_votes", _next, ["await_votes", "decided"])
    graph.add_edge("decided", END)
    return graph.compile(checkpointer=checkpointer, name="approval")


# --- checkpoint saves in the calling thread ----------------------------------------------------
# A sync graph run hands its checkpoint saves to a ThreadPoolExecutor that LangGraph builds for
# that run (langchain_core's get_executor_for_config) and waits for them before `invoke` returns.
# Our runs save only when they stop (durability="exit"): a checkpoint and the interrupt's write,
# one after the other, then the wait. So every POST started a thread, handed it two saves and
# joined it: ~0.5 ms CPU in-process (tmp bench of this graph: 2.2 -> 1.4 ms per park), more
# under `serve` load (thread starts and GIL hand-offs between the core threads). Runs of this
# graph get an executor that runs each save at once in the calling thread instead: the same
# saves, in the same order, finished (or raised) before `invoke` returns, as before. Other
# graphs (and a LangGraph without this hook) keep the thread pool.

_INLINE_SAVES = "__gitops_health_inline_saves"  # a configurable key; "__" keeps it out of checkpoint metadata


class _InlineExecutor(Executor):
    """Runs each call when it is submitted, in the submitting thread; the future is done on return."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed over exactly as a pool thread would
            future.set_exception(exc)
        else:
            future.set_result(result)
        return future


def _install_inline_saves() -> bool:
    """Hook LangGraph's per-run executor so runs that ask for it (`_INLINE_SAVES`) save inline; idempotent."""
    try:
        from langgraph.pregel import _executor
    except ImportError:  # pragma: no cover - a LangGraph without the module: runs keep the thread pool
        return False
    original = getattr(_executor, "get_executor_for_config", None)
    if original is None:  # pragma: no cover
        return False
    if getattr(original, "gitops_health_inline", False):
        return True

    @contextmanager
    def get_executor_for_config(config: Any) -> Iterator[Executor]:
        if config and (config.get("configurable") or {}).get(_INLINE_SAVES):
            yield _InlineExecutor()
        else:
            with original(config) as executor:
                yield executor

    get_executor_for_config.gitops_health_inline = True  # type: ignore[attr-defined]
    _executor.get_executor_for_config = get_executor_for_config
    return True


_INLINE = _install_inline_saves()


# --- durable checkpoints ---------------------------------------------------------------------


def checkpoint_path(db: Database) -> Path:
    """Beside the SQLite database: `gitops-health.db` -> `gitops-health.checkpoints.db`."""
    database = db.url.database
    if not database or database == ":memory:":
        raise ValueError("an in-memory SQLite database has no place for durable checkpoints; use a file")
    path = Path(database)
    return path.with_name(f"{path.stem}.checkpoints{path.suffix or '.db'}")


_PG_SETUP_LOCK = 7243005


def open_checkpointer(db: Database) -> tuple[Any, Any]:
    """A durable checkpointer for `db`'s dialect and a `close()` for its connections."""
    saver, close, _lock = _open_store(db)
    return saver, close


# --- one resume of a thread at a time, across processes ------------------------------------------
# Two processes (`serve --workers N`, or replicas) that resume one thread at once would both
# read the same parked checkpoint and both write a child of it: the thread forks, and which
# branch is "latest" depends on timing, not on the database. So a resume holds a lock on its
# thread that every process sharing the checkpoint store sees: on Postgres an advisory lock on
# the thread id; on SQLite a byte-range lock (fcntl) in a file beside the checkpoints, one
# byte per stripe. Inside a process the striped threading locks come first (POSIX record
# locks belong to the process, not the thread).

STRIPES = 64
_PG_THREAD_LOCK = 7243006


def _stripe(deployment_id: str) -> int:
    """The same stripe in every process (`hash()` of a str is salted per process)."""
    return zlib.crc32(deployment_id.encode("utf-8")) % STRIPES


class _FileLocks:
    """Byte-range locks in one file kept open for the process's life (closing any descriptor of it would drop them all)."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def hold(self, deployment_id: str) -> Iterator[None]:
        stripe = _stripe(deployment_id)
        while True:
            try:
                fcntl.lockf(self._fd, fcntl.LOCK_EX, 1, stripe)
                break
            except OSError as exc:
                # EDEADLK is the kernel's deadlock detection misreading threads: record locks belong to the
                # process, so thread A (stripe 1) waiting for stripe 2 in one process and thread B (stripe 2)
                # waiting for stripe 1 in another look like a cycle. No thread ever holds two stripes, so there
                # is none: try again (seen as HTTP 500s with `serve --workers 2` once every request took a lock).
                if exc.errno != errno.EDEADLK:
                    raise
                time.sleep(0.001)
        try:
            yield
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, stripe)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _AdvisoryLocks:
    """A session advisory lock per thread id on a pooled connection, released before the connection goes back."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @contextmanager
    def hold(self, deployment_id: str) -> Iterator[None]:
        key = zlib.crc32(deployment_id.encode("utf-8")) - 2**31  # an int4
        with self._pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (_PG_THREAD_LOCK, key))
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_PG_THREAD_LOCK, key))

    def close(self) -> None:
        return None


def _open_store(db: Database) -> tuple[Any, Any, Any]:
    """(saver, close, thread locks) for `db`'s dialect."""
    if db.is_sqlite:
        from langgraph.checkpoint.sqlite import SqliteSaver

        path = checkpoint_path(db)
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        saver = SqliteSaver(conn)
        saver.setup()
        locks = _FileLocks(path.with_name(f"{path.name}.locks"))

        def close() -> None:
            locks.close()
            conn.close()

        return saver, close, locks

    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    conninfo = db.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:  # replicas starting together must not race the DDL
        # Polled, not waited for inside a statement: the setup runs CREATE INDEX CONCURRENTLY, which
        # waits for every running statement -- a second process blocked in pg_advisory_lock() is one,
        # and the two deadlock (seen with `serve --workers 2`).
        while not conn.execute(f"SELECT pg_try_advisory_lock({_PG_SETUP_LOCK})").fetchone()[0]:  # type: ignore[index]
            time.sleep(0.05)
        try:
            PostgresSaver(conn).setup()  # type: ignore[arg-type]
        finally:
            conn.execute(f"SELECT pg_advisory_unlock({_PG_SETUP_LOCK})")
    # Room for every core thread to hold its thread lock's connection and still get one to save with.
    pool = ConnectionPool(
        conninfo, min_size=1, max_size=24, open=True, kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    )
    return PostgresSaver(pool), pool.close, _AdvisoryLocks(pool)  # type: ignore[arg-type]


# --- the workflow ----------------------------------------------------------------------------


class ApprovalWorkflow:
    """ApprovalService's commands, each also moving the request's graph thread along.

    Checkpoints are written when a run stops (`durability="exit"`): the
    thread's interesting states are "parked" and "ended", and the database
    holds everything in between.
    """

    def __init__(self, service: ApprovalService, checkpointer: Any, *, close: Any = None, thread_locks: Any = None) -> None:
        self.service = service
        self.graph = build_approval_graph(checkpointer)
        self._close = close
        # Resumes of one thread are serialized in this process (striped locks) and, with
        # `thread_locks` (what `open` builds), across every process sharing the checkpoints,
        # so two clicks at once never fork a thread's checkpoints.
        self._stripes = tuple(threading.Lock() for _ in range(STRIPES))
        self._thread_locks = thread_locks

    @classmethod
    def open(cls, service: ApprovalService) -> ApprovalWorkflow:
        saver, close, locks = _open_store(service.db)
        return cls(service, saver, close=close, thread_locks=locks)

    @contextmanager
    def _hold(self, deployment_id: str) -> Iterator[None]:
        with self._stripes[_stripe(deployment_id)]:
            if self._thread_locks is None:
                yield
            else:
                with self._thread_locks.hold(deployment_id):
                    yield

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    @staticmethod
    def _config(deployment_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": deployment_id, _INLINE_SAVES: _INLINE}, "max_concurrency": 1}

    # ---- the same commands as ApprovalService

    def request_deployment(self, req: DeploymentRequest, idempotency_key: str | None = None) -> tuple[DeploymentView, bool]:
        """Store the request (review, policy, audit, outbox jobs: one transaction), then start its thread.

        An Idempotency-Key replay returns the first request and starts no
        thread: the first request's thread does the waiting.
        """
        view, created = self.service.request_deployment(req, idempotency_key, deployment_id=new_deployment_id())
        if created:
            self.start(view)
        return view, created

    def start(self, view: DeploymentView) -> None:
        """Run a new request's thread to its first stop: parked in `interrupt()` (pending) or ended (decided).

        Under the thread's lock, like a resume: a vote clicked on the card before
        the thread is parked waits for the park, then wakes it. Never raises: the
        request is committed (the database is the truth, votes work without the
        thread), and a thread that failed to start is started by the request's
        next resume (see `resume`).
        """
        try:
            with self._hold(view.id):
                self._run_start(view)
        except Exception as exc:  # noqa: BLE001 - the request is stored; its next vote starts the thread
            log.warning("approval_thread_start_failed", deployment_id=view.id, error=f"{type(exc).__name__}: {exc}")

    def _run_start(self, view: DeploymentView) -> None:
        """The start itself, under the thread's lock. Run on a thread that exists already it is harmless: the
        graph starts over from the given state and parks again (one linear history)."""
        ctx = ApprovalContext(self.service)
        ctx.out["view_for_next"] = view  # read in the transaction that stored or changed it: await_votes need not read it again
        state = {"deployment_id": view.id, "status": view.status, "created": True, "votes": len(view.votes)}
        self.graph.invoke(state, self._config(view.id), context=ctx, durability="exit")

    def cast_vote(self, deployment_id: str, person_id: str, decision: str, via: str, reason: str | None = None) -> VoteResult:
        try:
            result = self.service.cast_vote(deployment_id, person_id, decision, via, reason)
        except AlreadyDecided as exc:
            self.resume(deployment_id, exc.view)  # a thread another process left parked catches up on the late click
            raise
        if result.decided:
            # Only the deciding vote wakes the thread. A vote that leaves the request pending changes nothing the
            # thread could act on: it would wake, re-read the database and park again (~3.8 ms CPU a click, more
            # than the vote itself). The database holds the vote; `waiting_for` reads it from there.
            self.resume(deployment_id, result.view)
        return result

    def expire_due(self) -> list[DeploymentView]:
        expired = self.service.expire_due()
        for view in expired:
            self.resume(view.id, view)
        return expired

    def get(self, deployment_id: str) -> DeploymentView:
        return self.service.get(deployment_id)

    def outstanding(self, view: DeploymentView) -> Any:
        return self.service.outstanding(view)

    def resolve_person(self, platform: str, user_id: str, aad_object_id: str | None = None) -> str:
        return self.service.resolve_person(platform, user_id, aad_object_id)

    def person(self, person_id: str) -> Any:
        return self.service.person(person_id)

    # ---- threads

    def waiting_for(self, deployment_id: str) -> dict[str, Any] | None:
        """What the parked thread waits for, or None when it is not parked.

        The shape of its interrupt's value, computed from the database: votes that do not decide leave the
        thread parked where it was (see `cast_vote`), so the value it parked with may predate them.
        """
        snapshot = self.graph.get_state(self._config(deployment_id))
        if not snapshot.interrupts:
            return None
        view = self.service.get(deployment_id)
        waiting = self.service.outstanding(view)
        return {"deployment_id": view.id, "waiting_for": [w.model_dump() for w in waiting], "votes": len(view.votes)}

    def thread_status(self, deployment_id: str) -> str | None:
        """The status the thread last saw (None: no thread), for checking it followed the database."""
        snapshot = self.graph.get_state(self._config(deployment_id))
        return snapshot.values.get("status") if snapshot.values else None

    def resume(self, deployment_id: str, view: DeploymentView | None = None) -> bool:
        """Wake a parked thread so it re-reads the database; False when there was nothing to wake.

        ``view``: the request as the transaction that caused the resume left
        it (a vote's result, an expiry); it saves the thread a read before
        its wait returns, and a decided one ends the thread without reading.
        Never raises for the thread's sake: the vote or expiry that caused
        the resume is already committed, and a thread left behind is caught
        up by the next resume or by `catch_up`. A request with no thread at all
        (its start failed after the request was stored) gets it started here,
        from the database's state.
        """
        config = self._config(deployment_id)
        ctx = ApprovalContext(self.service)
        if view is not None and view.id == deployment_id:
            ctx.out["view_for_next"] = view
        try:
            with self._hold(deployment_id):
                snapshot = self.graph.get_state(config)
                if not snapshot.interrupts:
                    if snapshot.values:
                        return False  # ended, or not parked
                    self._run_start(view if view is not None and view.id == deployment_id else self.service.get(deployment_id))
                    return True
                self.graph.invoke(Command(resume={"recheck": True}), config, context=ctx, durability="exit")
            return True
        except Exception as exc:  # noqa: BLE001 - the database already holds the truth
            log.warning("approval_resume_failed", deployment_id=deployment_id, error=f"{type(exc).__name__}: {exc}")
            return False

    def catch_up(self, deployment_ids: list[str] | None = None) -> int:
        """Resume each parked thread whose request the database has decided (after a crash, at start-up).

        Without ids, the most recently decided requests are checked.
        """
        woken = 0
        for dep_id in self.service.recently_decided() if deployment_ids is None else deployment_ids:
            snapshot = self.graph.get_state(self._config(dep_id))
            if snapshot.interrupts and self.service.get(dep_id).decided and self.resume(dep_id):
                woken += 1
        return woken
