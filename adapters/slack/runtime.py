"""Slack's parts in one running server: the Bolt app, how events reach it, and the card notifier.

Slack is on when ``SLACK_BOT_TOKEN`` is set. Events arrive over HTTP
(``POST /slack/events``, v0-signed with ``SLACK_SIGNING_SECRET``) or, when
``SLACK_APP_TOKEN`` is set, over Socket Mode (a websocket the server opens to
Slack, for deployments Slack cannot reach). Both feed the same Bolt app.
``SLACK_API_URL`` points the Web API client somewhere else than Slack (tests
run a loopback Slack). Nothing here is imported unless Slack is configured,
so a server without Slack never loads slack_bolt.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack.listeners import Background
    from adapters.slack.notifier import SlackNotifier
    from adapters.slack.webapi import WebApiClient
    from assistant.thread_pool import FixedThreadPool
    from assistant.approvals import ApprovalService
    from assistant.config import AppConfig, Settings
    from assistant.storage import Database

__all__ = ["SlackRuntime", "build_runtime", "slack_enabled"]

DEFAULT_API_URL = "https://slack.com/api/"
API_TIMEOUT_S = 10
# Threads for the core's blocking calls (votes, card lookups). Few on purpose: SQLite takes one writer
# at a time anyway, and every extra busy thread takes GIL time from the loop that acks clicks.
BLOCKING_THREADS = 2


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    text = value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)
    return text or None


def slack_enabled(settings: Settings) -> bool:
    return _secret(settings.slack_bot_token) is not None


@dataclass
class SlackRuntime:
    bolt: AsyncApp
    client: AsyncWebClient
    notifier: SlackNotifier
    http: AsyncSlackRequestHandler | None  # None: no signing secret, so HTTP events cannot be verified
    socket: AsyncSocketModeHandler | None  # set when SLACK_APP_TOKEN is
    session: Any = None  # the aiohttp.ClientSession behind ``client``; closed by stop()
    executor: FixedThreadPool | None = None  # runs the core's blocking calls; shut down by stop()
    background: Background | None = None  # work started after acks (votes, refusals); drained by stop()
    webapi: WebApiClient | None = None  # the card calls' keep-alive client; closed by stop()

    _connecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Register the outbox handlers and, in Socket Mode, start connecting to Slack.

        The connection is made in the background (slack_sdk retries until it
        gets through): a Slack outage must not keep the server, and with it
        CI's deploy requests, from starting.
        """
        from assistant import outbox

        for kind, handler in self.notifier.handlers().items():
            outbox.register(kind, handler)
        if self.socket is not None:
            self._connecting = asyncio.create_task(self.socket.connect_async(), name="slack-socket-mode-connect")

    async def stop(self) -> None:
        from assistant import outbox

        for kind, handler in self.notifier.handlers().items():
            outbox.unregister(kind, handler)
        if self.socket is not None:
            await self.socket.close_async()  # also ends a connect still retrying
            if self._connecting is not None:
                self._connecting.cancel()
                await asyncio.gather(self._connecting, return_exceptions=True)
                self._connecting = None
        if self.background is not None:
            await self.background.drain()  # clicks already acked are recorded before the pool and session go
        if self.session is not None:
            await self.session.close()
        if self.webapi is not None:
            await self.webapi.close()
        if self.executor is not None:
            self.executor.shutdown(wait=True)


PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


def proxy_from_env() -> str | None:
    """The HTTP proxy slack_sdk would use (its `load_http_proxy_from_env` reads these variables, in this order)."""
    import os

    for name in PROXY_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def build_runtime(settings: Settings, config: AppConfig, db: Database, service: ApprovalService) -> SlackRuntime | None:
    """Everything Slack needs, built from the settings; None when SLACK_BOT_TOKEN is not set.

    Call it in the event loop that will serve (the server's lifespan): the HTTP session belongs to that loop.
    """
    token = _secret(settings.slack_bot_token)
    if token is None:
        return None
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack.listeners import Background, build_bolt_app
    from adapters.slack.notifier import SlackNotifier

    signing_secret = _secret(settings.slack_signing_secret)
    app_token = _secret(settings.slack_app_token)
    import aiohttp

    # One pooled session for every Web API call: without it slack_sdk opens a new session (and TCP/TLS
    # connection) per call, which costs more than the call itself at a few hundred clicks a second.
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=API_TIMEOUT_S))
    client = AsyncWebClient(token=token, base_url=settings.slack_api_url or DEFAULT_API_URL, timeout=API_TIMEOUT_S, session=session)
    from assistant.thread_pool import FixedThreadPool

    executor = FixedThreadPool(BLOCKING_THREADS, "slack-core")
    background = Background()
    bolt = build_bolt_app(
        client=client, signing_secret=signing_secret, config=config, service=service, executor=executor, background=background
    )
    http = None
    if signing_secret is not None:
        from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler

        http = AsyncSlackRequestHandler(bolt)
    socket = None
    if app_token is not None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        socket = AsyncSocketModeHandler(bolt, app_token, web_client=client)
    from slack_sdk.web.internal_utils import get_user_agent

    from adapters.slack.webapi import WebApiClient

    # The card calls (the hot path: one post and an update per vote) go through the small keep-alive client,
    # unless the environment names an HTTP proxy: hospitals often reach Slack only through one, and slack_sdk
    # (over aiohttp) speaks to proxies while the small client does not.
    webapi = None
    if proxy_from_env() is None:
        webapi = WebApiClient(settings.slack_api_url or DEFAULT_API_URL, token, user_agent=get_user_agent(), timeout_s=API_TIMEOUT_S)
    notifier = SlackNotifier(client, config, db, executor=executor, webapi=webapi)
    return SlackRuntime(
        bolt=bolt, client=client, notifier=notifier, http=http, socket=socket, session=session, executor=executor, background=background,
        webapi=webapi,
    )
