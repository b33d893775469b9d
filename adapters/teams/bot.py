"""The Teams bot: `Action.Execute` clicks on approval cards, and `status` / `help` typed to it.

One overridable method per kind of activity (botbuilder's
TeamsActivityHandler): an Adaptive Card click arrives as an
`adaptiveCard/action` invoke and is answered, in the same HTTP response, with
the card as it now stands, which Teams shows to the person who clicked.
Everyone else's copy is updated by the `teams.update_card` job the core
enqueued with the vote (adapters/teams/notifier.py), the same job a vote from
Slack or the web enqueues.

The bot only translates: a click becomes `cast_vote`, and whatever the core
answers goes back on the card. A refusal (unknown user, missing role, author
or requester, already voted, already decided, reject without a reason) comes
back as an exception the core has already audited; it is shown on the
clicker's copy of the card only, and nothing is recorded.
"""

from __future__ import annotations

import asyncio
import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from botbuilder.core import MessageFactory, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import AdaptiveCardInvokeResponse, AdaptiveCardInvokeValue, Attachment

from adapters.teams import cards
from assistant.approvals import AlreadyDecided, ApprovalError, UnknownDeployment, VoteRefused

if TYPE_CHECKING:
    from assistant.approvals import ApprovalService
    from assistant.config import AppConfig

__all__ = ["HELP", "ApprovalBot", "card_attachment"]

_DEPLOYMENT_ID = re.compile(r"^dep_[A-Za-z0-9_-]{1,36}$")
_ERROR_TYPE = "application/vnd.microsoft.error"

HELP = (
    "**gitops-health** understands:\n\n"
    "- `status <deployment id>`: the state of a deploy request (e.g. `status dep_3f2a…`)\n"
    "- `help`: this message\n\n"
    "Approve or reject a request with the buttons on its card in the approvals channel."
)


def card_attachment(card: dict[str, Any]) -> Attachment:
    return Attachment(content_type=cards.CARD_CONTENT_TYPE, content=card)


class ApprovalBot(TeamsActivityHandler):
    """What Teams activities do; `service` is the app's approval workflow (votes also move the graph thread)."""

    def __init__(self, config: AppConfig, service: ApprovalService) -> None:
        super().__init__()
        self.config = config
        self.service = service
        from assistant.logging import get_logger

        self.log = get_logger("gitops_health.teams")

    # ---------------------------------------------------------------- card clicks

    async def on_adaptive_card_invoke(self, turn_context: TurnContext, invoke_value: AdaptiveCardInvokeValue) -> AdaptiveCardInvokeResponse:
        action = invoke_value.action or {}
        verb = str(action.get("verb") or "")
        data = action.get("data") if isinstance(action.get("data"), dict) else {}
        deployment_id = str(data.get("deployment_id") or "")
        if verb not in (cards.APPROVE_VERB, cards.REJECT_VERB, cards.REFRESH_VERB):
            return _error(HTTPStatus.BAD_REQUEST, "unknown_action", f"The action {verb[:60]!r} is not one this bot knows; nothing was recorded.")
        if not _DEPLOYMENT_ID.match(deployment_id):
            return _error(HTTPStatus.BAD_REQUEST, "unknown_deployment", "That button does not belong to a deploy request I know; nothing was recorded.")
        if verb == cards.REFRESH_VERB:
            return await self._current(deployment_id)

        sender = turn_context.activity.from_property
        user_id = str(getattr(sender, "id", "") or "")
        aad = getattr(sender, "aad_object_id", None)
        person = self.service.resolve_person("teams", user_id, aad)
        decision = "approve" if verb == cards.APPROVE_VERB else "reject"
        reason = data.get(cards.REASON_INPUT) if decision == "reject" else None
        reason = reason if isinstance(reason, str) else None
        try:
            result = await asyncio.to_thread(self.service.cast_vote, deployment_id, person, decision, "teams", reason)
        except UnknownDeployment as exc:
            return _error(HTTPStatus.NOT_FOUND, exc.code, exc.message)
        except AlreadyDecided as exc:
            self.log.info("teams_vote_refused", deployment=deployment_id, user=user_id, code=exc.code)
            return _card(cards.card(exc.view, self.config, notice=cards.decided_answer(exc.view, self.config)))
        except ApprovalError as exc:
            self.log.info("teams_vote_refused", deployment=deployment_id, user=user_id, code=exc.code)
            notice = f"⛔ {exc.message}"
            if isinstance(exc, VoteRefused) and "not recorded" not in notice:
                notice += "; nothing was recorded."
            return await self._current(deployment_id, notice=notice)
        except Exception as exc:  # noqa: BLE001 - the person must learn the click did not count
            self.log.error("teams_vote_failed", deployment=deployment_id, user=user_id, error=f"{type(exc).__name__}: {str(exc)[:200]}")
            return _error(
                HTTPStatus.INTERNAL_SERVER_ERROR, "server_error",
                "Your vote could not be recorded because of a server error; nothing changed. Please click again in a moment.",
            )
        self.log.info("teams_vote", deployment=deployment_id, person=person, decision=decision, decided=result.decided, status=result.view.status)
        verb_done = "approval" if decision == "approve" else "reject"
        return _card(cards.card(result.view, self.config, notice=f"Your {verb_done} was recorded."))

    async def _current(self, deployment_id: str, *, notice: str | None = None) -> AdaptiveCardInvokeResponse:
        try:
            view = await asyncio.to_thread(self.service.get, deployment_id)
        except UnknownDeployment as exc:
            return _error(HTTPStatus.NOT_FOUND, exc.code, exc.message)
        return _card(cards.card(view, self.config, notice=notice))

    # ---------------------------------------------------------------- installed somewhere

    async def on_teams_members_added(self, teams_members_added: Any, team_info: Any, turn_context: TurnContext) -> None:
        """When the bot itself joins a conversation, say how to send approval cards there (the ids are hard to find in Teams)."""
        activity = turn_context.activity
        me = getattr(activity.recipient, "id", None)
        if not any(getattr(m, "id", None) == me for m in teams_members_added or []):
            return
        conversation = str(getattr(activity.conversation, "id", "") or "")
        self.log.info("teams_bot_added", conversation=conversation, service_url=activity.service_url)
        if getattr(activity.conversation, "conversation_type", None) == "personal":
            await turn_context.send_activity(_markdown(HELP))
            return
        if conversation == self.config.channels.approvals.teams:
            await turn_context.send_activity(_markdown("gitops-health is here: deploy approval cards will appear in this conversation."))
            return
        await turn_context.send_activity(_markdown(
            "gitops-health is here. To have deploy approval cards posted in this conversation, put this in "
            f"gitops-health.yaml and restart the server:\n\n"
            f"```\nchannels:\n  approvals: {{teams: \"{conversation}\"}}\nteams:\n  service_url: {activity.service_url}\n```"
        ))

    # ---------------------------------------------------------------- typed words

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        text = TurnContext.remove_recipient_mention(turn_context.activity) if turn_context.activity.entities else turn_context.activity.text
        words = (text or "").split()
        sub = words[0].lower() if words else "help"
        if sub == "help":
            await turn_context.send_activity(_markdown(HELP))
            return
        if sub != "status":
            await turn_context.send_activity(_markdown(f"`{cards.safe(sub, 40)}` is not something I understand here.\n\n{HELP}"))
            return
        if len(words) != 2:
            await turn_context.send_activity(_markdown("Usage: `status <deployment id>` (the id is on the card and in CI's answer, e.g. `dep_3f2a…`)"))
            return
        try:
            view = await asyncio.to_thread(self.service.get, words[1])
        except UnknownDeployment as exc:
            await turn_context.send_activity(MessageFactory.text(cards.safe(exc.message, 300)))
            return
        card = cards.card(view, self.config, interactive=False)
        answer = MessageFactory.attachment(card_attachment(card))
        answer.summary = cards.fallback_text(view)
        await turn_context.send_activity(answer)


def _markdown(text: str) -> Any:
    activity = MessageFactory.text(text)
    activity.text_format = "markdown"
    return activity


def _card(card: dict[str, Any]) -> AdaptiveCardInvokeResponse:
    return AdaptiveCardInvokeResponse(status_code=int(HTTPStatus.OK), type=cards.CARD_CONTENT_TYPE, value=card)


def _error(status: HTTPStatus, code: str, message: str) -> AdaptiveCardInvokeResponse:
    # Universal Actions' error answer: Teams tells the clicker and leaves the card as it was.
    return AdaptiveCardInvokeResponse(status_code=int(status), type=_ERROR_TYPE, value={"code": code, "message": message})
