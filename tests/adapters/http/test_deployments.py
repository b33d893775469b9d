"""POST/GET /api/deployments over real HTTP on a real server, on SQLite and Postgres."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.http.webhook_auth import sign
from assistant.review.examples import example_diff
from assistant.storage import Database
from assistant.storage.outbox_tables import outbox_jobs
from assistant.storage.tables import audit_log, deployments

SECRET = "test-webhook-secret"
# Refusals at the edge touch no storage path worth running twice: SQLite only.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

DOSE_DIFF = example_diff(
    "pump/dosing.py::MAX_DAILY_DOSE_MG_PER_KG = 12\ndef max_dose(weight_kg):\n    return weight_kg * MAX_DAILY_DOSE_MG_PER_KG"
)
SECRET_DIFF = example_diff('src/cfg.py::AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"')
CLEAN_DIFF = example_diff("src/util.py::def add(a, b):\n    return a + b")


@pytest.fixture
def config() -> Any:
    """The demo config with its Teams cards going to a local connector (the Bot Framework Emulator's way), so
    Teams is a chat that can take cards; nothing listens there, so a card job only retries."""
    from assistant.config import DEMO_CONFIG, parse_config

    return parse_config({**DEMO_CONFIG, "teams": {"service_url": "http://127.0.0.1:9/"}}, "demo")


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated database (the http conftest's is bare): SQLite file and Postgres."""
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


def _request(diff: str = DOSE_DIFF, **overrides: Any) -> dict[str, Any]:
    body = {
        "service": "infusion-pump-controller",
        "version": "2.4.1",
        "environment": "production",
        "repository": "acme/pump",
        "commit": "9f1c2e7",
        "requested_by": "dev@example.org",
        "authors": ["dev@example.org"],
        "diff": diff,
        "callback_url": "https://ci.example.org/hooks/gitops",
    }
    body.update(overrides)
    return body


def _post(client: Any, body: dict[str, Any] | bytes, *, key: str | None = None, secret: str = SECRET, content_type: str = "application/json") -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**sign(secret, body=raw), "Content-Type": content_type}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/api/deployments", content=raw, headers=headers)


def _get(client: Any, dep_id: str, secret: str = SECRET) -> Any:
    return client.get(f"/api/deployments/{dep_id}", headers=sign(secret, body=b""))


def _count(db: Database, table: Any, *where: Any) -> int:
    with db.read() as s:
        return s.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def test_a_signed_request_is_reviewed_and_waits_for_the_required_approvals(make_app, serve, db: Database) -> None:
    with serve(make_app()) as client:
        created = _post(client, _request())
        assert created.status_code == 202, created.text
        body = created.json()
        assert body["id"].startswith("dep_") and created.headers["location"] == f"/api/deployments/{body['id']}"
        assert body["status"] == "pending"
        assert body["risk"]["level"] == "critical" and 0 <= body["risk"]["score"] <= 100
        assert {(r["role"], r["count"]) for r in body["required_approvals"]} == {("approver", 2), ("clinical-safety-officer", 1)}
        assert body["votes"] == [] and body["decided_at"] is None
        assert [f["rule"] for f in body["findings"]] and all(f["category"] for f in body["findings"])
        assert body["service"] == "infusion-pump-controller" and body["authors"] == ["dev@example.org"]
        read = _get(client, body["id"])
    assert read.status_code == 200 and read.json() == body
    # the card goes to the one configured chat (Teams: the demo config names a conversation; no Slack token here)
    assert _count(db, outbox_jobs, outbox_jobs.c.kind == "teams.post_card") == 1
    assert _count(db, outbox_jobs, outbox_jobs.c.kind.like("slack.%")) == 0
    assert _count(db, audit_log, audit_log.c.action == "deployment.requested", audit_log.c.subject == body["id"]) == 1


def test_a_policy_deny_blocks_the_request_with_its_reasons_and_calls_back(make_app, serve, db: Database) -> None:
    with serve(make_app()) as client:
        body = _post(client, _request(SECRET_DIFF)).json()
    assert body["status"] == "blocked" and body["decided_by"] == "policy" and body["decided_at"]
    assert any(v["rule"] == "no-hardcoded-secrets" for v in body["violations"])
    assert "hardcoded secret" in body["reason"]
    assert _count(db, outbox_jobs, outbox_jobs.c.kind == "teams.blocked_notice") == 1
    assert _count(db, outbox_jobs, outbox_jobs.c.kind == "teams.post_card") == 0
    assert _count(db, outbox_jobs, outbox_jobs.c.kind == "deployment.callback") == 1


def test_a_change_the_policy_allows_is_approved_by_the_policy_without_a_card(make_app, serve, db: Database) -> None:
    with serve(make_app()) as client:
        body = _post(client, _request(CLEAN_DIFF, environment="staging")).json()
    assert body["status"] == "approved" and body["decided_by"] == "policy" and body["required_approvals"] == []
    assert _count(db, outbox_jobs, outbox_jobs.c.kind == "teams.post_card") == 0
    assert _count(db, outbox_jobs, outbox_jobs.c.kind == "deployment.callback") == 1


def test_the_same_idempotency_key_returns_the_same_request_and_never_a_second_card(make_app, serve, db: Database) -> None:
    with serve(make_app()) as client:
        first = _post(client, _request(), key="run-42-9f1c2e7")
        again = _post(client, _request(), key="run-42-9f1c2e7")
        other = _post(client, _request(version="2.4.2"), key="run-42-9f1c2e7")
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert other.status_code == 409 and other.json()["error"] == "idempotency_conflict"
    assert first.json()["id"] in other.json()["message"]
    assert _count(db, deployments) == 1
    assert _count(db, outbox_jobs, outbox_jobs.c.kind == "teams.post_card") == 1


@sqlite_only
@pytest.mark.parametrize(
    ("raw", "content_type", "code", "phrase"),
    [
        (b'{"service": ', "application/json", "bad_json", "not valid JSON"),
        (b"[1, 2]", "application/json", "invalid_request", "JSON object"),
        (json.dumps({k: v for k, v in _request().items() if k != "commit"}).encode(), "application/json", "invalid_request", "commit: is required"),
        (json.dumps(_request(calback_url="x")).encode(), "application/json", "invalid_request", "calback_url: is not a known field"),
        (json.dumps(_request(callback_url="ftp://ci")).encode(), "application/json", "invalid_request", "callback_url"),
        (json.dumps(_request(service="  ")).encode(), "application/json", "invalid_request", "service"),
        (json.dumps(_request(diff="not a diff\n@@ -1 +1 @@\n")).encode(), "application/json", "invalid_diff", "diff"),
        (json.dumps(_request()).encode(), "text/plain", "bad_json", "Content-Type: application/json"),
    ],
    ids=["bad-json", "not-object", "missing-field", "unknown-field", "bad-callback", "blank-service", "bad-diff", "content-type"],
)
def test_bad_bodies_get_a_400_that_says_what_to_fix_and_store_nothing(make_app, serve, db: Database, raw: bytes, content_type: str, code: str, phrase: str) -> None:
    with serve(make_app()) as client:
        response = _post(client, raw, content_type=content_type)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == code and phrase in response.json()["message"]
    assert _count(db, deployments) == 0 and _count(db, audit_log) == 0


@sqlite_only
def test_unsigned_or_mis_signed_requests_are_refused_and_nothing_is_stored(make_app, serve, db: Database) -> None:
    raw = json.dumps(_request()).encode()
    with serve(make_app()) as client:
        unsigned = client.post("/api/deployments", content=raw, headers={"Content-Type": "application/json"})
        wrong = _post(client, _request(), secret="not-the-secret")
        get_unsigned = client.get("/api/deployments/dep_x")
    assert unsigned.status_code == wrong.status_code == get_unsigned.status_code == 401
    assert unsigned.json()["error"] == "unauthorized"
    assert _count(db, deployments) == 0 and _count(db, outbox_jobs) == 0


@sqlite_only
def test_without_a_webhook_secret_the_api_answers_503(make_app, serve, settings, db: Database) -> None:
    app = make_app(settings=settings.model_copy(update={"webhook_secret": None}))
    with serve(app) as client:
        response = client.post("/api/deployments", content=b"{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 503 and "GITOPS_HEALTH_WEBHOOK_SECRET" in response.json()["message"]


@sqlite_only
def test_a_body_over_5_mib_is_refused_with_413(make_app, serve, db: Database) -> None:
    big = _request("+" * (5 * 1024 * 1024 + 10))
    with serve(make_app()) as client:
        response = _post(client, big)
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"
    assert _count(db, deployments) == 0


@sqlite_only
def test_a_bad_idempotency_key_and_an_unknown_id_are_explained(make_app, serve, db: Database) -> None:
    with serve(make_app()) as client:
        bad_key = _post(client, _request(), key="x" * 300)
        missing = _get(client, "dep_00000000000000000000")
    assert bad_key.status_code == 400 and bad_key.json()["error"] == "invalid_idempotency_key"
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_deployment"


@sqlite_only
def test_openapi_describes_both_routes_and_the_request_body(make_app, serve, db: Database) -> None:
    with serve(make_app()) as client:
        spec = client.get("/openapi.json").json()
    post = spec["paths"]["/api/deployments"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["required"]) >= {"service", "version", "environment", "repository", "commit", "requested_by", "diff"}
    assert any(p["name"] == "Idempotency-Key" for p in post["parameters"])
    # read by the route itself (no header dependency), still documented
    assert {(p["name"], p["in"]) for p in post["parameters"]} >= {("X-GitOps-Timestamp", "header"), ("X-GitOps-Signature", "header")}
    assert "/api/deployments/{deployment_id}" in spec["paths"]


def test_the_server_builds_the_workflow_at_start_up_as_app_state_approvals(make_app, serve, db: Database) -> None:
    app = make_app()
    with serve(app) as client:
        assert client.get("/healthz").status_code == 200
        workflow = app.state.approvals
        assert type(workflow).__name__ == "ApprovalWorkflow"
        body = _post(client, _request()).json()
        assert workflow.waiting_for(body["id"])["deployment_id"] == body["id"]


class _Sink:
    """A loopback CI endpoint that records what it is sent."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.received: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's spelling
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                sink.received.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()
                sink.arrived.set()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/gitops"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Sink:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_vote_in_chat_decides_and_ci_gets_the_same_object_back_signed(make_app, serve, db: Database) -> None:
    """End to end in one server: the request, a vote through app.state.approvals, the outbox worker's signed callback."""
    from adapters.http.background import install_outbox
    from assistant.signing import verify

    app = make_app()
    install_outbox(app)
    with _Sink() as sink, serve(app) as client:
        body = _post(client, _request(DOSE_DIFF, callback_url=sink.url)).json()
        workflow = app.state.approvals
        for person in ("alice", "bob"):
            workflow.cast_vote(body["id"], person, "approve", "slack")
        assert not sink.arrived.wait(0.3)  # pending: nothing to call back yet
        decided = workflow.cast_vote(body["id"], "erin", "approve", "teams")
        assert decided.decided
        assert sink.arrived.wait(20), "no callback arrived"
        final = _get(client, body["id"]).json()
    headers, raw = sink.received[0]
    verify(SECRET, headers["X-GitOps-Timestamp"], headers["X-GitOps-Signature"], raw)
    assert json.loads(raw) == final
    assert final["status"] == "approved" and final["decided_by"] == "erin" and len(final["votes"]) == 3
    assert len(sink.received) == 1


def _serve_process(tmp_path: Path, database_url: str, name: str) -> tuple[subprocess.Popen[str], str]:
    import os
    import socket
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_HEALTH_", "SLACK_", "TEAMS_"))}
    env.update(GITOPS_HEALTH_DATA_DIR=str(tmp_path / name), GITOPS_HEALTH_DATABASE_URL=database_url, GITOPS_HEALTH_WEBHOOK_SECRET=SECRET)
    cli = Path(sys.executable).with_name("gitops-health")
    proc = subprocess.Popen([str(cli), "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    return proc, f"http://127.0.0.1:{port}"


def _until_up(proc: subprocess.Popen[str], base: str) -> None:
    import httpx

    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "server did not come up"
        time.sleep(0.1)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_server_processes_on_one_postgres_share_requests_and_idempotency_keys(database_url: str, db: Database, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    servers = [_serve_process(tmp_path, database_url, name) for name in ("a", "b")]
    try:
        for proc, base in servers:
            _until_up(proc, base)
        raw = json.dumps(_request()).encode()

        def post(base: str) -> httpx.Response:
            headers = {**sign(SECRET, body=raw), "Content-Type": "application/json", "Idempotency-Key": "run-77"}
            return httpx.post(f"{base}/api/deployments", content=raw, headers=headers, timeout=60)

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(post, [base for _, base in servers] * 2))
        assert sorted(a.status_code for a in answers) == [200, 200, 200, 202]
        assert len({a.json()["id"] for a in answers}) == 1
        dep_id = answers[0].json()["id"]
        # a request made through one process is read, and decided, through the other's database
        from assistant.approvals import ApprovalService
        from assistant.config import DEMO_CONFIG, parse_config

        ApprovalService(db, parse_config(DEMO_CONFIG)).cast_vote(dep_id, "alice", "reject", "web", "not today")
        for _, base in servers:
            read = httpx.get(f"{base}/api/deployments/{dep_id}", headers=sign(SECRET, body=b""), timeout=30).json()
            assert read["status"] == "rejected" and read["decided_by"] == "alice"
    finally:
        for proc, _ in servers:
            proc.terminate()
        for proc, _ in servers:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    assert _count(db, deployments) == 1
    # one request, so one set of jobs: the decision's callback (the demo config has no chat that can take cards:
    # no SLACK_BOT_TOKEN, and Teams at a remote service URL without TEAMS_APP_ID)
    assert _count(db, outbox_jobs, outbox_jobs.c.kind == "deployment.callback") == 1
    assert _count(db, outbox_jobs, outbox_jobs.c.kind.like("teams.%")) == 0
