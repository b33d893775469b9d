"""`gitops-health serve` as a real process with Teams in local mode: CI asks, the card reaches the connector, a click decides, CI reads it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import httpx

from assistant.signing import sign
from tests.support.bot_connector import BotConnector, invoke_action
from tests.support.deployments import ONE_APPROVER, post_deployment, request_fields
from tests.support.servers import ServeProcess, clean_environ

WEBHOOK_SECRET = "serve-webhook-secret"
CONVERSATION = "19:approvals@thread.tacv2"


def test_serve_with_teams_posts_the_card_and_takes_a_click(tmp_path: Path) -> None:
    from assistant.config import DEMO_CONFIG

    with BotConnector() as connector:
        config = copy.deepcopy(DEMO_CONFIG)
        config["teams"] = {"service_url": connector.url}
        config["channels"]["approvals"] = {"teams": CONVERSATION}
        (tmp_path / "gitops-health.yaml").write_text(json.dumps(config, default=str))  # JSON is YAML
        env = clean_environ(
            GITOPS_HEALTH_CONFIG=str(tmp_path / "gitops-health.yaml"),
            GITOPS_HEALTH_DATA_DIR=str(tmp_path / "data"),
            GITOPS_HEALTH_WEBHOOK_SECRET=WEBHOOK_SECRET,
            GITOPS_HEALTH_OUTBOX_POLL_SECONDS="0.1",
        )
        with ServeProcess(tmp_path, env) as server:
            enabled = server.wait_event("teams_enabled")
            assert enabled["mode"] == "local" and enabled["cards"] is True and enabled["conversation"] == CONVERSATION
            with httpx.Client(base_url=server.base_url, timeout=30) as http:
                server.wait_healthy(http)

                fields = request_fields(ONE_APPROVER, service="ehr-api", version="3.1.0", repository="acme/ehr")
                asked = post_deployment(http, WEBHOOK_SECRET, fields)
                assert asked.status_code == 202, asked.text
                dep_id = asked.json()["id"]

                (posted,) = connector.wait_for("send", timeout=30)
                card = posted.body["attachments"][0]["content"]
                assert posted.conversation == CONVERSATION and [a["title"] for a in card["actions"]] == ["Approve", "Reject"]

                click = invoke_action(user_id="29:1bob", verb="deployment.approve", deployment_id=dep_id, service_url=connector.url)
                answered = http.post("/api/messages", json=click)
                assert answered.status_code == 200 and "Approved** by Bob Chen" in json.dumps(answered.json()["value"], ensure_ascii=False)

                (updated,) = connector.wait_for("update", timeout=30)
                assert "Approved** by Bob Chen" in json.dumps(updated.body, ensure_ascii=False)
                state = http.get(f"/api/deployments/{dep_id}", headers=sign(WEBHOOK_SECRET, None, b""))
                assert state.json()["status"] == "approved"
                assert [(v["person"], v["via"]) for v in state.json()["votes"]] == [("bob", "teams")]
            assert server.stop() == 0
