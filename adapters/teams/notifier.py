"""The Teams side of the outbox: ``teams.post_card``, ``teams.update_card``, ``teams.blocked_notice``.

Every handler does the same thing, like the Slack notifier: load the request
as the database has it *now*, render it, and make the one card in the
approvals conversation show it: post it proactively (the bot speaks first,
through `CloudAdapter.continue_conversation` to the configured conversation
at `teams.service_url`) if it is not there yet, else update that activity.
The card's conversation and activity id are saved (`assistant.chat_messages`)
right after the post and looked up before every run, so the outbox's
at-least-once delivery cannot post two cards. The outbox never runs two
``teams.*`` jobs of one request at once, in any process (see
``assistant.outbox``), so a post and an update cannot both post; the lock
here covers direct calls.

Failures are sorted the way the Bot Connector means them: throttling (429),
server trouble (5xx) and network errors are retried (`RetryLater`, honouring
`Retry-After`); a refused token (401/403) or an unknown conversation gives up
with what to fix, because the next vote enqueues a fresh update anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from adapters.teams import cards
from assistant import chat_messages
from assistant.approvals import UnknownDeployment, load_views
from assistant.batching import Coalescer
from assistant.outbox import GiveUp, Handler, Job, RetryLater

if TYPE_CHECKING:
    from botbuilder.core import BotAdapter

    from assistant.config import AppConfig
    from assistant.deployments import DeploymentView
    from assistant.storage import Database

__all__ = ["KINDS", "TeamsNotifier"]

KINDS = ("teams.post_card", "teams.update_card", "teams.blocked_notice")
CHANNEL_ID = "msteams"

_PERMANENT = {
    400: "the Bot Connector refused the card (a bug in gitops-health; please report it)",
    401: "the Bot Connector refused the bot's token; check TEAMS_APP_ID, TEAMS_APP_PASSWORD and TEAMS_TENANT_ID",
    403: "the bot may not post in the approvals conversation; add the app to that team/channel",
    404: "channels.approvals.teams does not name a conversation the bot is in; fix the conversation id in the config",
}


class TeamsNotifier:
    """Renders deploy requests into the approvals conversation; its methods are outbox handlers."""

    def __init__(
        self,
        adapter: BotAdapter,
        config: AppConfig,
        db: Database,
        *,
        app_id: str | None = None,
        load: Callable[[str], DeploymentView] | None = None,
    ) -> None:
        self.adapter = adapter
        self.config = config
        self.db = db
        self.app_id = app_id or ""
        self.conversation = config.channels.approvals.teams
        self.service_url = config.teams.service_url
        self._load = load
        self._locks: dict[str, asyncio.Lock] = {}
        # Card jobs claimed together read their requests in one transaction (assistant.batching), as Slack's do.
        self._read_states = Coalescer(self._states)
        # Bound once: the outbox unregisters a handler only if it is still the very object registered.
        self._handlers: dict[str, Handler] = {
            "teams.post_card": self.post_card,
            "teams.update_card": self.update_card,
            "teams.blocked_notice": self.blocked_notice,
        }

    def handlers(self) -> dict[str, Handler]:
        return dict(self._handlers)

    async def post_card(self, job: Job) -> None:
        await self.sync_card(_deployment_id(job))

    async def update_card(self, job: Job) -> None:
        await self.sync_card(_deployment_id(job))

    async def blocked_notice(self, job: Job) -> None:
        # A blocked request renders as the notice: why the policy denied it, and no buttons.
        await self.sync_card(_deployment_id(job))

    async def sync_card(self, deployment_id: str) -> str:
        """Make the approvals-conversation card of ``deployment_id`` show its current state; returns its activity id."""
        if not self.conversation:
            raise GiveUp("channels.approvals.teams is not set in the config; nowhere to post the card")
        lock = self._locks.setdefault(deployment_id, asyncio.Lock())
        try:
            async with lock:
                return await self._sync(deployment_id)
        finally:
            if not lock.locked() and self._locks.get(deployment_id) is lock:
                self._locks.pop(deployment_id, None)

    def _state(self, deployment_id: str) -> tuple[DeploymentView, list[chat_messages.ChatMessage]]:
        """The request (from the given ``load``) and its Teams card."""
        assert self._load is not None
        return self._load(deployment_id), chat_messages.find(self.db, deployment_id, "teams")

    def _states(self, deployment_ids: list[str]) -> list[tuple[DeploymentView, list[chat_messages.ChatMessage]] | UnknownDeployment]:
        """Several requests and their Teams cards as one read transaction of two statements."""
        with self.db.read() as session:
            views = load_views(session, deployment_ids)
            found = chat_messages.find_many(session, deployment_ids, "teams")
        return [(views[d], found[d]) if d in views else UnknownDeployment(d) for d in deployment_ids]

    async def _sync(self, deployment_id: str) -> str:
        try:
            if self._load is not None:
                view, existing = await asyncio.to_thread(self._state, deployment_id)
            else:
                view, existing = await self._read_states(deployment_id)
        except UnknownDeployment as exc:
            raise GiveUp(str(exc)) from None
        card = cards.card(view, self.config)
        text = cards.fallback_text(view)
        current = existing[-1] if existing else None
        if current is not None:
            service_url = str(current.data.get("service_url") or self.service_url)
            try:
                await self._send(current.channel, service_url, card, text, activity_id=current.message_ref)
                return current.message_ref
            except _ConnectorError as exc:
                if exc.status != 404:
                    raise exc.outcome("update activity") from None
                # Someone deleted the card: post it again below and remember the new one.
        try:
            activity_id = await self._send(self.conversation, self.service_url, card, text)
        except _ConnectorError as exc:
            raise exc.outcome("send to conversation") from None
        await asyncio.to_thread(
            chat_messages.save, self.db, deployment_id, "teams", self.conversation, activity_id, {"service_url": self.service_url}
        )
        return activity_id

    async def _send(self, conversation: str, service_url: str, card: dict[str, Any], text: str, *, activity_id: str | None = None) -> str:
        """Post (or, with ``activity_id``, replace) the card in ``conversation``; returns the activity id."""
        from botbuilder.core import MessageFactory, TurnContext
        from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationReference

        from adapters.teams.bot import card_attachment

        reference = ConversationReference(
            channel_id=CHANNEL_ID,
            service_url=service_url,
            conversation=ConversationAccount(id=conversation, is_group=True),
            bot=ChannelAccount(id=self.app_id or "gitops-health"),
        )
        sent: list[str] = []

        async def logic(turn_context: TurnContext) -> None:
            # The card alone in the channel; `summary` is the line Teams shows in notifications and the activity feed.
            activity = MessageFactory.attachment(card_attachment(card))
            activity.summary = text
            if activity_id is not None:
                activity.id = activity_id
                await turn_context.update_activity(activity)
                sent.append(activity_id)
            else:
                # A new top-level post, not a reply: turn_context.send_activity would address it as a reply to the
                # continuation event's made-up id, which the Bot Connector does not know.
                TurnContext.apply_conversation_reference(activity, TurnContext.get_conversation_reference(turn_context.activity))
                activity.reply_to_id = None
                connector = turn_context.turn_state[turn_context.adapter.BOT_CONNECTOR_CLIENT_KEY]
                response = await connector.conversations.send_to_conversation(conversation, activity)
                if response is None or not response.id:
                    raise GiveUp("the Bot Connector accepted the card but returned no activity id, so it could never be updated")
                sent.append(str(response.id))

        try:
            await self.adapter.continue_conversation(reference, logic, bot_app_id=self.app_id or None)
        except (GiveUp, RetryLater):
            raise
        except Exception as exc:  # noqa: BLE001 - sorted into retry / give up below
            raise _ConnectorError.of(exc) from None
        return sent[0]


class _ConnectorError(Exception):
    """A failed Bot Connector call, reduced to its HTTP status (0: no answer) and Retry-After."""

    def __init__(self, status: int, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.retry_after = retry_after

    @classmethod
    def of(cls, exc: BaseException) -> _ConnectorError:
        response = getattr(exc, "response", None)
        status = int(getattr(response, "status_code", 0) or 0)
        retry_after: float | None = None
        headers = getattr(response, "headers", None) or {}
        raw = headers.get("Retry-After") if hasattr(headers, "get") else None
        try:
            retry_after = float(raw) if raw is not None else None
        except (TypeError, ValueError):
            retry_after = None
        return cls(status, f"{type(exc).__name__}: {str(exc)[:300]}", retry_after)

    def outcome(self, what: str) -> Exception:
        if self.status in _PERMANENT:
            return GiveUp(f"{what}: the Bot Connector answered HTTP {self.status}: {_PERMANENT[self.status]}")
        if self.status == 0:
            return RetryLater(f"{what}: no answer from the Bot Connector ({self.detail})")
        return RetryLater(f"{what}: the Bot Connector answered HTTP {self.status}", delay=self.retry_after)


def _deployment_id(job: Job) -> str:
    deployment_id = job.payload.get("deployment_id")
    if not isinstance(deployment_id, str) or not deployment_id:
        raise GiveUp(f"job {job.id} ({job.kind}) has no deployment_id in its payload: {job.payload!r}")
    return deployment_id
