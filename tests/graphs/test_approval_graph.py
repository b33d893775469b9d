"""The approval graph parks in interrupt() until the votes settle a request, durably: a process killed
mid-approval comes back to the same wait, and the database stays the truth."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import re2  # noqa: F401 - RE2's library must load before regopy's, or a later re2.compile aborts the process

from assistant.approvals import ApprovalService, SelfApproval
from assistant.config import DEMO_CONFIG, parse_config
from assistant.deployments import DeploymentRequest
from assistant.review.examples import example_diff
from assistant.storage import Database
from graphs.approval import ApprovalWorkflow, checkpoint_path

ROOT = Path(__file__).resolve().parents[2]
DOSE_DIFF = example_diff(
    "pump/dosing.py::MAX_DAILY_DOSE_MG_PER_KG = 12\ndef max_dose(weight_kg):\n    return weight_kg * MAX_DAILY_DOSE_MG_PER_KG"
)  # approver x2 + clinical-safety-officer
SECRET_DIFF = example_diff('src/cfg.py::AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"')


def _req(diff: str = DOSE_DIFF, **overrides: Any) -> DeploymentRequest:
    fields: dict[str, Any] = {
        "service": "infusion-pump-controller", "version": "2.4.1", "environment": "production", "repository": "acme/pump",
        "commit": "9f1c2e7", "requested_by": "dev@example.org", "authors": ["dev@example.org"], "diff": diff,
    }
    fields.update(overrides)
    return DeploymentRequest(**fields)


@pytest.fixture(scope="module")
def policies() -> Any:
    from assistant.policy import PolicyEngine

    return PolicyEngine.load()


def _workflow(db: Database, policies: Any) -> ApprovalWorkflow:
    return ApprovalWorkflow.open(ApprovalService(db, parse_config(DEMO_CONFIG), policies=policies, chats=("teams",)))


@pytest.fixture
def workflow(db: Database, policies: Any) -> Iterator[ApprovalWorkflow]:
    wf = _workflow(db, policies)
    yield wf
    wf.close()


def test_a_pending_request_parks_its_thread_until_the_votes_decide_it(workflow: ApprovalWorkflow) -> None:
    view, created = workflow.request_deployment(_req())
    assert created and view.status == "pending"
    waiting = workflow.waiting_for(view.id)
    assert waiting == {
        "deployment_id": view.id,
        "waiting_for": [{"role": "approver", "count": 2}, {"role": "clinical-safety-officer", "count": 1}],
        "votes": 0,
    }
    workflow.cast_vote(view.id, "alice", "approve", "slack")
    assert workflow.waiting_for(view.id)["waiting_for"] == [{"role": "approver", "count": 1}, {"role": "clinical-safety-officer", "count": 1}]
    workflow.cast_vote(view.id, "bob", "approve", "teams")
    assert workflow.waiting_for(view.id) is not None and workflow.thread_status(view.id) == "pending"
    result = workflow.cast_vote(view.id, "erin", "approve", "slack")
    assert result.decided and result.view.status == "approved"
    assert workflow.waiting_for(view.id) is None and workflow.thread_status(view.id) == "approved"


def test_parking_and_resuming_save_in_the_calling_thread(workflow: ApprovalWorkflow, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run of the approval graph saves its checkpoint in the thread that runs it: no thread is started per
    POST or per vote (LangGraph's default is a fresh thread pool per run), and the saves are done on return."""
    import threading

    started: list[str] = []
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        started.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    view, _ = workflow.request_deployment(_req())
    assert workflow.waiting_for(view.id) is not None  # parked, durably: read back from the store
    assert workflow.cast_vote(view.id, "bob", "reject", "slack", "no dose-cap test").decided  # resumes the thread
    assert workflow.thread_status(view.id) == "rejected"
    assert started == []


def test_only_the_deciding_vote_wakes_the_thread(workflow: ApprovalWorkflow) -> None:
    """A vote that leaves the request pending is the database's alone: the parked checkpoint stays as it was."""
    view, _ = workflow.request_deployment(_req())
    parked = workflow.graph.get_state(workflow._config(view.id)).config["configurable"]["checkpoint_id"]
    workflow.cast_vote(view.id, "alice", "approve", "slack")
    assert workflow.graph.get_state(workflow._config(view.id)).config["configurable"]["checkpoint_id"] == parked
    assert workflow.waiting_for(view.id)["votes"] == 1  # read from the database
    workflow.cast_vote(view.id, "bob", "approve", "teams")
    assert workflow.cast_vote(view.id, "erin", "approve", "slack").decided
    assert workflow.thread_status(view.id) == "approved" and workflow.waiting_for(view.id) is None


def test_a_refused_vote_leaves_the_thread_waiting_as_it_was(workflow: ApprovalWorkflow) -> None:
    view, _ = workflow.request_deployment(_req(authors=["alice@example.org"]))
    before = workflow.waiting_for(view.id)
    with pytest.raises(SelfApproval):
        workflow.cast_vote(view.id, "alice", "approve", "slack")
    assert workflow.waiting_for(view.id) == before
    workflow.cast_vote(view.id, "bob", "reject", "teams", "needs a dose-cap test")
    assert workflow.thread_status(view.id) == "rejected"


def test_a_request_the_policy_settles_never_waits(workflow: ApprovalWorkflow) -> None:
    view, _ = workflow.request_deployment(_req(SECRET_DIFF))
    assert view.status == "blocked"
    assert workflow.waiting_for(view.id) is None and workflow.thread_status(view.id) == "blocked"


def test_an_idempotent_replay_starts_no_second_thread(workflow: ApprovalWorkflow) -> None:
    first, _ = workflow.request_deployment(_req(), "run-1")
    again, created = workflow.request_deployment(_req(), "run-1")
    assert not created and again.id == first.id
    assert workflow.waiting_for(first.id)["votes"] == 0


def test_a_thread_left_behind_catches_up_with_the_database(workflow: ApprovalWorkflow) -> None:
    """Votes committed without a resume (a crash between the two) are found by the next look at the database."""
    view, _ = workflow.request_deployment(_req())
    for person in ("alice", "bob", "erin"):
        workflow.service.cast_vote(view.id, person, "approve", "web")  # the service alone: no resume
    assert workflow.thread_status(view.id) == "pending" and workflow.waiting_for(view.id) is not None
    assert workflow.catch_up() == 1  # the recently decided requests, as at server start-up
    assert workflow.thread_status(view.id) == "approved" and workflow.waiting_for(view.id) is None
    assert workflow.catch_up([view.id]) == 0


def test_a_late_click_on_a_decided_request_brings_its_thread_along(workflow: ApprovalWorkflow) -> None:
    from assistant.approvals import AlreadyDecided

    view, _ = workflow.request_deployment(_req())
    workflow.service.cast_vote(view.id, "bob", "reject", "web", "not this week")  # decided without a resume
    with pytest.raises(AlreadyDecided):
        workflow.cast_vote(view.id, "erin", "approve", "slack")
    assert workflow.thread_status(view.id) == "rejected"


def test_simultaneous_votes_in_one_process_leave_one_consistent_thread(workflow: ApprovalWorkflow) -> None:
    from concurrent.futures import ThreadPoolExecutor

    view, _ = workflow.request_deployment(_req())
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda p: workflow.cast_vote(view.id, p, "approve", "slack"), ("alice", "bob", "erin")))
    assert sum(r.decided for r in results) == 1
    assert workflow.thread_status(view.id) == "approved" and workflow.waiting_for(view.id) is None


def test_expiry_ends_the_thread(db: Database, policies: Any) -> None:
    from datetime import timedelta

    from freezegun import freeze_time

    service = ApprovalService(db, parse_config({**DEMO_CONFIG, "approvals": {"expire_after_minutes": 1}}), policies=policies)
    wf = ApprovalWorkflow.open(service)
    try:
        with freeze_time("2026-03-01T10:00:00Z") as frozen:
            view, _ = wf.request_deployment(_req())
            frozen.tick(timedelta(minutes=2))
            assert [v.id for v in wf.expire_due()] == [view.id]
        assert wf.thread_status(view.id) == "expired"
    finally:
        wf.close()


CRASHER = r"""
import json, os, signal, sys
import re2
from assistant.approvals import ApprovalService
from assistant.config import DEMO_CONFIG, parse_config
from assistant.deployments import DeploymentRequest
from assistant.storage import Database
from graphs.approval import ApprovalWorkflow

url, body = sys.argv[1], json.loads(sys.argv[2])
wf = ApprovalWorkflow.open(ApprovalService(Database(url), parse_config(DEMO_CONFIG)))
view, _ = wf.request_deployment(DeploymentRequest(**body))
wf.cast_vote(view.id, "alice", "approve", "slack")
print(view.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no clean shutdown: connections and checkpoints left as they are
"""


def test_a_process_killed_mid_approval_loses_nothing(database_url: str, db: Database, policies: Any) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CRASHER, database_url, _req().model_dump_json()],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    dep_id = proc.stdout.strip()
    wf = _workflow(db, policies)  # a new process' view: fresh connections to the same stores
    try:
        assert wf.waiting_for(dep_id) == {
            "deployment_id": dep_id,
            "waiting_for": [{"role": "approver", "count": 1}, {"role": "clinical-safety-officer", "count": 1}],
            "votes": 1,
        }
        assert [v.person for v in wf.get(dep_id).votes] == ["alice"]
        wf.cast_vote(dep_id, "bob", "approve", "teams")
        result = wf.cast_vote(dep_id, "erin", "approve", "teams")
        assert result.decided and wf.thread_status(dep_id) == "approved"
    finally:
        wf.close()


def test_sqlite_checkpoints_live_beside_the_database(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'data' / 'gitops-health.db'}")
    assert checkpoint_path(db) == tmp_path / "data" / "gitops-health.checkpoints.db"
    with pytest.raises(ValueError, match="in-memory"):
        checkpoint_path(Database("sqlite:///:memory:"))
    db.dispose()


HOLDER = r"""
import sys
from assistant.storage import Database
from graphs.approval import _open_store

_saver, close, locks = _open_store(Database(sys.argv[1]))
with locks.hold(sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
close()
"""


def test_a_resume_waits_while_another_process_resumes_the_same_thread(database_url: str, db: Database, policies: Any) -> None:
    """`serve --workers N`: two processes resuming one thread at once would fork its checkpoints; the second waits."""
    import threading

    wf = _workflow(db, policies)
    holder = None
    try:
        view, _ = wf.request_deployment(_req())
        others = (wf.request_deployment(_req(commit=f"other{i}"))[0] for i in range(100))
        other = next(o for o in others if not _same_stripe(o.id, view.id))  # its resume takes another in-process stripe
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, database_url, view.id],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        # A reject decides, so its vote resumes the thread (votes that leave a request pending do not).
        voted = threading.Thread(target=wf.cast_vote, args=(view.id, "alice", "reject", "slack", "not this week"))
        voted.start()
        voted.join(1.5)
        assert voted.is_alive(), "the resume did not wait for the other process's hold on the thread"
        assert [v.person for v in wf.get(view.id).votes] == ["alice"]  # the vote itself is committed already
        assert wf.thread_status(view.id) == "pending"  # the thread is untouched while the other process holds it
        wf.cast_vote(other.id, "alice", "reject", "slack", "not this week")  # another thread is not held up
        assert wf.thread_status(other.id) == "rejected"
        assert holder.stdin is not None
        holder.stdin.close()
        voted.join(30)
        assert not voted.is_alive()
        assert wf.thread_status(view.id) == "rejected"
    finally:
        if holder is not None:
            if holder.stdin is not None and not holder.stdin.closed:
                holder.stdin.close()
            holder.wait(30)
        wf.close()


def _same_stripe(a: str, b: str) -> bool:
    from graphs.approval import _stripe

    return _stripe(a) == _stripe(b)


LOCKER = r"""
import secrets, sys, threading, time
from pathlib import Path
from graphs.approval import _FileLocks, _stripe

locks, stripes, errors = _FileLocks(Path(sys.argv[1])), [threading.Lock() for _ in range(64)], []
Path(sys.argv[1] + "." + sys.argv[2]).touch()
while len(list(Path(sys.argv[1]).parent.glob("*.ready"))) < 2:  # both processes start together
    time.sleep(0.01)

def loop() -> None:
    for _ in range(400):
        dep = "dep_" + secrets.token_hex(10)
        try:
            with stripes[_stripe(dep)], locks.hold(dep):  # as ApprovalWorkflow._hold takes them
                time.sleep(0.001)
        except OSError as exc:
            errors.append(repr(exc))

threads = [threading.Thread(target=loop) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(errors), errors[:1], flush=True)
"""


def test_thread_locks_taken_by_many_threads_in_two_processes_never_fail(tmp_path: Path) -> None:
    """Record locks belong to the process, so the kernel's deadlock detection misreads two processes' threads
    waiting for each other's stripes as a cycle (EDEADLK); with `serve --workers 2` every request takes one."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(tmp_path / "locks"), f"{i}.ready"],
            stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert outs == ["0 []", "0 []"]


def test_a_request_whose_thread_never_started_gets_it_on_its_deciding_vote(workflow: ApprovalWorkflow) -> None:
    """The request is stored before its thread starts; a start that failed (logged, never the caller's error)
    is made good by the next resume (the deciding vote, an expiry), from the database's state."""
    view, created = workflow.service.request_deployment(_req())  # stored, no thread (as if the start had failed)
    assert created and workflow.thread_status(view.id) is None
    workflow.cast_vote(view.id, "alice", "approve", "slack")
    assert [v.person for v in workflow.get(view.id).votes] == ["alice"] and workflow.thread_status(view.id) is None
    workflow.cast_vote(view.id, "bob", "approve", "teams")
    assert workflow.cast_vote(view.id, "erin", "approve", "teams").decided
    assert workflow.thread_status(view.id) == "approved" and workflow.waiting_for(view.id) is None
