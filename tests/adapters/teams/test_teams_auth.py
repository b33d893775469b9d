"""Who may talk to /api/messages: with TEAMS_APP_ID, only holders of a valid Bot Framework token; without it, only this machine.

Tokens are real RS256 JWTs signed with a locally generated key, published by a
loopback OpenID metadata document and JWKS (tests/support/bot_connector.py's
TokenIssuer) that the server is pointed at through TEAMS_OPENID_METADATA_URL;
botbuilder's own validation does the checking.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select

from assistant.storage.tables import votes
from tests.support.bot_connector import BotConnector, TokenIssuer, invoke_action

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

APP_ID = "9a1c0b6e-app-of-gitops-health"


@pytest.fixture
def issuer() -> Iterator[TokenIssuer]:
    with TokenIssuer() as server:
        yield server


@pytest.fixture
def authenticated(sqlite_db: Any, tmp_path: Path, connector: BotConnector, issuer: TokenIssuer, policy_engine: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The real server with TEAMS_APP_ID set, validating against the loopback metadata; no Teams cards configured."""
    from tests.adapters.teams.conftest import TeamsServer, settings_for, start_server, teams_config
    from tests.support.servers import running

    monkeypatch.setenv("TEAMS_OPENID_METADATA_URL", issuer.metadata_url)
    settings = settings_for(tmp_path, teams_app_id=APP_ID, teams_app_password=SecretStr("not-used-offline"))
    config = teams_config(connector.url, conversation=None)
    app = start_server(sqlite_db, config, settings, connector, policy_engine)
    with running(app) as http:
        yield TeamsServer(http=http, app=app, service=app.state.approvals, connector=connector)


def _click(server: Any, deployment_id: str, authorization: str | None) -> httpx.Response:
    activity = invoke_action(user_id="29:1bob", verb="deployment.approve", deployment_id=deployment_id, service_url=server.connector.url)
    headers = {"Authorization": authorization} if authorization is not None else {}
    return server.http.post("/api/messages", json=activity, headers=headers)


def _votes(server: Any, deployment_id: str) -> list[Any]:
    with server.app.state.db.read() as s:
        return s.execute(select(votes).where(votes.c.deployment_id == deployment_id)).all()


def test_a_valid_bot_framework_token_is_accepted(authenticated: Any, issuer: TokenIssuer) -> None:
    view = authenticated.ask()
    token = issuer.token(audience=APP_ID, service_url=authenticated.connector.url)

    answer = _click(authenticated, view.id, f"Bearer {token}")

    assert answer.status_code == 200, answer.text
    assert answer.json()["type"] == "application/vnd.microsoft.card.adaptive"
    assert "Approved** by Bob Chen" in str(answer.json()["value"])
    assert [v.person_id for v in _votes(authenticated, view.id)] == ["bob"]
    assert issuer.fetches >= 1  # the keys really came from the metadata document


def test_bad_tokens_are_refused_with_401_and_nothing_is_recorded(authenticated: Any, issuer: TokenIssuer) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    view = authenticated.ask()
    url = authenticated.connector.url
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "no header": None,
        "wrong audience": f"Bearer {issuer.token(audience='some-other-bot', service_url=url)}",
        "expired": f"Bearer {issuer.token(audience=APP_ID, service_url=url, expires_in=-600)}",  # past the 5 min leeway
        "unsigned": f"Bearer {issuer.unsigned(audience=APP_ID, service_url=url)}",
        "signed by another key": f"Bearer {issuer.token(audience=APP_ID, service_url=url, key=other_key)}",
        "unknown key id": f"Bearer {issuer.token(audience=APP_ID, service_url=url, kid='not-published')}",
        "another issuer": f"Bearer {issuer.token(audience=APP_ID, service_url=url, issuer='https://evil.example.org')}",
        "another service url": f"Bearer {issuer.token(audience=APP_ID, service_url='https://smba.example.org/teams/')}",
        "not a bearer": f"Basic {issuer.token(audience=APP_ID, service_url=url)}",
        "garbage": "Bearer not.a.jwt",
    }
    for name, header in cases.items():
        answer = _click(authenticated, view.id, header)
        assert answer.status_code == 401, f"{name}: {answer.status_code} {answer.text}"
        assert answer.json()["error"] == "teams_unauthenticated", name
    assert _votes(authenticated, view.id) == []
    assert authenticated.service.get(view.id).status == "pending"


def test_local_mode_accepts_this_machine_only(sqlite_db: Any, tmp_path: Path, connector: BotConnector, policy_engine: Any) -> None:
    """Without TEAMS_APP_ID nothing can be validated, so a caller from another address is refused before the body is read."""
    import asyncio

    from tests.adapters.teams.conftest import settings_for, start_server, teams_config

    app = start_server(sqlite_db, teams_config(connector.url, conversation=None), settings_for(tmp_path), connector, policy_engine)
    activity = invoke_action(user_id="29:1bob", verb="deployment.refresh", deployment_id="dep_0000", service_url=connector.url)

    async def post_from(host: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gitops-health") as client:
            return await client.post("/api/messages", json=activity)

    try:
        remote = asyncio.run(post_from("203.0.113.7"))
        assert remote.status_code == 401 and remote.json()["error"] == "teams_local_only"
        assert "TEAMS_APP_ID" in remote.json()["message"]
        local = asyncio.run(post_from("127.0.0.1"))
        assert local.status_code == 200  # answered (an unknown request: a Universal Actions 404 inside the 200)
        assert local.json()["statusCode"] == 404
    finally:
        workflow = getattr(app.state, "approvals", None)
        if workflow is not None:
            workflow.close()


def test_unreachable_openid_metadata_is_a_503_not_an_acceptance(
    sqlite_db: Any, tmp_path: Path, connector: BotConnector, issuer: TokenIssuer, policy_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the keys cannot be fetched the token cannot be checked: the Bot Framework is told to retry, nothing is done."""
    import socket

    from tests.adapters.teams.conftest import TeamsServer, settings_for, start_server, teams_config
    from tests.support.servers import running

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    monkeypatch.setenv("TEAMS_OPENID_METADATA_URL", f"http://127.0.0.1:{port}/v1/.well-known/openidconfiguration")
    settings = settings_for(tmp_path, teams_app_id=APP_ID, teams_app_password=SecretStr("not-used-offline"))
    app = start_server(sqlite_db, teams_config(connector.url, conversation=None), settings, connector, policy_engine)
    with running(app) as http:
        server = TeamsServer(http=http, app=app, service=app.state.approvals, connector=connector)
        view = server.ask()
        answer = _click(server, view.id, f"Bearer {issuer.token(audience=APP_ID, service_url=connector.url)}")
        assert answer.status_code == 503 and answer.json()["error"] == "teams_metadata_unavailable"
        assert _votes(server, view.id) == []
