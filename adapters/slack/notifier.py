"""The Slack side of the outbox: ``slack.post_card``, ``slack.update_card``, ``slack.blocked_notice``.

Every handler does the same thing: load the request as the database has it
*now*, render it, and make the one card in the approvals channel show it
(post it if it is not there yet, else ``chat.update`` it). Rendering the
current state rather than the event that caused the job means a late or
repeated job can only ever make the card more up to date, and the outbox's
at-least-once delivery cannot post two cards: the card's channel and ``ts``
are saved (``assistant.chat_messages``) right after the post and looked up
before every run. The outbox never runs two ``slack.*`` jobs of one request
at once, in any process (see ``assistant.outbox``), so a post and an update
cannot both find no card and both post; the lock here covers direct calls.

Failures are sorted the way Slack means them: rate limits and server or
network trouble are retried (``RetryLater``, honouring ``Retry-After``);
answers that cannot get better by retrying (bad token, unknown channel, the
bot not in the channel) give up with a message saying what to fix, because
the next vote enqueues a fresh update anyway once the operator has fixed it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

from adapters.slack import cards
from assistant import chat_messages
from assistant.approvals import UnknownDeployment, load_view
from assistant.outbox import GiveUp, Handler, Job, RetryLater

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack.webapi import WebApiClient
    from assistant.config import AppConfig
    from assistant.deployments import DeploymentView
    from assistant.storage import Database

__all__ = ["KINDS", "SlackNotifier"]

KINDS = ("slack.post_card", "slack.update_card", "slack.blocked_notice")

# Slack errors that retrying cannot fix; each with what the operator should do.
_PERMANENT = {
    "not_authed": "no bot token was sent; set SLACK_BOT_TOKEN",
    "invalid_auth": "SLACK_BOT_TOKEN is not valid for this workspace; install the app again and update the token",
    "token_revoked": "SLACK_BOT_TOKEN was revoked; install the app again and update the token",
    "account_inactive": "the bot's account is deactivated; reinstall the app",
    "missing_scope": "the app lacks the chat:write scope; add it in the app settings and reinstall",
    "channel_not_found": "channels.approvals.slack does not name a channel the bot can see; fix the channel id in the config",
    "not_in_channel": "the bot is not a member of the approvals channel; invite it (/invite @gitops-health)",
    "is_archived": "the approvals channel is archived; unarchive it or configure another one",
    "invalid_blocks": "Slack refused the card's blocks (a bug in gitops-health; please report it)",
}


class SlackNotifier:
    """Renders deploy requests into the approvals channel; its methods are outbox handlers."""

    def __init__(
        self,
        client: AsyncWebClient,
        config: AppConfig,
        db: Database,
        *,
        load: Callable[[str], DeploymentView] | None = None,
        executor: Executor | None = None,
        webapi: WebApiClient | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.db = db
        self.channel = config.channels.approvals.slack
        self._load = load
        self._locks: dict[str, asyncio.Lock] = {}
        self._executor = executor  # None: the loop's default pool
        self._webapi = webapi
        # Bound once: the outbox unregisters a handler only if it is still the very object registered.
        self._handlers: dict[str, Handler] = {
            "slack.post_card": self.post_card,
            "slack.update_card": self.update_card,
            "slack.blocked_notice": self.blocked_notice,
        }

    def handlers(self) -> dict[str, Handler]:
        return dict(self._handlers)

    async def _blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, contextvars.copy_context().run, functools.partial(fn, *args))

    async def post_card(self, job: Job) -> None:
        await self.sync_card(_deployment_id(job))

    async def update_card(self, job: Job) -> None:
        await self.sync_card(_deployment_id(job))

    async def blocked_notice(self, job: Job) -> None:
        # A blocked request renders as the notice: why the policy denied it, and no buttons.
        await self.sync_card(_deployment_id(job))

    async def sync_card(self, deployment_id: str) -> str:
        """Make the approvals-channel card of ``deployment_id`` show its current state; returns the card's ts."""
        if not self.channel:
            raise GiveUp("channels.approvals.slack is not set in the config; nowhere to post the card")
        lock = self._locks.setdefault(deployment_id, asyncio.Lock())
        try:
            async with lock:
                return await self._sync(deployment_id)
        finally:
            if not lock.locked() and self._locks.get(deployment_id) is lock:
                self._locks.pop(deployment_id, None)

    def _state(self, deployment_id: str) -> tuple[DeploymentView, list[chat_messages.ChatMessage]]:
        """The request and its Slack card as one read: a card costs fewer transactions than the request it shows."""
        if self._load is not None:
            return self._load(deployment_id), chat_messages.find(self.db, deployment_id, "slack")
        with self.db.read() as session:
            return load_view(session, deployment_id), chat_messages.find(session, deployment_id, "slack")

    async def _sync(self, deployment_id: str) -> str:
        try:
            view, existing = await self._blocking(self._state, deployment_id)
        except UnknownDeployment as exc:
            raise GiveUp(str(exc)) from None
        text, blocks = cards.card(view, self.config)
        # One card per request in Slack; Slack names channels by id in its answers, whatever the config says.
        card = existing[-1] if existing else None
        if card is not None:
            try:
                await self._call("chat.update", {"channel": card.channel, "ts": card.message_ref, "text": text, "blocks": blocks})
                return card.message_ref
            except _SlackError as exc:
                if exc.code not in ("message_not_found", "cant_update_message"):
                    raise exc.outcome("chat.update") from None
                # Someone deleted the card: post it again below and remember the new one.
        try:
            posted = await self._call(
                "chat.postMessage", {"channel": self.channel, "text": text, "blocks": blocks, "unfurl_links": False, "unfurl_media": False}
            )
        except _SlackError as exc:
            raise exc.outcome("chat.postMessage") from None
        channel, ts = str(posted["channel"]), str(posted["ts"])
        await self._blocking(chat_messages.save, self.db, deployment_id, "slack", channel, ts)
        return ts

    async def _call(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """One Web API call with a JSON body; its answer, or _SlackError (HTTP status, Slack's error code, Retry-After).

        The runtime gives the notifier a :class:`~adapters.slack.webapi.WebApiClient`: a card's two
        calls through slack_sdk and aiohttp cost ~1.5 ms of CPU each, through it ~0.6 ms. Without one
        (scripts, some tests) the call goes through slack_sdk.
        """
        if self._webapi is None:
            return await self._call_sdk(method, args)
        from adapters.slack.webapi import WebApiError

        try:
            answer = await self._webapi.call(method, args)
        except WebApiError as exc:
            raise _SlackError(0, "", None, f"WebApiError: {exc}") from None
        data = answer.data
        if answer.status != 200 or not isinstance(data, dict) or not data.get("ok"):
            code = str(data.get("error") or "") if isinstance(data, dict) else ""
            raise _SlackError(answer.status, code, _seconds(answer.headers.get("retry-after")))
        return data

    async def _call_sdk(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        from slack_sdk.errors import SlackApiError

        try:
            response = await self.client.api_call(method, json=args)
        except SlackApiError as exc:
            headers = getattr(exc.response, "headers", None) or {}
            retry_after = headers.get("Retry-After") or headers.get("retry-after")
            raise _SlackError(int(getattr(exc.response, "status_code", 200) or 200), _error(exc), _seconds(retry_after)) from None
        except _TRANSIENT as exc:
            raise _SlackError(0, "", None, f"{type(exc).__name__}: {exc}") from None
        return dict(response.data) if isinstance(response.data, dict) else {}


class _SlackError(Exception):
    """A failed Web API call: HTTP status (0: no answer), Slack's error code, Retry-After seconds."""

    def __init__(self, status: int, code: str, retry_after: float | None, detail: str = "") -> None:
        super().__init__(detail or f"HTTP {status} {code}")
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.detail = detail

    def outcome(self, method: str) -> Exception:
        """RetryLater or GiveUp, the way Slack means the answer."""
        if self.status == 0:
            return RetryLater(f"{method}: {self.detail}")
        if self.code in _PERMANENT:
            return GiveUp(f"{method}: Slack answered {self.code}: {_PERMANENT[self.code]}")
        delay = self.retry_after if (self.status == 429 or self.code == "ratelimited") else None
        return RetryLater(f"{method}: Slack answered HTTP {self.status} {self.code or '(no error code)'}", delay=delay)


def _seconds(raw: Any) -> float | None:
    try:
        return float(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def _transient_errors() -> tuple[type[BaseException], ...]:
    import aiohttp

    return (aiohttp.ClientError, asyncio.TimeoutError, TimeoutError, ConnectionError)


_TRANSIENT = _transient_errors()


def _deployment_id(job: Job) -> str:
    deployment_id = job.payload.get("deployment_id")
    if not isinstance(deployment_id, str) or not deployment_id:
        raise GiveUp(f"job {job.id} ({job.kind}) has no deployment_id in its payload: {job.payload!r}")
    return deployment_id


def _error(exc: Any) -> str:
    response = getattr(exc, "response", None)
    try:
        return str(response.get("error") or "") if response is not None else ""
    except Exception:  # noqa: BLE001 - a non-JSON answer has no error code
        return ""
