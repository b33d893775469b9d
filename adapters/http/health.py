"""Liveness and readiness for orchestrators.

``/healthz`` answers while the process serves: restarting a process because
its database is down would not bring the database back. ``/readyz`` says
whether this instance can do its job, and names what is not there so the
operator reading a failed probe knows what to fix.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from adapters.http.errors import error_response

__all__ = ["READY_TIMEOUT_S", "router"]

READY_TIMEOUT_S = 3.0

router = APIRouter(include_in_schema=False)


@router.api_route("/healthz", methods=["GET", "HEAD"])
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _database_problem(request: Request) -> str | None:
    db = request.app.state.db
    try:
        await asyncio.wait_for(run_in_threadpool(db.ping), READY_TIMEOUT_S)
    except TimeoutError:
        return (
            f"database unreachable: no answer within {READY_TIMEOUT_S:g} s; fix: check that the "
            "database server is up and GITOPS_HEALTH_DATABASE_URL points at it"
        )
    except Exception as exc:  # noqa: BLE001 - any failure to answer means "not ready"
        # Database.ping's message already hides the password and names the URL.
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not text.startswith("database"):
            text = f"database unreachable: {text}"
        return (
            f"{text}; fix: check GITOPS_HEALTH_DATABASE_URL, that the server is up, "
            "and (for SQLite) that the data directory is readable and writable"
        )
    return None


@router.api_route("/readyz", methods=["GET", "HEAD"])
async def readyz(request: Request) -> JSONResponse:
    problems: list[str] = []
    checks: dict[str, str] = {}
    db_problem = await _database_problem(request)
    checks["database"] = "ok" if db_problem is None else "down"
    if db_problem:
        problems.append(db_problem)
    if request.app.state.policy_engine is None:
        checks["policies"] = "down"
        problems.append(
            "policies not loaded; fix: start the server with `gitops-health serve`, which "
            "loads the Rego policies, and check its start-up log for policy errors"
        )
    else:
        checks["policies"] = "ok"
    if problems:
        response = error_response(503, "not_ready", " ; ".join(problems))
        response.headers["Retry-After"] = "5"
        return response
    return JSONResponse({"status": "ready", "checks": checks})
