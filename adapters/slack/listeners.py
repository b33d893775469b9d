"""The Bolt app: clicks, the reject modal and ``/gitops``, each acknowledged at once and worked on after.

Slack wants an answer to every interaction within 3 s and shows the user an
error otherwise, so every listener calls ``ack()`` first and hands the
database work to a background task (which runs the core on a small thread
pool: the core is synchronous SQLAlchemy) and returns. Bolt runs with
``process_before_response=True``, so the answer goes out the moment the
listener returns: Bolt's other mode polls every 10 ms for the ack, and under
load its pending listeners share the event loop with the acks.

The listeners only translate: a click becomes ``ApprovalService.cast_vote``
and whatever the core answers is shown to the person who clicked. The core
decides who may vote; a refusal (unknown user, missing role, author or
requester, already voted, already decided) comes back as an exception that
the core has already audited, and is shown only to that person
(``chat.postEphemeral``). The card itself is updated by the outbox handler
(adapters/slack/notifier.py) that the core scheduled with the vote, so a vote
cast from Teams or the web updates the Slack card the same way.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import re
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.slack import cards
from assistant.approvals import AlreadyDecided, ApprovalError, ReasonRequired, UnknownDeployment, VoteRefused

if TYPE_CHECKING:
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    from assistant.approvals import ApprovalService
    from assistant.config import AppConfig
    from assistant.deployments import DeploymentView

__all__ = ["HELP", "Background", "build_bolt_app"]

T = TypeVar("T")

_DEPLOYMENT_ID = re.compile(r"^dep_[A-Za-z0-9_-]{1,36}$")

HELP = (
    "*gitops-health* commands:\n"
    "• `/gitops status <deployment id>`: the state of a deploy request (e.g. `/gitops status dep_3f2a…`)\n"
    "• `/gitops help`: this message\n"
    "Approve or reject a request with the buttons on its card in the approvals channel."
)


class Background:
    """The work listeners start after their ack: kept referenced while it runs, awaited at shutdown."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for every started piece of work (a vote already acked must still be recorded)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def build_bolt_app(
    *,
    client: AsyncWebClient,
    signing_secret: str | None,
    config: AppConfig,
    service: ApprovalService,
    executor: Executor | None = None,
    background: Background | None = None,
) -> AsyncApp:
    """The Bolt app with every listener registered; it knows nothing of FastAPI or Socket Mode.

    ``executor`` runs the core's blocking calls (votes, lookups). A small
    dedicated pool keeps a burst of clicks from filling the process with
    threads that compete with the event loop, which must stay free to ack
    the next click at once; the votes queue behind each other instead.
    ``background`` tracks the work started after each ack (the runtime
    drains it before shutting the pool and the Web API session down).
    """
    import logging

    from slack_bolt.async_app import AsyncApp

    app = AsyncApp(
        name="gitops-health",
        client=client,
        signing_secret=signing_secret,
        # Socket Mode delivers over an authenticated websocket: nothing to verify. Over HTTP, Bolt checks v0 signatures.
        request_verification_enabled=signing_secret is not None,
        # The listeners ack and return at once (the work goes to `background`), so Bolt may answer
        # when they return instead of polling for the ack.
        process_before_response=True,
        logger=logging.getLogger("gitops_health.slack.bolt"),
    )
    votes = _Votes(config, service, executor)
    later = background if background is not None else Background()

    @app.action(cards.APPROVE_ACTION)
    async def on_approve(ack: Any, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        later.start(votes.approve(client, body, action))

    @app.action(cards.REJECT_ACTION)
    async def on_reject(ack: Any, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        later.start(votes.ask_reason(client, body, action))

    @app.view_submission(cards.REJECT_MODAL)
    async def on_reject_reason(ack: Any, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient) -> None:
        reason = _reason(view)
        if not reason:
            await ack(response_action="errors", errors={cards.REASON_BLOCK: "Say why: the reason is shown on the card and sent to CI."})
            return
        await ack()
        later.start(votes.reject(client, body, view, reason))

    @app.command("/gitops")
    async def on_command(ack: Any, command: dict[str, Any], respond: Any) -> None:
        words = (command.get("text") or "").split()
        sub = words[0].lower() if words else "help"
        if sub == "help":
            await ack(text=HELP)
            return
        if sub != "status":
            await ack(text=f"`{cards.escape(sub[:40])}` is not a /gitops command here.\n\n{HELP}")
            return
        if len(words) != 2:
            await ack(text="Usage: `/gitops status <deployment id>` (the id is on the card and in CI's answer, e.g. `dep_3f2a…`)")
            return
        await ack()
        later.start(_respond(respond, votes.status(words[1])))

    return app


async def _respond(respond: Any, answer: Coroutine[Any, Any, dict[str, Any]]) -> None:
    await respond(**await answer)


class _Votes:
    """What the listeners do after their ack; one instance per app."""

    def __init__(self, config: AppConfig, service: ApprovalService, executor: Executor | None) -> None:
        self.config = config
        self.service = service
        self.executor = executor
        from assistant.logging import get_logger

        self.log = get_logger("gitops_health.slack")

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, contextvars.copy_context().run, functools.partial(fn, *args))

    # ---------------------------------------------------------------- clicks

    async def approve(self, client: AsyncWebClient, body: dict[str, Any], action: dict[str, Any]) -> None:
        user, channel = _user(body), _channel(body)
        deployment_id = str(action.get("value") or "")
        await self._vote(client, user, channel, deployment_id, "approve", None)

    async def ask_reason(self, client: AsyncWebClient, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Open the reason modal, unless the core would refuse this person's reject anyway (then say why, now)."""
        user, channel = _user(body), _channel(body)
        deployment_id = str(action.get("value") or "")
        person = self.service.resolve_person("slack", user)
        try:
            view = await self._blocking(self.service.get, deployment_id)
        except UnknownDeployment as exc:
            await self._tell(client, channel, user, str(exc))
            return
        if not self._may_reject(view, person):
            # Let the core refuse (and audit) it: without a reason it refuses anyone eligible with ReasonRequired.
            try:
                await self._blocking(self.service.cast_vote, deployment_id, person, "reject", "slack", None)
            except ReasonRequired:
                pass  # eligible after all: ask for the reason
            except ApprovalError as exc:
                await self._tell(client, channel, user, self._refusal(exc))
                return
        from slack_sdk.errors import SlackApiError

        try:
            await client.views_open(trigger_id=body["trigger_id"], view=cards.reject_modal(view, channel))
        except (SlackApiError, OSError, asyncio.TimeoutError) as exc:
            # Typically an expired trigger (Slack allows 3 s): the person must know nothing happened.
            self.log.warning("slack_modal_failed", deployment=deployment_id, user=user, error=f"{type(exc).__name__}: {str(exc)[:200]}")
            await self._tell(client, channel, user, "The reject form could not be opened (Slack did not accept it in time); nothing was recorded. Click Reject again.")

    async def reject(self, client: AsyncWebClient, body: dict[str, Any], view: dict[str, Any], reason: str) -> None:
        user = _user(body)
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        deployment_id = str(meta.get("deployment_id") or "")
        channel = meta.get("channel") or self.config.channels.approvals.slack
        await self._vote(client, user, channel, deployment_id, "reject", reason)

    async def _vote(self, client: AsyncWebClient, user: str, channel: str | None, deployment_id: str, decision: str, reason: str | None) -> None:
        if not _DEPLOYMENT_ID.match(deployment_id):
            await self._tell(client, channel, user, "That button does not belong to a deploy request I know; nothing was recorded.")
            return
        person = self.service.resolve_person("slack", user)
        try:
            result = await self._blocking(self.service.cast_vote, deployment_id, person, decision, "slack", reason)
        except ApprovalError as exc:
            self.log.info("slack_vote_refused", deployment=deployment_id, user=user, code=exc.code)
            await self._tell(client, channel, user, self._refusal(exc))
            return
        except Exception as exc:  # noqa: BLE001 - the person must learn the click did not count
            self.log.error("slack_vote_failed", deployment=deployment_id, user=user, error=f"{type(exc).__name__}: {str(exc)[:200]}")
            await self._tell(client, channel, user, "Your vote could not be recorded because of a server error; nothing changed. Please click again in a moment.")
            return
        self.log.debug("slack_vote", deployment=deployment_id, person=person, decision=decision, decided=result.decided, status=result.view.status)

    # ---------------------------------------------------------------- /gitops status

    async def status(self, deployment_id: str) -> dict[str, Any]:
        try:
            view = await self._blocking(self.service.get, deployment_id)
        except UnknownDeployment as exc:
            return {"text": cards.escape(str(exc)), "response_type": "ephemeral"}
        text, blocks = cards.card(view, self.config, interactive=False)
        return {"text": text, "blocks": blocks, "response_type": "ephemeral", "replace_original": False}

    # ---------------------------------------------------------------- helpers

    def _may_reject(self, view: DeploymentView, person: str) -> bool:
        """Whether the core should accept a reject from ``person`` once it has a reason (only gates the modal)."""
        someone = self.service.person(person)
        if view.decided or someone is None:
            return False
        needed = {r.role for r in view.required_approvals}
        return bool(needed & set(someone.roles)) and all(v.person != person for v in view.votes)

    def _refusal(self, exc: ApprovalError) -> str:
        if isinstance(exc, AlreadyDecided):
            return cards.decided_answer(exc.view, self.config)
        text = f":no_entry: {cards.escape(exc.message)}"
        if isinstance(exc, VoteRefused) and "not recorded" not in text:
            text += "; nothing was recorded."
        return text

    async def _tell(self, client: AsyncWebClient, channel: str | None, user: str, text: str) -> None:
        """Only the person who clicked sees this; a failure to say it is logged, never raised into Bolt."""
        from slack_sdk.errors import SlackApiError

        try:
            if channel:
                await client.chat_postEphemeral(channel=channel, user=user, text=text)
            else:
                await client.chat_postMessage(channel=user, text=text)
        except (SlackApiError, OSError, asyncio.TimeoutError) as exc:
            self.log.warning("slack_ephemeral_failed", user=user, error=f"{type(exc).__name__}: {str(exc)[:200]}")


def _user(body: dict[str, Any]) -> str:
    return str((body.get("user") or {}).get("id") or "")


def _channel(body: dict[str, Any]) -> str | None:
    container = body.get("container") or {}
    return container.get("channel_id") or (body.get("channel") or {}).get("id")


def _reason(view: dict[str, Any]) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(cards.REASON_BLOCK) or {}
    return str((values.get(cards.REASON_ACTION) or {}).get("value") or "").strip()
