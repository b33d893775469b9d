"""The CI callback: signed like the webhooks, retried until a 2xx, audited per attempt, surviving kill -9 of the server."""

from __future__ import annotations

# RE2 before regopy (see tests/adapters/http/conftest.py).
import assistant.redact  # noqa: F401  isort: skip

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from assistant import audit, clock
from assistant.approvals import ApprovalService, load_view
from assistant.callbacks import KIND, CallbackSender, safe_url
from assistant.config import DEMO_CONFIG, parse_config
from assistant.deployments import DeploymentRequest
from assistant.outbox_worker import OutboxWorker, WorkerOptions
from assistant.review.examples import example_diff
from assistant.signing import sign, verify
from assistant.storage import Database
from assistant.storage.outbox_tables import outbox_attempts, outbox_jobs
from tests.support.ci_sink import CiSink, Received
from tests.support.servers import CLI, clean_environ

SECRET = "callback-test-secret"
# A hard-coded cloud key: the policy blocks the request outright, so the callback is due at once.
BLOCKED_DIFF = example_diff('src/cfg.py::AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"')
FAST = WorkerOptions(backoff_base_s=0.01, backoff_max_s=0.05, poll_s=0.05)


def request(callback_url: str | None, diff: str = BLOCKED_DIFF) -> DeploymentRequest:
    return DeploymentRequest(
        service="infusion-pump-controller",
        version="2.4.1",
        environment="production",
        repository="acme/pump",
        commit="9f1c2e7",
        requested_by="dev@example.org",
        authors=["dev@example.org"],
        diff=diff,
        callback_url=callback_url,
    )


def blocked_deployment(db: Database, callback_url: str | None) -> str:
    service = ApprovalService(db, parse_config(DEMO_CONFIG))
    view, created = service.request_deployment(request(callback_url))
    assert created and view.status == "blocked"
    return view.id


def callback_audit(db: Database, dep_id: str) -> list[dict[str, Any]]:
    return [r.data for r in audit.records(db) if r.subject == dep_id and r.action == "deployment.callback_attempt"]


def job_row(db: Database) -> Any:
    with db.read() as s:
        return s.execute(select(outbox_jobs).where(outbox_jobs.c.kind == KIND)).one()


def assert_signed(call: Received, secret: str = SECRET) -> None:
    """The receiver's check, as a CI job would do it: signature over the raw body, timestamp near its clock."""
    verify(secret, call.headers.get("X-GitOps-Timestamp"), call.headers.get("X-GitOps-Signature"), call.body, now=call.at)


async def drain(worker: OutboxWorker, until: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, "the callback was not settled in time"
        await worker.run_once()
        await asyncio.sleep(0.01)


@pytest.fixture
def sink_factory() -> Iterator[Any]:
    sinks: list[CiSink] = []

    def make(*script: Any) -> CiSink:
        sink = CiSink(list(script)).__enter__()
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.__exit__(None, None, None)


# --------------------------------------------------------------------------- in-process


async def test_the_decision_reaches_ci_signed_after_the_first_failures_and_every_attempt_is_audited(db: Database, sink_factory: Any) -> None:
    sink = sink_factory(500, 503)
    dep_id = blocked_deployment(db, sink.url + "?token=ci-secret-token")
    worker = OutboxWorker(db, handlers={KIND: CallbackSender(db, SECRET, timeout_s=2)}, options=FAST)

    await drain(worker, lambda: sink.delivered())

    calls = sink.calls
    assert [c.answered for c in calls] == [500, 503, 200]
    for call in calls:
        assert_signed(call)
        assert call.path == "/hooks/gitops?token=ci-secret-token"
        assert call.headers["Content-Type"] == "application/json"
        assert call.headers["X-GitOps-Event"] == "deployment.decided"
    assert [c.headers["X-GitOps-Attempt"] for c in calls] == ["1", "2", "3"]
    assert len({c.headers["X-GitOps-Delivery"] for c in calls}) == 1  # the receiver's dedupe key
    assert json.loads(calls[-1].body) == load_view(db, dep_id).model_dump(mode="json")
    assert json.loads(calls[-1].body)["status"] == "blocked"

    records = callback_audit(db, dep_id)
    assert [(r["attempt"], r["outcome"], r["status"]) for r in records] == [(1, "failed", 500), (2, "failed", 503), (3, "delivered", 200)]
    assert all(r["url"] == sink.url and "token" not in json.dumps(r) for r in records)
    assert records[0]["error"] == "answered 500 Internal Server Error"
    assert audit.verify(db).ok
    assert job_row(db).status == "done"
    await worker.run_once()
    assert len(sink.calls) == 3  # delivered is delivered


async def test_a_receiver_that_does_not_answer_in_time_is_tried_again(db: Database, sink_factory: Any) -> None:
    sink = sink_factory(("hang", 5))
    dep_id = blocked_deployment(db, sink.url)
    worker = OutboxWorker(db, handlers={KIND: CallbackSender(db, SECRET, timeout_s=0.3)}, options=FAST)

    await drain(worker, lambda: sink.delivered())

    records = callback_audit(db, dep_id)
    assert [(r["outcome"], r.get("error")) for r in records] == [("failed", "no answer within 0.3 s"), ("delivered", None)]
    assert 250 <= records[0]["duration_ms"] < 5000


async def test_a_retry_after_from_the_receiver_sets_the_next_attempt(db: Database, sink_factory: Any) -> None:
    sink = sink_factory((429, {"Retry-After": "120"}))
    blocked_deployment(db, sink.url)
    worker = OutboxWorker(db, handlers={KIND: CallbackSender(db, SECRET)}, options=FAST)
    before = clock.now().timestamp()

    assert await worker.run_once() == 1

    row = job_row(db)
    assert row.status == "pending" and row.last_error.endswith("answered 429 Too Many Requests")
    assert before + 119 < row.run_at < before + 125
    assert await worker.run_once() == 0 and len(sink.calls) == 1


async def test_a_redirect_is_not_followed_and_counts_as_a_failure(db: Database, sink_factory: Any) -> None:
    sink = sink_factory((302, {"Location": "http://127.0.0.1:9/elsewhere"}))
    dep_id = blocked_deployment(db, sink.url)
    worker = OutboxWorker(db, handlers={KIND: CallbackSender(db, SECRET)}, options=FAST)
    await drain(worker, lambda: sink.delivered())
    assert [r["status"] for r in callback_audit(db, dep_id)] == [302, 200]


async def test_without_a_webhook_secret_nothing_unsigned_is_sent_and_the_job_waits(db: Database, sink_factory: Any) -> None:
    sink = sink_factory()
    dep_id = blocked_deployment(db, sink.url)
    secret: list[str | None] = [None]
    worker = OutboxWorker(db, handlers={KIND: CallbackSender(db, lambda: secret[0])}, options=FAST)

    assert await worker.run_once() == 1
    assert sink.calls == []
    (record,) = callback_audit(db, dep_id)
    assert record["outcome"] == "failed" and "GITOPS_HEALTH_WEBHOOK_SECRET is not set" in record["error"]
    assert job_row(db).status == "pending"

    secret[0] = SECRET  # configured later: the waiting job goes out
    await drain(worker, lambda: sink.delivered())
    assert_signed(sink.calls[0])


async def test_a_job_for_an_unknown_deployment_gives_up(db: Database) -> None:
    from assistant import outbox

    with db.session() as s:
        outbox.enqueue(s, KIND, {"deployment_id": "dep_doesnotexist"})
    worker = OutboxWorker(db, handlers={KIND: CallbackSender(db, SECRET)}, options=FAST)
    assert await worker.run_once() == 1
    row = job_row(db)
    assert row.status == "failed" and "no deploy request 'dep_doesnotexist'" in row.last_error


def test_urls_in_the_audit_log_lose_credentials_query_and_fragment() -> None:
    assert safe_url("https://user:pw@ci.example.org:8443/hooks/gitops?token=abc#x") == "https://ci.example.org:8443/hooks/gitops"


def test_signing_matches_the_contract_formula() -> None:
    import hashlib
    import hmac

    body = b'{"id":"dep_1"}'
    headers = sign(SECRET, 1767600000, body)
    expected = hmac.new(SECRET.encode(), b"v1:1767600000:" + body, hashlib.sha256).hexdigest()
    assert headers == {"X-GitOps-Timestamp": "1767600000", "X-GitOps-Signature": f"v1={expected}"}
    verify(SECRET, "1767600000", f"v1={expected.upper()}", body, now=1767600100)
    from assistant.signing import SignatureError

    with pytest.raises(SignatureError, match="does not match"):
        verify(SECRET, "1767600000", f"v1={expected}", body + b" ", now=1767600000)
    with pytest.raises(SignatureError, match="400 s old"):
        verify(SECRET, "1767600000", f"v1={expected}", body, now=1767600400)
    with pytest.raises(SignatureError, match="missing X-GitOps-Signature"):
        verify(SECRET, "1767600000", None, body)


# --------------------------------------------------------------------------- a real server, killed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(tmp_path: Path, database_url: str, port: int) -> subprocess.Popen[bytes]:
    env = clean_environ(
        GITOPS_HEALTH_DATA_DIR=str(tmp_path / "data"),
        GITOPS_HEALTH_DATABASE_URL=database_url,
        GITOPS_HEALTH_WEBHOOK_SECRET=SECRET,
        GITOPS_HEALTH_OUTBOX_BACKOFF_BASE_SECONDS="0.2",
        GITOPS_HEALTH_OUTBOX_BACKOFF_MAX_SECONDS="0.5",
        GITOPS_HEALTH_OUTBOX_LEASE_SECONDS="1.5",
        GITOPS_HEALTH_OUTBOX_POLL_SECONDS="0.1",
    )
    proc = subprocess.Popen(
        [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / f"server-{time.monotonic_ns()}.log").open("wb"),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with {proc.returncode}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start within 60 s")


@pytest.mark.slow
def test_kill_9_mid_retry_then_restart_and_the_callback_still_arrives_as_signed(tmp_path: Path, database_url: str, sink_factory: Any) -> None:
    sink = sink_factory(500, ("hang", 60))  # first call fails; the second hangs until the server is dead
    port = _free_port()
    server = _start_server(tmp_path, database_url, port)
    try:
        body = json.dumps(request(sink.url).model_dump(mode="json")).encode()
        answer = httpx.post(
            f"http://127.0.0.1:{port}/api/deployments",
            content=body,
            headers={**sign(SECRET, None, body), "Content-Type": "application/json"},
            timeout=60,
        )
        assert answer.status_code == 202, answer.text
        dep_id = answer.json()["id"]
        assert answer.json()["status"] == "blocked"

        sink.wait_for(2, timeout=30)  # a failure, then a retry in flight ...
        os.kill(server.pid, signal.SIGKILL)  # ... when the server dies
        server.wait(10)

        server = _start_server(tmp_path, database_url, port)
        (delivered,) = [c for c in sink.wait_for(3, timeout=30) if c.answered == 200]
        assert_signed(delivered)
        current = httpx.get(f"http://127.0.0.1:{port}/api/deployments/{dep_id}", headers=sign(SECRET, None, b""), timeout=10)
        assert json.loads(delivered.body) == current.json()
        assert len({c.headers["X-GitOps-Delivery"] for c in sink.calls}) == 1
        assert [c.headers["X-GitOps-Attempt"] for c in sink.calls] == ["1", "2", "3"]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            assert server.wait(30) == 0
        finally:
            if server.poll() is None:
                server.kill()

    db = Database(database_url)
    try:
        with db.read() as s:
            job = s.execute(select(outbox_jobs).where(outbox_jobs.c.kind == KIND)).one()
            tries = s.execute(select(outbox_attempts).where(outbox_attempts.c.job_id == job.id).order_by(outbox_attempts.c.attempt)).all()
        assert job.status == "done"
        assert [t.outcome for t in tries] == ["retry", "lost", "ok"]
        assert tries[0].worker != tries[2].worker  # another process finished it
        # every attempt is audited, the one the kill cut short too (recorded by the attempt after it)
        records = callback_audit(db, dep_id)
        assert [(r["attempt"], r["outcome"]) for r in records] == [(1, "failed"), (2, "lost"), (3, "delivered")]
        assert audit.verify(db).ok
    finally:
        db.dispose()
    assert len(sink.delivered()) == 1
