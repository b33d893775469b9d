"""`gitops-health serve` as a real process with Slack on: CI asks, the card appears, a signed click decides, CI reads it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from assistant.signing import sign
from tests.support.deployments import ONE_APPROVER, post_deployment, request_fields
from tests.support.servers import ServeProcess, clean_environ
from tests.support.slack_api import SlackApiServer, block_action, signed_headers

WEBHOOK_SECRET = "serve-webhook-secret"
SIGNING_SECRET = "serve-slack-signing-secret"


def test_serve_with_slack_posts_the_card_and_takes_a_signed_click(tmp_path: Path) -> None:
    with SlackApiServer() as slack_api:
        env = clean_environ(
            GITOPS_HEALTH_DATA_DIR=str(tmp_path / "data"),
            GITOPS_HEALTH_WEBHOOK_SECRET=WEBHOOK_SECRET,
            SLACK_BOT_TOKEN="xoxb-serve-test",
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack_api.url,
            GITOPS_HEALTH_OUTBOX_POLL_SECONDS="0.1",
        )
        with ServeProcess(tmp_path, env) as server:
            enabled = server.wait_event("slack_enabled")
            assert enabled["mode"] == "http" and enabled["channel"] == "C0APPROVALS"
            with httpx.Client(base_url=server.base_url, timeout=30) as http:
                server.wait_healthy(http)

                fields = request_fields(ONE_APPROVER, service="ehr-api", version="3.1.0", repository="acme/ehr")
                asked = post_deployment(http, WEBHOOK_SECRET, fields)
                assert asked.status_code == 202, asked.text
                dep_id = asked.json()["id"]

                (posted,) = slack_api.wait_for("chat.postMessage", timeout=30)
                assert posted.token == "xoxb-serve-test" and posted.args["channel"] == "C0APPROVALS"
                assert [e["text"]["text"] for b in posted.args["blocks"] if b["type"] == "actions" for e in b["elements"]] == ["Approve", "Reject"]

                click, headers = block_action(user="U0BOB", action_id="deployment.approve", value=dep_id)
                acked = http.post("/slack/events", content=click, headers={**headers, **signed_headers(SIGNING_SECRET, click)})
                assert acked.status_code == 200

                (updated,) = slack_api.wait_for("chat.update", timeout=30)
                assert "*Approved* by Bob Chen" in json.dumps(updated.args["blocks"])
                state = http.get(f"/api/deployments/{dep_id}", headers=sign(WEBHOOK_SECRET, None, b""))
                assert state.json()["status"] == "approved"
                assert [(v["person"], v["via"]) for v in state.json()["votes"]] == [("bob", "slack")]
            assert server.stop() == 0
