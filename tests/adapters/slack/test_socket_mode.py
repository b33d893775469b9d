"""Socket Mode: with SLACK_APP_TOKEN the server opens a websocket to Slack and takes clicks from it, acked at once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr

from tests.support.deployments import ONE_APPROVER as DIFF
from tests.support.slack_api import SlackApiServer, SocketModeServer, block_action, block_action_payload


@pytest.fixture
def socket_mode() -> Any:
    with SocketModeServer() as server:
        yield server


def test_a_click_over_socket_mode_is_acked_and_decides(db, config, tmp_path, policy_engine, serve, socket_mode):
    from adapters.http.app import create_app
    from adapters.http.background import install_outbox
    from assistant.config import Settings
    from assistant.deployments import DeploymentRequest
    from assistant.outbox_worker import WorkerOptions

    with SlackApiServer(socket_mode_url=socket_mode.ws_url) as slack_api:
        settings = Settings(
            _env_file=None, data_dir=tmp_path / "data", slack_bot_token=SecretStr("xoxb-test"),
            slack_app_token=SecretStr("xapp-1-test"), slack_api_url=slack_api.url,
        )
        app = create_app(settings, config, db, policy_engine=policy_engine)
        install_outbox(app, options=WorkerOptions(poll_s=0.05))
        with serve(app) as http:
            service = app.state.approvals
            socket_mode.wait_connected()
            (opened,) = slack_api.calls_to("apps.connections.open")
            assert opened.token == "xapp-1-test"

            view, _ = service.request_deployment(DeploymentRequest.model_validate({
                "service": "pump", "version": "1.0", "environment": "production", "repository": "acme/pump", "commit": "abc1234",
                "requested_by": "dev@example.org", "authors": ["dev@example.org"], "diff": DIFF}))
            slack_api.wait_for("chat.postMessage")

            body, _ = block_action(user="U0BOB", action_id="deployment.approve", value=view.id)
            envelope = socket_mode.send("interactive", block_action_payload(body))
            assert socket_mode.wait_ack(envelope)["envelope_id"] == envelope

            slack_api.wait_for("chat.update")
            assert service.get(view.id).status == "approved"
            card = slack_api.channel_messages("C0APPROVALS")[0]
            assert "*Approved* by Bob Chen" in json.dumps(card["blocks"])

            # Slash commands come over the socket too; the ack carries the answer.
            command = {"command": "/gitops", "text": "help", "user_id": "U0CAROL", "channel_id": "C0APPROVALS", "team_id": "T0GITOPS",
                       "response_url": slack_api.response_url("socket"), "trigger_id": "1.2.3", "api_app_id": "A0GITOPS"}
            helped = socket_mode.wait_ack(socket_mode.send("slash_commands", command))
            assert "/gitops status <deployment id>" in json.dumps(helped["payload"])

            # No signing secret: HTTP events cannot be verified, and the server says so instead of trusting them.
            refused = http.post("/slack/events", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert refused.status_code == 503 and refused.json()["error"] == "slack_unverifiable"


def test_a_slack_outage_does_not_keep_the_server_from_starting(db, config, tmp_path, policy_engine, serve):
    from adapters.http.app import create_app
    from assistant.config import Settings

    with SlackApiServer() as slack_api:  # apps.connections.open answers ok: false, as when Socket Mode is off for the app
        settings = Settings(
            _env_file=None, data_dir=tmp_path / "data", slack_bot_token=SecretStr("xoxb-test"),
            slack_app_token=SecretStr("xapp-1-test"), slack_api_url=slack_api.url,
        )
        with serve(create_app(settings, config, db, policy_engine=policy_engine)) as http:
            assert http.get("/healthz").status_code == 200
            slack_api.wait_for("apps.connections.open")  # it keeps trying in the background
