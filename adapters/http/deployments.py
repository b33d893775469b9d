"""`POST /api/deployments` and `GET /api/deployments/{id}`: CI/CD asks for a deploy decision and reads it.

Both are HMAC-signed (webhook_auth.verified_body; the GET over an empty
body), so nothing is parsed, reviewed or stored for a caller without the
secret. The body is parsed only after the signature check, from the exact
bytes that were signed. An `Idempotency-Key` makes a retried POST return the
first request (200) instead of making a second one (202), so a pipeline can
retry safely and approvers never see two cards for one deploy.

The routes are thin: the approval workflow (graphs/approval.py over
assistant/approvals.py) does the work; `approvals(app)` builds it once per
app from what `create_app` put in `app.state` and keeps it as
`app.state.approvals`, where the chat adapters find it too.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.routing import Route

from adapters.http.errors import ApiError, validation_message
from adapters.http.webhook_auth import SIGNATURE_PARAMETERS, read_verified_body, verified_body
from assistant.deployments import DeploymentRequest, DeploymentView
from assistant.thread_pool import FixedThreadPool

__all__ = ["CORE_THREADS", "SERVED_FIRST", "approvals", "install", "router"]

T = TypeVar("T")
# Threads that run the core for these routes (review, database write, graph thread). Bounded:
# the work is CPU-bound under one GIL, and the 40 threads Starlette would use for sync routes
# mostly traded GIL hand-offs and SQLite lock waits; requests beyond these queue in order. Not
# fewer: a thread parked in SQLite's busy handler (up to 100 ms a retry) idles its slot, and on
# a shared machine a few runnable threads keep the process its share of the CPUs (bench: 6
# threads 33.5 POST/s, 2 threads 20-31 POST/s, at comparable load).
CORE_THREADS = 6


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build the workflow at start-up (before the chat adapters look for it) and close its checkpoint store at the end."""
    from assistant.logging import get_logger

    log = get_logger("gitops_health.approval")
    try:
        workflow = install(app)
    except Exception as exc:  # noqa: BLE001 - the routes answer 503 and retry the build
        log.error("approvals_unavailable", error=f"{type(exc).__name__}: {exc}")
    else:
        try:  # threads a crash left parked behind a decision the database already holds
            woken = workflow.catch_up()
            if woken:
                log.info("approval_threads_caught_up", threads=woken)
        except Exception as exc:  # noqa: BLE001 - the database is the truth; the threads catch up on the next vote
            log.warning("approval_catch_up_failed", error=f"{type(exc).__name__}: {exc}")
    try:
        yield
    finally:
        pool = getattr(app.state, "deployments_pool", None)
        if pool is not None:
            pool.shutdown(wait=True)  # requests still in the core finish before its store closes
            app.state.deployments_pool = None
        workflow = getattr(app.state, "approvals", None)
        if workflow is not None and hasattr(workflow, "close"):
            workflow.close()


router = APIRouter(prefix="/api", tags=["deployments"], lifespan=lifespan)

MAX_IDEMPOTENCY_KEY = 255
_ERROR = {"content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}, "message": {"type": "string"}}}}}}
_build_lock = threading.Lock()


def install(app: FastAPI) -> Any:
    """Build the approval workflow for `app` now (server start-up) instead of on the first request."""
    return approvals(app)


def approvals(app: FastAPI) -> Any:
    """The app's ApprovalWorkflow (`app.state.approvals`), built on first use from the app's db, config and policies."""
    existing = getattr(app.state, "approvals", None)
    if existing is not None:
        return existing
    with _build_lock:
        existing = getattr(app.state, "approvals", None)
        if existing is None:
            from assistant.approvals import ApprovalService, configured_chats
            from graphs.approval import ApprovalWorkflow

            state = app.state
            service = ApprovalService(
                state.db, state.config, policies=state.policy_engine, chats=configured_chats(state.settings, state.config)
            )
            existing = ApprovalWorkflow.open(service)
            state.approvals = existing
    return existing


def _pool(app: FastAPI) -> FixedThreadPool:
    pool: FixedThreadPool | None = getattr(app.state, "deployments_pool", None)
    if pool is None:
        with _build_lock:
            pool = getattr(app.state, "deployments_pool", None)
            if pool is None:
                pool = FixedThreadPool(CORE_THREADS, "deployments-core")
                app.state.deployments_pool = pool
    return pool


async def _in_core(request: Request, fn: Callable[..., T], *args: Any) -> T:
    """Run a blocking core call on the routes' small pool, with this request's context (request id in logs)."""
    call = functools.partial(contextvars.copy_context().run, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(_pool(request.app), call)


def _workflow(request: Request) -> Any:
    try:
        return approvals(request.app)
    except Exception as exc:  # noqa: BLE001 - a store we cannot open means "not ready", said clearly
        raise ApiError(
            503,
            "approvals_unavailable",
            f"deploy approvals cannot start ({type(exc).__name__}); check the database and the data directory, then retry",
        ) from exc


def _idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    key = value.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise ApiError(
            400,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters "
            "(e.g. the pipeline run id plus the commit); leave the header out if you do not need one",
        )
    return key


def _parse(request: Request, body: bytes) -> DeploymentRequest:
    content_type = request.headers.get("content-type", "")
    if "json" not in content_type.lower():
        got = f"got {content_type.split(';')[0]!r}" if content_type else "none was given"
        raise ApiError(400, "bad_json", f"the body must be JSON sent with Content-Type: application/json ({got}); set the header")
    try:
        return DeploymentRequest.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors(include_input=False)
        if errors and errors[0].get("type") == "model_type":
            raise ApiError(400, "invalid_request", "the body must be a JSON object ({...}); see /openapi.json") from None
        code, message = validation_message([{**e, "loc": ("body", *e.get("loc", ()))} for e in errors])
        raise ApiError(400, code, message) from None


@router.post(
    "/deployments",
    status_code=202,
    response_model=DeploymentView,
    summary="Ask for a deploy decision",
    description=(
        "Reviews the diff, lets the policy decide (blocked, or pending with required approvals, or approved "
        "when nothing needs people) and posts the approval card to the configured chats. 202 for a new "
        "request, 200 when the Idempotency-Key was seen before with the same body. When decided, the same "
        "object is POSTed (signed like this request) to callback_url until it answers 2xx."
    ),
    responses={
        200: {"model": DeploymentView, "description": "the request this Idempotency-Key already made"},
        400: {**_ERROR, "description": "bad JSON, schema or diff"},
        401: {**_ERROR, "description": "missing, stale or wrong signature"},
        409: {**_ERROR, "description": "the Idempotency-Key was used for a different body"},
        413: {**_ERROR, "description": "body over 5 MiB"},
        503: {**_ERROR, "description": "no webhook secret configured, or storage not ready"},
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": DeploymentRequest.model_json_schema()}}},
        "parameters": [
            *SIGNATURE_PARAMETERS,
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY},
                "description": "the same key returns the same request, never a second approval card",
            }
        ],
    },
)
async def create_deployment(request: Request) -> Response:
    """Headers are read here, not declared as FastAPI parameters (they are documented in openapi_extra):
    solving a dependency with header parameters per request cost more CPU than the HMAC check itself.
    The order of the checks is the one the dependency had: signature (401/503), then Idempotency-Key, then body."""
    from assistant.approvals import IdempotencyConflict, InvalidDiff

    body = await read_verified_body(request)
    key = _idempotency_key(request.headers.get("idempotency-key"))
    req = _parse(request, body)
    try:
        view, created = await _in_core(request, _request_deployment, request, req, key)
    except InvalidDiff as exc:
        raise ApiError(400, exc.code, exc.message) from None
    except IdempotencyConflict as exc:
        raise ApiError(409, exc.code, exc.message) from None
    # Serialized by pydantic straight to JSON (the same bytes JSONResponse made from model_dump, without the dict).
    return Response(
        view.model_dump_json(),
        status_code=202 if created else 200,
        headers={"Location": f"/api/deployments/{view.id}"},
        media_type="application/json",
    )


# POST /api/deployments as it is served: a plain Starlette route that `create_app` puts ahead of every
# FastAPI route. FastAPI's per-request work for an APIRoute (matching through the included routers'
# route contexts, solving the `request` parameter, its exit stack) cost ~0.3-0.5 ms CPU of the
# request's ~1.5 ms on the event loop (in-process ASGI, no uvicorn), for a handler that reads its own
# headers and body anyway. Errors are unchanged: ApiError and the rest still reach the app's
# exception handlers and the middlewares. The APIRoute above stays for /openapi.json.
SERVED_FIRST: tuple[Route, ...] = (
    Route("/api/deployments", create_deployment, methods=["POST"], name="create_deployment", include_in_schema=False),
)


def _request_deployment(request: Request, req: DeploymentRequest, key: str | None) -> tuple[DeploymentView, bool]:
    return _workflow(request).request_deployment(req, key)  # type: ignore[no-any-return]


def _read(request: Request, deployment_id: str) -> DeploymentView:
    return _workflow(request).get(deployment_id)  # type: ignore[no-any-return]


@router.get(
    "/deployments/{deployment_id}",
    response_model=DeploymentView,
    summary="A deploy request's state",
    description="Signed like the POST, over an empty body.",
    responses={401: {**_ERROR, "description": "missing, stale or wrong signature"}, 404: {**_ERROR, "description": "no such request"}},
)
async def read_deployment(
    request: Request,
    deployment_id: Annotated[str, Path(max_length=40, description="dep_...")],
    body: Annotated[bytes, Depends(verified_body)],
) -> JSONResponse:
    from assistant.approvals import UnknownDeployment

    try:
        view = await _in_core(request, _read, request, deployment_id)
    except UnknownDeployment as exc:
        raise ApiError(404, exc.code, exc.message) from None
    return JSONResponse(view.model_dump(mode="json"))
