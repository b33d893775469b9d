"""Webhook HMAC per CONTRACTS.md, over real HTTP, on a route mounted only in these tests."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
from fastapi import APIRouter, Depends
from freezegun import freeze_time
from pydantic import SecretStr

from adapters.http.webhook_auth import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookAuthError,
    sign,
    verified_body,
    verify,
)

SECRET = "test-webhook-secret"  # the conftest settings' secret
BODY = b'{"service": "infusion-pump-controller", "version": "2.4.1"}'


def _router(stored: list[bytes]) -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.post("/echo")
    async def echo(body: bytes = Depends(verified_body)) -> dict[str, int]:
        stored.append(body)
        return {"bytes": len(body)}

    @router.get("/echo/{item}")
    async def read(item: str, body: bytes = Depends(verified_body)) -> dict[str, str]:
        return {"item": item}

    return router


@pytest.fixture
def signed_app(make_app):  # type: ignore[no-untyped-def]
    stored: list[bytes] = []
    app = make_app()
    app.include_router(_router(stored))
    app.state.stored = stored
    return app


def test_sign_matches_the_contract_formula() -> None:
    headers = sign(SECRET, 1767600000, BODY)
    expected = hmac.new(SECRET.encode(), b"v1:1767600000:" + BODY, hashlib.sha256).hexdigest()
    assert headers == {TIMESTAMP_HEADER: "1767600000", SIGNATURE_HEADER: f"v1={expected}"}


def test_a_signed_post_gets_its_raw_body(signed_app, serve) -> None:
    with serve(signed_app) as client:
        response = client.post("/api/echo", content=BODY, headers=sign(SECRET, body=BODY))
    assert response.status_code == 200
    assert signed_app.state.stored == [BODY]


def test_upper_case_hex_is_accepted(signed_app, serve) -> None:
    headers = sign(SECRET, body=BODY)
    headers[SIGNATURE_HEADER] = "v1=" + headers[SIGNATURE_HEADER][3:].upper()
    with serve(signed_app) as client:
        response = client.post("/api/echo", content=BODY, headers=headers)
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("case", "headers", "phrase"),
    [
        ("wrong secret", lambda: sign("not-the-secret", body=BODY), "does not match"),
        ("other body", lambda: sign(SECRET, body=BODY + b" "), "does not match"),
        ("stale", lambda: sign(SECRET, int(time.time()) - 301, BODY), "s old"),
        ("future", lambda: sign(SECRET, int(time.time()) + 301, BODY), "in the future"),
        ("no headers", lambda: {}, "missing X-GitOps-Timestamp and X-GitOps-Signature"),
        ("no signature", lambda: {TIMESTAMP_HEADER: str(int(time.time()))}, "missing X-GitOps-Signature"),
        ("no timestamp", lambda: {SIGNATURE_HEADER: sign(SECRET, body=BODY)[SIGNATURE_HEADER]}, "missing X-GitOps-Timestamp"),
        ("timestamp not a number", lambda: {**sign(SECRET, body=BODY), TIMESTAMP_HEADER: "yesterday"}, "unix seconds"),
        ("unknown scheme", lambda: {**sign(SECRET, body=BODY), SIGNATURE_HEADER: "v2=abcd"}, "v1=<64 hex digits>"),
        ("signature over the wrong timestamp", lambda: {**sign(SECRET, body=BODY), TIMESTAMP_HEADER: str(int(time.time()) - 5)}, "does not match"),
    ],
)
def test_bad_signatures_are_401_and_nothing_is_stored(signed_app, serve, case, headers, phrase) -> None:
    with serve(signed_app) as client:
        response = client.post("/api/echo", content=BODY, headers=headers())
    assert response.status_code == 401, case
    body = response.json()
    assert body["error"] == "unauthorized"
    assert phrase in body["message"], body["message"]
    assert signed_app.state.stored == []


def test_a_window_edge_of_299_seconds_is_accepted(signed_app, serve) -> None:
    with serve(signed_app) as client:
        old = client.post("/api/echo", content=BODY, headers=sign(SECRET, int(time.time()) - 299, BODY))
        new = client.post("/api/echo", content=BODY, headers=sign(SECRET, int(time.time()) + 299, BODY))
    assert (old.status_code, new.status_code) == (200, 200)


def test_get_needs_a_signature_over_the_empty_body(signed_app, serve) -> None:
    with serve(signed_app) as client:
        unsigned = client.get("/api/echo/dep_1")
        signed = client.get("/api/echo/dep_1", headers=sign(SECRET))
        signed_over_a_body = client.get("/api/echo/dep_1", headers=sign(SECRET, body=b"{}"))
    assert unsigned.status_code == 401
    assert signed.status_code == 200
    assert signed.json() == {"item": "dep_1"}
    assert signed_over_a_body.status_code == 401


def test_without_a_configured_secret_webhooks_answer_503(make_app, serve, settings) -> None:
    stored: list[bytes] = []
    app = make_app(settings=settings.model_copy(update={"webhook_secret": None}))
    app.include_router(_router(stored))
    with serve(app) as client:
        response = client.post("/api/echo", content=BODY, headers=sign(SECRET, body=BODY))
    assert response.status_code == 503
    assert response.json()["error"] == "webhook_secret_missing"
    assert "GITOPS_HEALTH_WEBHOOK_SECRET" in response.json()["message"]
    assert stored == []


def test_the_window_is_measured_by_the_one_clock() -> None:
    """verify() reads assistant.clock, so a frozen clock decides what is stale."""
    headers = sign(SECRET, 1767600000, BODY)
    args = (SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], BODY)
    with freeze_time(datetime.fromtimestamp(1767600000 + 300, UTC)):
        verify(*args)
        assert int(sign(SECRET)[TIMESTAMP_HEADER]) == 1767600300
    with freeze_time(datetime.fromtimestamp(1767600000 + 301, UTC)):
        with pytest.raises(WebhookAuthError, match="301 s old"):
            verify(*args)
    with freeze_time(datetime.fromtimestamp(1767600000 - 301, UTC)):
        with pytest.raises(WebhookAuthError, match="in the future"):
            verify(*args)


def test_verify_accepts_a_secret_str() -> None:
    headers = sign(SecretStr(SECRET), body=BODY)
    verify(SecretStr(SECRET), headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], BODY)


def test_an_unsigned_request_is_refused_without_waiting_for_its_body(signed_app, serve) -> None:
    import socket

    with serve(signed_app) as client:
        with socket.create_connection((client.base_url.host, client.base_url.port), timeout=5) as sock:
            # Declares a body it never sends: only the headers can have been judged.
            sock.sendall(b"POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
            data = b""
            while b"unauthorized" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    assert data.startswith(b"HTTP/1.1 401")
    assert signed_app.state.stored == []


def test_routes_using_the_dependency_document_the_signature_headers(signed_app, serve) -> None:
    with serve(signed_app) as client:
        spec = client.get("/openapi.json").json()
    params = {p["name"]: p for p in spec["paths"]["/api/echo"]["post"]["parameters"]}
    assert params[TIMESTAMP_HEADER]["in"] == "header"
    assert "HMAC-SHA256" in params[SIGNATURE_HEADER]["description"]
