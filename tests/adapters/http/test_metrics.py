"""/metrics speaks Prometheus text and labels requests by route template, never by concrete path."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client.parser import text_string_to_metric_families


def _router() -> APIRouter:
    router = APIRouter(prefix="/api/test-only")

    @router.get("/things/{thing_id}")
    async def get(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    return router


def _samples(text: str, name: str) -> dict[tuple[str, str, str], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                labels = sample.labels
                out[(labels["method"], labels["route"], labels["status"])] = sample.value
    return out


def test_metrics_are_prometheus_text_labelled_by_route_template(make_app, serve) -> None:
    app = make_app()
    app.include_router(_router())
    with serve(app) as client:
        client.get("/api/test-only/things/dep_8f2a")
        client.get("/api/test-only/things/dep_patient-123-45-6789")
        client.post("/api/test-only/things/dep_8f2a")  # 405
        client.get("/patients/John%20Smith/records")  # 404
        client.get("/healthz")
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    counts = _samples(response.text, "gitops_health_http_requests_total")
    assert counts[("GET", "/api/test-only/things/{thing_id}", "200")] == 2
    assert counts[("POST", "/api/test-only/things/{thing_id}", "405")] == 1
    assert counts[("GET", "<unmatched>", "404")] == 1
    assert counts[("GET", "/healthz", "200")] == 1
    latency = _samples(response.text, "gitops_health_http_request_duration_seconds_count")
    assert latency[("GET", "/api/test-only/things/{thing_id}", "200")] == 2
    for leaked in ("dep_8f2a", "123-45-6789", "John", "patients"):
        assert leaked not in response.text


def test_unknown_methods_do_not_grow_the_label_set(make_app, serve) -> None:
    with serve(make_app()) as client:
        client.request("PROPFIND", "/healthz")
        response = client.get("/metrics")
    counts = _samples(response.text, "gitops_health_http_requests_total")
    assert counts[("OTHER", "/healthz", "405")] == 1


def test_each_app_has_its_own_registry(make_app, serve) -> None:
    first, second = make_app(), make_app()
    with serve(first) as client:
        client.get("/healthz")
        client.get("/healthz")
    with serve(second) as client:
        client.get("/healthz")
        text = client.get("/metrics").text
    assert _samples(text, "gitops_health_http_requests_total")[("GET", "/healthz", "200")] == 1
