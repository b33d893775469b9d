"""One deploy request, two chats: the Slack card and the Teams card show the same state, and votes from both count.

The real server runs with Slack (loopback Web API, v0-signed clicks on
/slack/events) and Teams (loopback Bot Connector, `adaptiveCard/action`
invokes on /api/messages, local mode) both on; SQLite and Postgres.
"""

from __future__ import annotations

# RE2 before regopy (see tests/adapters/http/conftest.py).
import assistant.redact  # noqa: F401  isort: skip

import copy
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.adapters.teams.conftest import running  # noqa: E402
from tests.support.bot_connector import BotConnector, invoke_action  # noqa: E402
from tests.support.slack_api import SlackApiServer, block_action, signed_headers  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

SIGNING_SECRET = "cross-chat-signing-secret"
SLACK_CHANNEL = "C0APPROVALS"
TEAMS_CONVERSATION = "19:approvals@thread.tacv2"

# A dosing change without tests: two approvers and a clinical safety officer, by distinct people.
CLINICAL = """diff --git a/pump/dose.py b/pump/dose.py
--- a/pump/dose.py
+++ b/pump/dose.py
@@ -1,2 +1,3 @@
 def dose(rate):
+    rate = rate * 2
     return rate
"""


@pytest.fixture
def both(db: Any, tmp_path: Path) -> Iterator[Any]:
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
            yield _Both(http, app, slack, teams)


class _Both:
    def __init__(self, http: Any, app: Any, slack: SlackApiServer, teams: BotConnector) -> None:
        self.http, self.app, self.slack, self.teams = http, app, slack, teams
        self.service = app.state.approvals

    def ask(self, diff: str) -> Any:
        from assistant.deployments import DeploymentRequest

        view, _ = self.service.request_deployment(DeploymentRequest.model_validate({
            "service": "infusion-pump-controller", "version": "2.4.1", "environment": "production", "repository": "acme/pump",
            "commit": "9f1c2e7", "requested_by": "dev@example.org", "authors": ["dev@example.org"], "diff": diff,
        }))
        return view

    def slack_click(self, user: str, deployment_id: str) -> None:
        body, headers = block_action(user=user, action_id="deployment.approve", value=deployment_id, channel=SLACK_CHANNEL)
        assert self.http.post("/slack/events", content=body, headers={**headers, **signed_headers(SIGNING_SECRET, body)}).status_code == 200

    def teams_click(self, user: str, deployment_id: str) -> dict[str, Any]:
        activity = invoke_action(user_id=user, verb="deployment.approve", deployment_id=deployment_id, service_url=self.teams.url)
        answer = self.http.post("/api/messages", json=activity)
        assert answer.status_code == 200, answer.text
        return answer.json()["value"]

    def slack_card(self, deployment_id: str) -> str:
        found = [m for m in self.slack.channel_messages(SLACK_CHANNEL) if deployment_id in m["text"]]
        return json.dumps(found[-1]["blocks"], ensure_ascii=False) if found else ""

    def teams_card(self, deployment_id: str) -> str:
        found = [a for a in self.teams.conversation(TEAMS_CONVERSATION) if deployment_id in json.dumps(a)]
        return json.dumps(found[-1]["attachments"][0]["content"], ensure_ascii=False) if found else ""

    def both_show(self, deployment_id: str, slack_has: list[str], teams_has: list[str], what: str) -> tuple[str, str]:
        self.slack.wait_until(lambda _: all(s in self.slack_card(deployment_id) for s in slack_has), timeout=10, what=f"Slack: {what}")
        self.teams.wait_until(lambda _: all(s in self.teams_card(deployment_id) for s in teams_has), timeout=10, what=f"Teams: {what}")
        return self.slack_card(deployment_id), self.teams_card(deployment_id)


def test_a_request_approved_partly_from_each_chat_shows_the_same_state_in_both(both: Any) -> None:
    view = both.ask(CLINICAL)
    assert [(r.role, r.count) for r in view.required_approvals] == [("approver", 2), ("clinical-safety-officer", 1)]
    both.both_show(view.id, ["Approve"], ["Approve"], "the two cards posted")

    both.slack_click("U0BOB", view.id)  # from Slack
    slack, teams = both.both_show(view.id, ["Bob Chen", "approved via slack"], ["Bob Chen ✅ approved via slack"], "bob's Slack vote on both cards")
    assert "Approve" in slack and "Action.Execute" in teams  # still pending in both

    both.teams_click("29:1alice", view.id)  # from Teams
    slack, teams = both.both_show(view.id, ["Alice Moreno", "approved via teams"], ["Alice Moreno ✅ approved via teams"], "alice's Teams vote on both cards")
    assert both.service.get(view.id).status == "pending"
    assert "*approver*: 2 of 2" in slack and '"value": "✅ 2 of 2"' in teams  # the same count in both

    answered = both.teams_click("29:1erin", view.id)  # the deciding vote, from Teams
    assert "Approved** by Erin Walsh" in json.dumps(answered, ensure_ascii=False)
    slack, teams = both.both_show(view.id, ["*Approved* by Erin Walsh"], ["Approved** by Erin Walsh"], "the decided cards")
    assert '"type": "actions"' not in slack and "Action.Execute\", \"title\": \"Approve" not in teams  # no live buttons anywhere
    state = both.service.get(view.id)
    assert state.status == "approved" and [(v.person, v.via) for v in state.votes] == [("bob", "slack"), ("alice", "teams"), ("erin", "teams")]
    assert len(both.slack.calls_to("chat.postMessage")) == 1 and len(both.teams.calls_to("send")) == 1  # one card each, updated in place
