"""The server's cross-cutting behaviour, over real HTTP: health, errors, request ids, OpenAPI."""

from __future__ import annotations

import re

from fastapi import APIRouter
from pydantic import BaseModel

from adapters.http.errors import ApiError
from assistant.storage import Database


class _Item(BaseModel):
    service: str
    replicas: int
    tags: list[str] = []


def _test_router() -> APIRouter:
    """Routes that exist only in these tests, to exercise the error paths routes will hit."""
    router = APIRouter()

    @router.post("/api/things")
    async def create(item: _Item) -> dict[str, str]:
        return {"service": item.service}

    @router.get("/api/things/{thing_id}")
    async def get(thing_id: str) -> dict[str, str]:
        raise ApiError(409, "already_decided", f"{thing_id} was decided by alice; nothing changed")

    @router.post("/boom")
    async def boom() -> None:
        raise RuntimeError("patient: John Smith DOB: 1984-03-12 broke it")

    return router


def _app_with_test_routes(make_app):  # type: ignore[no-untyped-def]
    app = make_app()
    app.include_router(_test_router())
    return app


def test_healthz_is_200_while_serving(make_app, serve) -> None:
    with serve(make_app()) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_when_database_and_policies_are_there(make_app, serve) -> None:
    with serve(make_app()) as client:
        response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "policies": "ok"}


def test_readyz_pings_sqlite_and_postgres(make_app, serve, database_url) -> None:
    database = Database(database_url)
    try:
        with serve(make_app(db=database)) as client:
            response = client.get("/readyz")
    finally:
        database.dispose()
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["database"] == "ok"


def test_readyz_is_503_naming_the_database_when_it_is_unreachable(make_app, serve) -> None:
    # Port 1 on loopback: nothing listens there, so the connection is refused.
    down = Database("postgresql://gitops:hunter2-password@127.0.0.1:1/gitops")
    try:
        with serve(make_app(db=down)) as client:
            response = client.get("/readyz")
            health = client.get("/healthz")
    finally:
        down.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "not_ready"
    assert "database unreachable" in body["message"]
    assert "GITOPS_HEALTH_DATABASE_URL" in body["message"]
    assert "hunter2" not in response.text
    assert "policies" not in body["message"]
    assert health.status_code == 200  # liveness does not depend on the database


def test_readyz_is_503_when_policies_are_not_loaded(make_app, serve) -> None:
    with serve(make_app(policy_engine=None)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"] == "not_ready"
    assert "policies not loaded" in response.json()["message"]
    assert "database" not in response.json()["message"]


def test_unknown_path_is_a_json_404(make_app, serve) -> None:
    with serve(make_app()) as client:
        response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "not_found"
    assert "/openapi.json" in response.json()["message"]


def test_wrong_method_is_a_json_405_with_allow_header(make_app, serve) -> None:
    with serve(make_app()) as client:
        response = client.delete("/healthz")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}
    body = response.json()
    assert body["error"] == "method_not_allowed"
    assert "DELETE" in body["message"] and "GET" in body["message"]


def test_bad_json_is_a_400_saying_so(make_app, serve) -> None:
    with serve(_app_with_test_routes(make_app)) as client:
        response = client.post(
            "/api/things", content=b'{"service": "pump",', headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_json"
    assert "not valid JSON" in body["message"]


def test_schema_errors_are_400_naming_each_field_path(make_app, serve) -> None:
    with serve(_app_with_test_routes(make_app)) as client:
        response = client.post("/api/things", json={"replicas": "many", "tags": ["a", 7]})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    message = body["message"]
    assert "service: is required" in message
    assert "replicas:" in message
    assert "tags[1]:" in message
    assert "many" not in message  # the caller's values are not echoed


def test_routes_raise_api_error_in_the_contract_shape(make_app, serve) -> None:
    with serve(_app_with_test_routes(make_app)) as client:
        response = client.get("/api/things/dep_123")
    assert response.status_code == 409
    assert response.json() == {"error": "already_decided", "message": "dep_123 was decided by alice; nothing changed"}


def test_unexpected_errors_are_a_json_500_without_details(make_app, serve) -> None:
    with serve(_app_with_test_routes(make_app)) as client:
        response = client.post("/boom", headers={"X-Request-Id": "req-500"})
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "internal_error"
    assert "req-500" in body["message"]
    for leaked in ("John Smith", "1984", "RuntimeError", "Traceback", "boom"):
        assert leaked not in response.text
    assert response.headers["x-request-id"] == "req-500"


def test_request_id_is_echoed_when_given(make_app, serve) -> None:
    with serve(make_app()) as client:
        response = client.get("/healthz", headers={"X-Request-Id": "ci-build-42.7"})
    assert response.headers["x-request-id"] == "ci-build-42.7"


def test_request_id_is_generated_when_missing_or_unsafe(make_app, serve) -> None:
    with serve(make_app()) as client:
        first = client.get("/healthz")
        second = client.get("/nowhere")
        unsafe = client.get("/healthz", headers={"X-Request-Id": "patient John Smith; forged=1"})
    ids = [r.headers["x-request-id"] for r in (first, second, unsafe)]
    for value in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", value)
    assert len(set(ids)) == 3


def test_openapi_describes_the_api_and_not_the_probes(make_app, serve) -> None:
    with serve(_app_with_test_routes(make_app)) as client:
        response = client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["openapi"].startswith("3.")
    assert "/api/things" in spec["paths"]
    for internal in ("/healthz", "/readyz", "/metrics"):
        assert internal not in spec["paths"]


def test_json_without_a_json_content_type_is_told_to_set_the_header(make_app, serve) -> None:
    with serve(_app_with_test_routes(make_app)) as client:
        response = client.post("/api/things", content=b'{"service": "pump", "replicas": 1}')
        typed = client.post(
            "/api/things",
            content=b'{"service": "pump", "replicas": 1}',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["error"] == "bad_json"
    assert "Content-Type: application/json" in response.json()["message"]
    assert typed.status_code == 200


def test_a_json_array_where_an_object_is_expected_is_a_400(make_app, serve) -> None:
    with serve(_app_with_test_routes(make_app)) as client:
        response = client.post("/api/things", json=[{"service": "pump"}])
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "message": "the body must be a JSON object ({...}); see /openapi.json",
    }


def test_probes_answer_head_too(make_app, serve) -> None:
    with serve(make_app()) as client:
        assert client.head("/healthz").status_code == 200
        assert client.head("/readyz").status_code == 200
