"""``POST /slack/events``: Slack's one URL for events, slash commands and interactivity, handed to Bolt.

The router's lifespan builds the Slack runtime from the app's settings when
the server starts (and registers the card handlers with the outbox, and opens
Socket Mode when configured) and takes it down when the server stops. Bolt
verifies every request's v0 signature (401 for a forged or stale one) before
any listener sees it. Without Slack credentials the route answers 503 saying
which variables to set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import Response

from adapters.http.errors import ApiError

__all__ = ["router"]


def approval_service(app: FastAPI) -> Any:
    """The app's approval workflow (``app.state.approvals``: votes also move the request's graph thread along)."""
    from adapters.http.deployments import approvals

    return approvals(app)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    from adapters.slack.runtime import slack_enabled

    app.state.slack = None
    settings = app.state.settings
    if not slack_enabled(settings):
        yield
        return
    from adapters.slack.runtime import build_runtime

    runtime = build_runtime(settings, app.state.config, app.state.db, approval_service(app))
    app.state.slack = runtime
    if runtime is None:
        yield
        return
    _warn_about_gaps(settings, app.state.config)
    await runtime.start()
    try:
        yield
    finally:
        await runtime.stop()
        app.state.slack = None


def _warn_about_gaps(settings: Any, config: Any) -> None:
    """Slack half-configured starts anyway (cards or clicks still work), but the log says what is missing."""
    from assistant.logging import get_logger

    log = get_logger("gitops_health.slack")
    if not config.channels.approvals.slack:
        log.warning("slack_no_approvals_channel", detail="SLACK_BOT_TOKEN is set but channels.approvals.slack is not; approval cards will not be posted to Slack")
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        log.warning("slack_events_unverifiable", detail="neither SLACK_SIGNING_SECRET nor SLACK_APP_TOKEN is set; clicks cannot reach this server")
    mode = "socket" if settings.slack_app_token is not None else "http"
    log.info("slack_enabled", mode=mode, api=settings.slack_api_url or "https://slack.com/api/", channel=config.channels.approvals.slack)


router = APIRouter(lifespan=lifespan, include_in_schema=False)


@router.post("/slack/events")
async def slack_events(request: Request) -> Response:
    runtime = getattr(request.app.state, "slack", None)
    if runtime is None:
        raise ApiError(
            503,
            "slack_disabled",
            "Slack is not configured on this server: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET "
            "(and channels.approvals.slack in the config), then restart it",
        )
    if runtime.http is None:
        raise ApiError(
            503,
            "slack_unverifiable",
            "SLACK_SIGNING_SECRET is not set, so Slack's HTTP requests cannot be verified; set it "
            "(Basic Information > App Credentials > Signing Secret) or use Socket Mode with SLACK_APP_TOKEN",
        )
    response: Response = await runtime.http.handle(request)
    return response
