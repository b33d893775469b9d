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
from assistant.approvals import UnknownDeployment, load_views
from assistant.batching import Coalescer
from assistant.outbox import GiveUp, Handler, Job, RetryLater

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack.webapi import WebApiClient
    from assistant.config import AppConfig
    from assistant.deployments import DeploymentView
    from assistant.storage import Database

__all__ = ["KINDS", "SlackNotifier"]

KINDS = ("slack.post_card", "slack.update_card", "slack.blocked_notice")
CARD_EVENT = "gitops_health_card"  # the metadata event type of every card (Slack message metadata)
# A retried card job searches the channel's messages since it was made (minus a margin for clock skew), a page at a time.
HISTORY_PAGE = 200
HISTORY_PAGES = 5
HISTORY_SLACK_S = 300.0

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
        from assistant.logging import get_logger

        self.log = get_logger("gitops_health.slack")
        # The handlers of jobs claimed together read their requests in one transaction and save the refs of the
        # cards they posted in one (assistant.batching): a card costs a share of a transaction, not two.
        self._read_states = Coalescer(self._states, executor)
        self._save_refs = Coalescer(self._save_many, executor)
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
        await self.sync_card(_deployment_id(job), posted_since=_retry_since(job))

    async def update_card(self, job: Job) -> None:
        await self.sync_card(_deployment_id(job), posted_since=_retry_since(job))

    async def blocked_notice(self, job: Job) -> None:
        # A blocked request renders as the notice: why the policy denied it, and no buttons.
        await self.sync_card(_deployment_id(job), posted_since=_retry_since(job))

    async def sync_card(self, deployment_id: str, *, posted_since: float | None = None) -> str:
        """Make the approvals-channel card of ``deployment_id`` show its current state; returns the card's ts.

        ``posted_since`` (unix seconds; a retried job passes its creation time): an earlier run may have posted
        the card and died before saving its ts, or lost Slack's answer to the post, so before posting, the
        channel's messages since then are searched for it (by the deployment id in its metadata) and a card
        found there is adopted instead of posting a second one.
        """
        if not self.channel:
            raise GiveUp("channels.approvals.slack is not set in the config; nowhere to post the card")
        lock = self._locks.setdefault(deployment_id, asyncio.Lock())
        try:
            async with lock:
                return await self._sync(deployment_id, posted_since)
        finally:
            if not lock.locked() and self._locks.get(deployment_id) is lock:
                self._locks.pop(deployment_id, None)

    def _state(self, deployment_id: str) -> tuple[DeploymentView, list[chat_messages.ChatMessage]]:
        """The request (from the given ``load``) and its Slack card."""
        assert self._load is not None
        return self._load(deployment_id), chat_messages.find(self.db, deployment_id, "slack")

    def _states(self, deployment_ids: list[str]) -> list[tuple[DeploymentView, list[chat_messages.ChatMessage]] | UnknownDeployment]:
        """Several requests and their Slack cards as one read transaction of two statements."""
        with self.db.read() as session:
            views = load_views(session, deployment_ids)
            found = chat_messages.find_many(session, deployment_ids, "slack")
        return [(views[d], found[d]) if d in views else UnknownDeployment(d) for d in deployment_ids]

    def _save_many(self, refs: list[tuple[str, str, str]]) -> list[Exception | None]:
        """Several posted cards' (deployment id, channel, ts) in one write transaction; one by one if it fails,
        so one bad row cannot cost the others their ref (a lost ref means a second card on the retry)."""
        try:
            with self.db.session() as session:
                chat_messages.save_many(session, [(dep, "slack", channel, ts) for dep, channel, ts in refs])
            return [None] * len(refs)
        except Exception:
            if len(refs) == 1:
                raise
        outcomes: list[Exception | None] = []
        for dep, channel, ts in refs:
            try:
                chat_messages.save(self.db, dep, "slack", channel, ts)
                outcomes.append(None)
            except Exception as exc:  # noqa: BLE001 - this card's handler raises it (and is retried)
                outcomes.append(exc)
        return outcomes

    async def _sync(self, deployment_id: str, posted_since: float | None = None) -> str:
        try:
            if self._load is not None:
                view, existing = await self._blocking(self._state, deployment_id)
            else:
                view, existing = await self._read_states(deployment_id)
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
        elif posted_since is not None:
            found = await self._find_posted(deployment_id, posted_since)
            if found is not None:
                channel, ts = found
                await self._save_refs((deployment_id, channel, ts))
                try:
                    await self._call("chat.update", {"channel": channel, "ts": ts, "text": text, "blocks": blocks})
                except _SlackError as exc:
                    raise exc.outcome("chat.update") from None
                self.log.info("slack_card_adopted", deployment=deployment_id, channel=channel, ts=ts)
                return ts
        try:
            posted = await self._call("chat.postMessage", post_args(self.channel, deployment_id, text, blocks))
        except _SlackError as exc:
            raise exc.outcome("chat.postMessage") from None
        channel, ts = str(posted["channel"]), str(posted["ts"])
        await self._save_refs((deployment_id, channel, ts))
        return ts

    async def _find_posted(self, deployment_id: str, since: float) -> tuple[str, str] | None:
        """(channel, ts) of this request's card among the approvals channel's messages since ``since``, or None.

        Needs the ``channels:history`` scope (``groups:history`` for a private channel). Without it, or for a
        channel the config names by name rather than id, the card is posted (a duplicate is possible, as it was
        before this search) and the log says what to grant; a network failure retries the job rather than risk it.
        """
        from slack_sdk.errors import SlackApiError

        cursor: str | None = None
        try:
            for _ in range(HISTORY_PAGES):
                answer = await self.client.conversations_history(
                    channel=self.channel, oldest=f"{since - HISTORY_SLACK_S:.6f}", limit=HISTORY_PAGE, include_all_metadata=True,
                    **({"cursor": cursor} if cursor else {}),
                )
                for message in answer.get("messages") or []:
                    if _card_of(message) == deployment_id:
                        return str(answer.get("channel") or self.channel), str(message["ts"])
                cursor = ((answer.get("response_metadata") or {}).get("next_cursor")) or None
                if not answer.get("has_more") or not cursor:
                    return None
        except SlackApiError as exc:
            self.log.warning(
                "slack_card_search_failed", deployment=deployment_id, error=_error(exc),
                detail="a retried card job could not look for a card an earlier run may have posted; posting it (grant the "
                "channels:history scope, and name channels.approvals.slack by id, so a retry never posts a second card)",
            )
            return None
        except _TRANSIENT as exc:
            raise RetryLater(f"conversations.history: {type(exc).__name__}: {exc}") from None
        return None

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


def _retry_since(job: Job) -> float | None:
    """For a job that ran before (it may have posted the card), when it was made; None for a first run."""
    return job.created_at.timestamp() if job.attempt > 1 else None


def post_args(channel: str, deployment_id: str, text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """chat.postMessage's arguments for a card: its metadata names the request, so a retry can find the card."""
    return {
        "channel": channel, "text": text, "blocks": blocks, "unfurl_links": False, "unfurl_media": False,
        "metadata": {"event_type": CARD_EVENT, "event_payload": {"deployment_id": deployment_id}},
    }


def _card_of(message: dict[str, Any]) -> str | None:
    """The deployment id a channel message is the card of (its metadata), or None."""
    meta = message.get("metadata") or {}
    if meta.get("event_type") != CARD_EVENT:
        return None
    value = (meta.get("event_payload") or {}).get("deployment_id")
    return value if isinstance(value, str) else None


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
