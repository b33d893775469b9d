"""The one FastAPI application: cross-cutting layers plus routers from small modules.

Routers live in their own modules (health.py, metrics.py, later
deployments.py, alerts.py ...) and are listed in ``_ROUTERS``; adding a
feature is one line there. Middleware order, outermost first: request
context (id, access log, metrics, last-resort 500) then the body limit, so a
refused body is still logged and counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI

from adapters.http import deployments, health, metrics
from adapters.http.body_limit import MAX_BODY_BYTES, BodyLimitMiddleware
from adapters.http.errors import install_error_handlers
from adapters.http.metrics import HttpMetrics
from adapters.http.request_context import RequestContextMiddleware
from adapters.slack import routes as slack_routes
from adapters.teams import routes as teams_routes

if TYPE_CHECKING:
    from assistant.config import AppConfig, Settings
    from assistant.storage import Database

__all__ = ["create_app"]

_ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    metrics.router,
    deployments.router,
    slack_routes.router,
    teams_routes.router,
)


def create_app(
    settings: Settings,
    config: AppConfig,
    db: Database,
    *,
    policy_engine: Any = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """Build the server; ``policy_engine`` None means "not loaded" and /readyz says so.

    If nothing configured logging yet, the redacting JSON configuration is
    installed: structlog's default renderer prints tracebacks with local
    variables, which would put request bodies (PHI) on the console.
    """
    import structlog

    if not structlog.is_configured():
        from assistant.logging import configure_logging

        configure_logging()
    app = FastAPI(
        title="gitops-health",
        version=_version(),
        description=(
            "Deploy decisions, alerts and their state for CI/CD pipelines and monitors. "
            "Every /api request is signed: X-GitOps-Timestamp and X-GitOps-Signature "
            "(v1=HMAC-SHA256 of \"v1:\" + timestamp + \":\" + raw body)."
        ),
        openapi_url="/openapi.json",
        docs_url=None,  # the Swagger page loads its assets from a CDN; we run offline
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.config = config
    app.state.db = db
    app.state.policy_engine = policy_engine
    app.state.metrics = HttpMetrics()

    install_error_handlers(app)
    for router in _ROUTERS:
        app.include_router(router)
    app.router.routes[0:0] = deployments.SERVED_FIRST  # hot routes as plain Starlette routes, matched first (deployments.py)

    # add_middleware prepends: the last added is the outermost.
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(
        RequestContextMiddleware, metrics=app.state.metrics, routes=lambda: app.routes
    )
    return app


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gitops-health")
    except PackageNotFoundError:
        return "0+unknown"
