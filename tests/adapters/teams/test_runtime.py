"""When Teams cards can go out from this server, what happens when they cannot, and what a refused post does to its job."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.teams.runtime import build_auth, cards_deliverable, is_loopback
from assistant import outbox
from assistant.storage.outbox_tables import outbox_jobs
from tests.adapters.teams.conftest import settings_for, start_server, teams_config
from tests.support.servers import running
from tests.support.bot_connector import BotConnector

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.5.5.5", True), ("::1", True), ("[::1]", True), ("localhost", True),
     ("10.0.0.1", False), ("smba.trafficmanager.net", False), ("", False), (None, False)],
)
def test_is_loopback(host: str | None, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_cards_go_out_only_where_they_can_arrive(tmp_path: Path) -> None:
    local, remote = teams_config("http://127.0.0.1:3978/"), teams_config("https://smba.trafficmanager.net/teams/")
    assert cards_deliverable(settings_for(tmp_path), local) == (True, None)
    ok, why = cards_deliverable(settings_for(tmp_path), remote)
    assert not ok and why is not None and "TEAMS_APP_ID" in why and "TEAMS_APP_PASSWORD" in why
    assert cards_deliverable(settings_for(tmp_path, teams_app_id="app-1"), remote) == (True, None)
    ok, why = cards_deliverable(settings_for(tmp_path), teams_config("http://127.0.0.1:3978/", conversation=None))
    assert not ok and why is not None and "channels.approvals.teams" in why


def test_a_bad_metadata_url_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="TEAMS_OPENID_METADATA_URL: 'ftp://x' is not an http"):
        build_auth(settings_for(tmp_path, teams_app_id="app-1"), {"TEAMS_OPENID_METADATA_URL": "ftp://x"})


def test_without_credentials_a_remote_connector_gets_no_card_jobs(sqlite_db: Any, tmp_path: Path, policy_engine: Any) -> None:
    """The demo defaults (Teams' public service URL, no TEAMS_APP_ID): cards could never be delivered, so none are
    queued (before, their jobs waited forever); the request itself is unaffected."""
    config = teams_config("https://smba.trafficmanager.net/teams/")
    with BotConnector() as unused:
        app = start_server(sqlite_db, config, settings_for(tmp_path), unused, policy_engine)
        with running(app):
            assert not any(kind.startswith("teams.") for kind in outbox.handlers())
            assert app.state.teams is None  # botbuilder not even loaded until someone calls /api/messages
            view = app.state.approvals.service.request_deployment(_request())[0]
            with sqlite_db.read() as s:
                kinds = [k for (k,) in s.execute(select(outbox_jobs.c.kind)).all()]
            assert not [k for k in kinds if k.startswith("teams.")], kinds
            assert view.status == "pending"
            assert app.state.approvals.service.chats == ()


def test_a_post_the_connector_refuses_for_good_fails_its_job_with_what_to_fix(db: Any, tmp_path: Path, connector: BotConnector, policy_engine: Any) -> None:
    connector.fail("send", times=1, status=403)
    app = start_server(db, teams_config(connector.url), settings_for(tmp_path), connector, policy_engine)
    with running(app):
        app.state.approvals.service.request_deployment(_request())
        deadline = time.monotonic() + 10
        while True:
            with db.read() as s:
                row = s.execute(select(outbox_jobs).where(outbox_jobs.c.kind == "teams.post_card")).one()
            if row.status == "failed":
                break
            assert time.monotonic() < deadline, f"job still {row.status}: {row.last_error}"
            time.sleep(0.05)
        assert row.attempts == 1 and "add the app to that team/channel" in row.last_error
        assert len(connector.calls_to("send")) == 1  # not retried


def _request() -> Any:
    from assistant.deployments import DeploymentRequest
    from tests.support.deployments import ONE_APPROVER, request_fields

    return DeploymentRequest.model_validate(request_fields(ONE_APPROVER))



def test_connector_clients_are_built_once_and_closed_with_the_server(db: Any, tmp_path: Path, connector: BotConnector, policy_engine: Any) -> None:
    """botbuilder would build a client (35-55 ms, and a new Entra token) per activity; one per service URL serves them all."""
    from tests.support.bot_connector import invoke_action

    app = start_server(db, teams_config(connector.url), settings_for(tmp_path), connector, policy_engine)
    with running(app) as http:
        runtime = app.state.teams
        first = app.state.approvals.service.request_deployment(_request())[0]
        app.state.approvals.service.request_deployment(_request().model_copy(update={"version": "2.4.2"}))
        connector.wait_for("send", count=2)
        clients = dict(runtime.auth.connectors)
        click = invoke_action(user_id="29:1bob", verb="deployment.approve", deployment_id=first.id, service_url=connector.url)
        assert http.post("/api/messages", json=click).status_code == 200
        connector.wait_for("update", count=1)
        assert len(clients) == 1 and [k[0] for k in clients] == [connector.url]
        assert dict(runtime.auth.connectors) == clients  # the click and the update reused the proactive posts' client
    assert runtime.auth.connectors == {}  # closed and forgotten at shutdown


def test_a_database_failure_during_a_click_is_told_to_the_clicker(sqlite_db: Any, tmp_path: Path, connector: BotConnector, policy_engine: Any) -> None:
    from sqlalchemy import text

    from tests.support.bot_connector import invoke_action

    app = start_server(sqlite_db, teams_config(connector.url, conversation=None), settings_for(tmp_path), connector, policy_engine)
    with running(app) as http:
        view = app.state.approvals.service.request_deployment(_request())[0]
        with sqlite_db.engine.begin() as conn:
            conn.execute(text("DROP TABLE votes"))  # the database breaks under the server
        click = invoke_action(user_id="29:1bob", verb="deployment.approve", deployment_id=view.id, service_url=connector.url)
        answer = http.post("/api/messages", json=click)
        assert answer.status_code == 200
        assert answer.json()["statusCode"] == 500 and "could not be recorded" in answer.json()["value"]["message"]
