"""``POST /api/messages``: the Bot Framework's one URL for Teams activities, handed to botbuilder's CloudAdapter.

Every request is authenticated before the bot sees it: with ``TEAMS_APP_ID``
set, botbuilder validates the JWT in ``Authorization`` (401 for a missing,
unsigned, expired, wrongly addressed or forged token); without it the server
is in local mode and answers loopback callers only (401 for anyone else).
An ``adaptiveCard/action`` invoke is answered in the same response with the
card as it now stands; other activities get 200 with no body.

The router's lifespan builds the Teams runtime when the server starts (and
registers the card handlers with the outbox when cards can be delivered from
here) and takes it down when it stops. When Teams has nothing to do at start
(no credentials and no deliverable cards), the runtime is built on the first
request instead, so servers that never hear from Teams never load botbuilder.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from adapters.http.errors import ApiError

__all__ = ["router", "teams_runtime"]

_build_lock = threading.Lock()  # not an asyncio.Lock: one app may be served by several event loops in tests


def _approvals(app: FastAPI) -> Any:
    """The app's approval workflow (``app.state.approvals``: votes also move the request's graph thread along)."""
    from adapters.http.deployments import approvals

    return approvals(app)


async def teams_runtime(app: FastAPI) -> Any:
    """The app's TeamsRuntime (``app.state.teams``), built now if the lifespan left it for the first request."""
    runtime = getattr(app.state, "teams", None)
    if runtime is not None:
        return runtime
    with _build_lock:  # the build is synchronous (imports and objects, no I/O)
        runtime = getattr(app.state, "teams", None)
        if runtime is None:
            from adapters.teams.runtime import build_runtime

            runtime = build_runtime(app.state.settings, app.state.config, app.state.db, _approvals(app))
            app.state.teams = runtime
    return runtime


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    from adapters.teams.runtime import cards_deliverable, teams_app_id

    app.state.teams = None
    settings, config = app.state.settings, app.state.config
    deliverable, why = cards_deliverable(settings, config)
    app_id = teams_app_id(settings)
    from assistant.logging import get_logger

    log = get_logger("gitops_health.teams")
    if not deliverable and app_id is None:
        if why and config.channels.approvals.teams:
            log.warning("teams_cards_off", detail=why)
        yield
        return
    try:
        runtime = await teams_runtime(app)
    except Exception as exc:  # noqa: BLE001 - a bad Teams setting must say so, not stop CI's deploy requests
        log.error("teams_unavailable", error=f"{type(exc).__name__}: {exc}")
        yield
        return
    if why:
        log.warning("teams_cards_off", detail=why)
    log.info(
        "teams_enabled",
        mode="local" if runtime.local else "authenticated",
        service_url=config.teams.service_url,
        conversation=config.channels.approvals.teams,
        cards=runtime.notifier is not None,
    )
    await runtime.start()
    try:
        yield
    finally:
        await runtime.stop()
        app.state.teams = None


router = APIRouter(lifespan=lifespan, include_in_schema=False)


@router.post("/api/messages")
async def teams_messages(request: Request) -> Response:
    from adapters.teams.runtime import is_loopback

    runtime = await teams_runtime(request.app)
    if runtime.local and not is_loopback(request.client.host if request.client else None):
        raise ApiError(
            401,
            "teams_local_only",
            "Teams is in local mode (TEAMS_APP_ID is not set), so only callers on this machine are accepted; "
            "set TEAMS_APP_ID, TEAMS_APP_PASSWORD (and TEAMS_TENANT_ID) to take requests from the Bot Framework",
        )
    activity = _activity(request, await request.body())
    header = request.headers.get("authorization")
    result = await _authenticate(runtime, activity, header)

    invoke = await runtime.adapter.process_activity(result, activity, runtime.bot.on_turn)
    if invoke is None:
        return Response(status_code=200)
    from botbuilder.core import serializer_helper

    body = invoke.body
    if body is not None and not isinstance(body, (dict, list, str, int, float, bool)):
        body = serializer_helper(body)
    return JSONResponse(body, status_code=int(invoke.status))


def _activity(request: Request, raw: bytes) -> Any:
    from botbuilder.schema import Activity

    content_type = request.headers.get("content-type", "")
    if "json" not in content_type.lower():
        raise ApiError(400, "bad_json", "the body must be a Bot Framework activity sent as JSON (Content-Type: application/json)")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_json", "the body is not valid JSON; send a Bot Framework activity") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_activity", "the body must be a JSON object (a Bot Framework activity)")
    try:
        activity = Activity().deserialize(data)
    except Exception:  # noqa: BLE001 - msrest raises its own types for any malformed field
        raise ApiError(400, "invalid_activity", "the body is not a Bot Framework activity (a field has the wrong type)") from None
    if not activity.type:
        raise ApiError(400, "invalid_activity", "the activity has no type; Bot Framework activities always carry one")
    if not activity.service_url or not str(activity.service_url).startswith(("http://", "https://")):
        raise ApiError(400, "invalid_activity", "the activity has no http(s) serviceUrl, so there is nowhere to answer; Bot Framework activities always carry one")
    return activity


def _authenticate_blocking(auth: Any, activity: Any, header: str) -> Any:
    return asyncio.run(auth.authenticate_request(activity, header))


async def _authenticate(runtime: Any, activity: Any, header: str | None) -> Any:
    """botbuilder's validation of the request; every way it can fail is a 401, except unreachable metadata (503)."""
    import requests

    if runtime.local:
        header = None  # nothing to validate against; the loopback check above is the gate
    elif not header:
        raise ApiError(401, "teams_unauthenticated", "no Authorization header; the Bot Framework sends a Bearer token with every activity")
    try:
        if runtime.local:
            return await runtime.auth.authenticate_request(activity, header)
        # botbuilder fetches the OpenID metadata and keys with blocking `requests` calls (on the first
        # token and once a day after): run the check on a worker thread so the server never stalls on them.
        return await asyncio.to_thread(_authenticate_blocking, runtime.auth, activity, header)
    except requests.RequestException as exc:
        raise ApiError(
            503,
            "teams_metadata_unavailable",
            f"the Bot Framework's OpenID metadata could not be fetched ({type(exc).__name__}), so the token cannot be checked; retry",
        ) from None
    except Exception as exc:  # noqa: BLE001 - PermissionError, jwt errors, unknown key id, undecodable token ...
        from assistant.logging import get_logger

        get_logger("gitops_health.teams").warning("teams_token_refused", error=f"{type(exc).__name__}: {str(exc)[:200]}")
        raise ApiError(401, "teams_unauthenticated", "the Bot Framework token was missing, invalid, expired or not for this bot; nothing was done") from None
