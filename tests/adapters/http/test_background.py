"""The server's background work: a request nobody decides expires on time, and CI hears it from the running server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.http.background import install_outbox
from assistant import outbox
from assistant.callbacks import KIND
from assistant.config import DEMO_CONFIG, parse_config
from assistant.outbox_worker import WorkerOptions
from assistant.review.examples import example_diff
from assistant.signing import sign, verify
from assistant.storage import Database
from tests.support.ci_sink import CiSink
from tests.support.deployments import post_deployment, request_fields

SECRET = "test-webhook-secret"  # what the http conftest's settings carry
DOSE_DIFF = example_diff(
    "pump/dosing.py::MAX_DAILY_DOSE_MG_PER_KG = 12\ndef max_dose(weight_kg):\n    return weight_kg * MAX_DAILY_DOSE_MG_PER_KG"
)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


def test_an_undecided_request_expires_and_the_callback_says_so(make_app: Any, serve: Any, db: Database) -> None:
    config = parse_config({**DEMO_CONFIG, "approvals": {"expire_after_minutes": 0.02}}, "test")  # 1.2 s
    app = make_app(config=config, db=db)
    worker = install_outbox(app, options=WorkerOptions(poll_s=0.05, backoff_base_s=0.05, backoff_max_s=0.2))
    with CiSink() as sink, serve(app) as client:
        assert KIND in outbox.handlers() and worker.running
        asked = time.monotonic()  # before the POST: the request's clock starts inside it, however long the answer takes
        created = post_deployment(client, SECRET, request_fields(DOSE_DIFF, callback_url=sink.url))
        assert created.status_code == 202, created.text
        assert created.json()["status"] == "pending"

        (call,) = sink.wait_for(1, timeout=20)
        waited = time.monotonic() - asked
        verify(SECRET, call.headers["X-GitOps-Timestamp"], call.headers["X-GitOps-Signature"], call.body, now=call.at)
        sent = json.loads(call.body)
        assert (sent["id"], sent["status"], sent["decided_by"]) == (created.json()["id"], "expired", "expiry")
        assert sent["reason"] == "no decision within 0.02 minutes"
        assert 1.0 <= waited < 10  # not before its time, and soon after it

        now = client.get(f"/api/deployments/{sent['id']}", headers=sign(SECRET, None, b""))
        assert now.json() == sent
    assert KIND not in outbox.handlers()  # the stopped server no longer sends callbacks
    assert not worker.running


def test_metrics_show_the_outbox_queue_and_how_late_it_runs(make_app: Any, serve: Any, db: Database) -> None:
    from datetime import timedelta

    from assistant import clock

    app = make_app(db=db)
    install_outbox(app, options=WorkerOptions(poll_s=0.05))
    with db.session() as s:  # a kind no process here has a handler for: it waits, and the gauge says so
        outbox.enqueue(s, "test.unhandled", {"deployment_id": "dep_1"}, run_at=clock.now() - timedelta(seconds=30))
        outbox.enqueue(s, "test.unhandled", {"deployment_id": "dep_2"}, run_at=clock.now() + timedelta(hours=1))
    with serve(app) as client:
        text = client.get("/metrics").text
    assert 'gitops_health_outbox_jobs{kind="test.unhandled",status="pending"} 2.0' in text
    (late,) = [line for line in text.splitlines() if line.startswith('gitops_health_outbox_oldest_due_seconds{kind="test.unhandled"}')]
    assert 29 <= float(late.split()[-1]) < 120
