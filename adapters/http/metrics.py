"""Prometheus metrics for the HTTP server, in a registry of the app's own.

Labels are bounded and carry no caller data: the route TEMPLATE
(``/api/deployments/{id}``), never the concrete path, which could hold an id
or PHI; a fixed value for paths no route matches; a closed set of methods.
One registry per app so tests (and, later, a second app in one process) do
not collide on metric names.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from fastapi import APIRouter, Request
from fastapi.routing import iter_route_contexts
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Scope

__all__ = ["UNMATCHED_ROUTE", "HttpMetrics", "route_template", "router"]

UNMATCHED_ROUTE = "<unmatched>"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def route_template(routes: Iterable[BaseRoute], scope: Scope) -> str:
    """The template of the route that serves ``scope`` (``/api/deployments/{id}``), or UNMATCHED_ROUTE.

    Matched the way the router does -- first route whose path and method
    match, else the first whose path matches (that is what a 405 answers) --
    over FastAPI's flattened view of included routers, so prefixes are part of
    the template. Done here rather than read from the scope because FastAPI's
    router no longer records every matched route there.
    """
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    method = str(scope.get("method", ""))
    partial: str | None = None
    for context in iter_route_contexts(list(routes)):
        template = context.path_format
        regex = getattr(context, "path_regex", None)
        if not isinstance(template, str) or regex is None or not regex.match(path):
            continue
        methods = context.methods
        if not methods or method in methods or (method == "HEAD" and "GET" in methods):
            return template
        if partial is None:
            partial = template
    return partial if partial is not None else UNMATCHED_ROUTE


class HttpMetrics:
    """The server's counters; under `serve --workers N` (PROMETHEUS_MULTIPROC_DIR set) summed over every worker.

    prometheus_client's multiprocess mode keeps each process's counters in
    files in that directory; a scrape, answered by any one worker, reads them
    all. Collectors that read shared state at scrape time (the outbox gauges,
    from the database) are added with `add_collector` and reported once.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._collectors: list[object] = []
        self.requests = Counter(
            "gitops_health_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "gitops_health_http_request_duration_seconds",
            "Time from request start to the last response byte, by method, route template and status.",
            ("method", "route", "status"),
            buckets=_BUCKETS,
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "OTHER"
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def add_collector(self, collector: object) -> None:
        """A collector reporting shared state (read at scrape time): in this registry, and once in a multiprocess scrape."""
        self.registry.register(collector)  # type: ignore[arg-type]
        self._collectors.append(collector)

    def exposition(self) -> bytes:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not directory:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=directory)
        for collector in self._collectors:
            merged.register(collector)  # type: ignore[arg-type]
        return generate_latest(merged)


router = APIRouter(include_in_schema=False)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    http_metrics: HttpMetrics = request.app.state.metrics
    return Response(http_metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
