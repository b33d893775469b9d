"""One request, two chats: the Slack and Teams cards show the same state, and votes from both add up to one decision.

The real server runs with Slack (against the loopback Slack Web API, clicks
v0-signed) and Teams (local mode, cards to the loopback Bot Connector, clicks
as `adaptiveCard/action` invokes) both on, over SQLite and Postgres. A late
click from the chat that did not decide is answered with who decided.
"""

from __future__ import annotations

# RE2 before regopy (see tests/adapters/http/conftest.py).
import assistant.redact  # noqa: F401  isort: skip

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.support.bot_connector import BotConnector, invoke_action
from tests.support.deployments import CLINICAL, ask
from tests.support.servers import running
from tests.support.slack_api import SlackApiServer, block_action, signed_headers

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

SLACK_CHANNEL = "C0APPROVALS"
TEAMS_CONVERSATION = "19:approvals@thread.tacv2"
SIGNING_SECRET = "cross-chat-slack-signing-secret"


def teams_buttons(attachments: str) -> list[str]:
    """The titles of the Teams card's buttons (its `refresh` action is not a button)."""
    (attachment,) = json.loads(attachments)
    return [a.get("title") for a in attachment["content"].get("actions", [])]


class BothChats:
    def __init__(self, http: httpx.Client, app: Any, slack: SlackApiServer, teams: BotConnector) -> None:
        self.http, self.app, self.slack, self.teams = http, app, slack, teams
        self.workflow = app.state.approvals

    def slack_click(self, user: str, deployment_id: str) -> None:
        body, headers = block_action(user=user, action_id="deployment.approve", value=deployment_id, channel=SLACK_CHANNEL)
        answer = self.http.post("/slack/events", content=body, headers={**headers, **signed_headers(SIGNING_SECRET, body)})
        assert answer.status_code == 200

    def teams_click(self, user: str, deployment_id: str, verb: str = "deployment.approve", **kw: Any) -> dict[str, Any]:
        activity = invoke_action(user_id=user, verb=verb, deployment_id=deployment_id, service_url=self.teams.url, conversation=TEAMS_CONVERSATION, **kw)
        answer = self.http.post("/api/messages", json=activity)
        assert answer.status_code == 200, answer.text
        return answer.json()["value"]

    def slack_card(self, deployment_id: str) -> str:
        for message in self.slack.channel_messages(SLACK_CHANNEL):
            if deployment_id in message["text"]:
                return json.dumps(message["blocks"], ensure_ascii=False)
        return ""

    def teams_card(self, deployment_id: str) -> str:
        for activity in reversed(self.teams.conversation(TEAMS_CONVERSATION)):
            text = json.dumps(activity.get("attachments", []), ensure_ascii=False)
            if deployment_id in text:
                return text
        return ""

    def wait_both(self, deployment_id: str, shows: str, what: str) -> tuple[str, str]:
        """Wait until the card in each chat shows ``shows``; return (slack card, teams card)."""
        self.slack.wait_until(lambda _: shows in self.slack_card(deployment_id), what=f"the Slack card to show {what}")
        self.teams.wait_until(lambda _: shows in self.teams_card(deployment_id), what=f"the Teams card to show {what}")
        return self.slack_card(deployment_id), self.teams_card(deployment_id)


@pytest.fixture
def both(db: Any, tmp_path: Path) -> Iterator[BothChats]:
    from adapters.http.app import create_app
    from adapters.http.background import install_outbox
    from assistant.config import DEMO_CONFIG, Settings, parse_config
    from assistant.outbox_worker import WorkerOptions
    from assistant.policy import PolicyEngine

    with SlackApiServer() as slack, BotConnector() as teams:
        data = copy.deepcopy(DEMO_CONFIG)
        data["teams"] = {"service_url": teams.url}
        data["channels"]["approvals"] = {"slack": SLACK_CHANNEL, "teams": TEAMS_CONVERSATION}
        config = parse_config(data, "cross-chat")
        settings = Settings(
            _env_file=None, data_dir=tmp_path / "data", webhook_secret=SecretStr("cross-chat-webhook"),
            slack_bot_token=SecretStr("xoxb-cross-chat"), slack_signing_secret=SecretStr(SIGNING_SECRET), slack_api_url=slack.url,
        )
        app = create_app(settings, config, db, policy_engine=PolicyEngine.load())
        install_outbox(app, options=WorkerOptions(poll_s=0.05, backoff_base_s=0.05, backoff_max_s=0.2))
        with running(app) as http:
            yield BothChats(http, app, slack, teams)


def test_votes_from_slack_and_teams_add_up_and_both_cards_follow(both: BothChats) -> None:
    view = ask(both.workflow, CLINICAL)
    assert [(r.role, r.count) for r in view.required_approvals] == [("approver", 2), ("clinical-safety-officer", 1)]
    slack_card, teams_card = both.wait_both(view.id, "Approve", "the buttons")
    assert "Reject" in slack_card and "Reject" in teams_card

    both.slack_click("U0BOB", view.id)  # bob (approver and clinical safety officer) from Slack
    slack_card, teams_card = both.wait_both(view.id, "Bob Chen", "bob's vote")
    assert '"type": "actions"' in slack_card and teams_buttons(teams_card) == ["Approve", "Reject"]  # one person fills one slot: still pending

    both.teams_click("29:1alice", view.id)  # alice from Teams
    both.wait_both(view.id, "Alice Moreno", "alice's vote")
    assert both.workflow.get(view.id).status == "pending"

    both.slack_click("U0ERIN", view.id)  # erin from Slack settles it
    slack_card, teams_card = both.wait_both(view.id, "by Erin Walsh", "the decision")
    assert "*Approved* by Erin Walsh" in slack_card and "Approved** by Erin Walsh" in teams_card
    assert '"type": "actions"' not in slack_card, slack_card  # no live buttons anywhere
    assert teams_buttons(teams_card) == [], teams_card

    decided = both.workflow.get(view.id)
    assert (decided.status, decided.decided_by) == ("approved", "erin")
    assert [(v.person, v.via) for v in decided.votes] == [("bob", "slack"), ("alice", "teams"), ("erin", "slack")]
    assert len(both.slack.calls_to("chat.postMessage")) == 1 and len(both.teams.calls_to("send")) == 1  # one card each, updated

    # A late click from the chat that did not decide changes nothing and says who decided.
    late = both.teams_click("29:1bob", view.id, verb="deployment.reject", reason="too late")
    assert "already approved by Erin Walsh" in json.dumps(late)
    assert both.workflow.get(view.id).decided_at == decided.decided_at
