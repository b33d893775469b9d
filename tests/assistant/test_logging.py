"""Logs are JSON, carry the request id, and never hold a secret or PHI from a request."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi import APIRouter, FastAPI, Request
from pydantic import SecretStr

from assistant.logging import configure_logging, get_logger, scrub_secrets
from tests.support.servers import running

SSN = "123-45-6789"
NAME = "John Smith"
DOB = "1984-03-12"
BEARER = "sk-live-9f8e7d6c5b4a39281706"
SIGNATURE = "v1=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
PHI_BODY = {
    "patient_name": NAME,
    "ssn": SSN,
    "dob": DOB,
    "note": f"patient: {NAME} DOB: {DOB} SSN {SSN}",
    "auth": f"Bearer {BEARER}",
}
FORBIDDEN = (NAME, "Smith", SSN, DOB, BEARER, SIGNATURE[3:])


@contextmanager
def _logging_into_buffer(level: str, *, as_json: bool) -> Iterator[io.StringIO]:
    """Configure logging into a buffer; put the previous configuration back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_structlog = structlog.get_config()
    stream = io.StringIO()
    try:
        configure_logging(level, json=as_json, stream=stream)
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        structlog.configure(**saved_structlog)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    with _logging_into_buffer("INFO", as_json=True) as stream:
        yield stream


def _records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def _app(tmp_path: Path) -> FastAPI:
    from adapters.http.app import create_app
    from assistant.config import DEMO_CONFIG, Settings, parse_config
    from assistant.storage import Database

    settings = Settings(_env_file=None, data_dir=tmp_path, webhook_secret=SecretStr("s"))
    app = create_app(settings, parse_config(DEMO_CONFIG), Database(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    router = APIRouter()
    log = get_logger("tests.intake")

    @router.post("/api/intake")
    async def intake(request: Request) -> None:
        raw = (await request.body()).decode()
        payload = json.loads(raw)
        # The careless things a route might do: log the payload, the raw
        # text, the headers, and fail with the body in the exception.
        log.info("intake_received", payload=payload, raw=raw, headers=dict(request.headers))
        logging.getLogger("some.library").warning("library saw %s", raw)
        raise ValueError(f"cannot process {raw}")

    app.include_router(router)
    return app


def test_no_secret_or_phi_from_a_request_reaches_the_log(tmp_path: Path, log_stream: io.StringIO) -> None:
    with running(_app(tmp_path)) as client:
        response = client.post(
            "/api/intake",
            json=PHI_BODY,
            headers={
                "Authorization": f"Bearer {BEARER}",
                "X-GitOps-Signature": SIGNATURE,
                "Cookie": f"session={BEARER}",
                "X-Request-Id": "req-phi-1",
            },
        )
    assert response.status_code == 500
    text = log_stream.getvalue()
    for forbidden in FORBIDDEN:
        assert forbidden not in text, f"{forbidden!r} reached the log"
    records = _records(log_stream)
    events = [r["event"] for r in records]
    # The log did capture the request: the careless lines, the error and the access line.
    assert "intake_received" in events and "unhandled_error" in events and "http_request" in events
    intake = next(r for r in records if r["event"] == "intake_received")
    assert intake["request_id"] == "req-phi-1"
    assert intake["payload"]["ssn"].startswith("[REDACTED")
    assert "authorization" not in intake["headers"] and "cookie" not in intake["headers"]
    error = next(r for r in records if r["event"] == "unhandled_error")
    assert "ValueError" in error["exception"]
    assert error["request_id"] == "req-phi-1"


def test_one_access_line_per_request_with_template_and_no_query(tmp_path: Path, log_stream: io.StringIO) -> None:
    with running(_app(tmp_path)) as client:
        client.get(f"/healthz?patient={NAME}&ssn={SSN}")
    access = [r for r in _records(log_stream) if r["event"] == "http_request"]
    assert len(access) == 1
    line = access[0]
    assert (line["method"], line["route"], line["status"]) == ("GET", "/healthz", 200)
    assert isinstance(line["duration_ms"], float)
    assert len(line["request_id"]) == 32
    assert {"timestamp", "level", "event", "request_id"} <= set(line)
    assert "patient" not in log_stream.getvalue() and SSN not in log_stream.getvalue()


def test_structlog_and_stdlib_records_are_redacted(log_stream: io.StringIO) -> None:
    get_logger("tests").info("lookup", patient={"name": NAME, "dob": DOB}, detail=f"SSN {SSN}", password="hunter2")
    logging.getLogger("third.party").error("failed for patient: %s", NAME)
    try:
        raise RuntimeError(f"patient: {NAME} token={BEARER}")
    except RuntimeError:
        get_logger("tests").exception("crashed")
    text = log_stream.getvalue()
    for forbidden in (NAME, DOB, SSN, "hunter2", BEARER):
        assert forbidden not in text
    records = _records(log_stream)
    assert [r["event"] for r in records] == ["lookup", "failed for patient: [REDACTED:NAME]", "crashed"]
    assert "password" not in records[0]
    assert records[1]["logger"] == "third.party"


def test_scrub_secrets_masks_credentials_in_free_text() -> None:
    assert scrub_secrets("Authorization: Bearer abcdefghijklmnop") == "Authorization: [REDACTED]"
    assert scrub_secrets("curl -H 'x' token=abc123def") == "curl -H 'x' token=[REDACTED]"
    assert scrub_secrets("postgresql://gitops:hunter2@db/x") == "postgresql://gitops:[REDACTED]@db/x"
    assert scrub_secrets("xoxb-1234567890-abcdefghij") == "[REDACTED]"
    assert scrub_secrets("route /api/deployments/{id} status 200") == "route /api/deployments/{id} status 200"


def test_a_bad_level_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="GITOPS_HEALTH_LOG_LEVEL"):
        configure_logging("LOUD")


def test_console_rendering_for_people_is_redacted_too() -> None:
    with _logging_into_buffer("DEBUG", as_json=False) as stream:
        get_logger("tests").debug("lookup", note=f"patient: {NAME} SSN {SSN}")
    text = stream.getvalue()
    assert "lookup" in text and not text.lstrip().startswith("{")
    assert NAME not in text and SSN not in text
