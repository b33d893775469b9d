"""Slack adapter fixtures: the loopback Slack Web API, and the real server wired to it."""

from __future__ import annotations

# RE2 before regopy (see tests/adapters/http/conftest.py): regopy's static
# libstdc++ otherwise makes later RE2 compiles abort the process.
import assistant.redact  # noqa: F401  isort: skip

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.support.deployments import ask
from tests.support.servers import running
from tests.support.slack_api import SlackApiServer, signed_headers

SIGNING_SECRET = "slack-signing-secret-for-tests"
BOT_TOKEN = "xoxb-test-bot-token"


@pytest.fixture
def slack_api() -> Iterator[SlackApiServer]:
    with SlackApiServer() as server:
        yield server


@pytest.fixture
def slack_settings(tmp_path: Path, slack_api: SlackApiServer) -> Any:
    from assistant.config import Settings

    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        webhook_secret=SecretStr("test-webhook-secret"),
        slack_bot_token=SecretStr(BOT_TOKEN),
        slack_signing_secret=SecretStr(SIGNING_SECRET),
        slack_api_url=slack_api.url,
    )


@dataclass
class SlackServer:
    """The running gitops-health server with Slack on, and what a test needs to drive it."""

    http: httpx.Client
    app: Any
    service: Any
    slack: SlackApiServer

    def post_signed(self, body: bytes, headers: dict[str, str], *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> httpx.Response:
        return self.http.post("/slack/events", content=body, headers={**headers, **signed_headers(secret, body, timestamp)})


@pytest.fixture
def slack_server(db: Any, config: Any, slack_settings: Any, slack_api: SlackApiServer, policy_engine: Any) -> Iterator[SlackServer]:
    """create_app + the outbox worker, Slack pointed at the loopback Web API; the database is SQLite or Postgres."""
    from adapters.http.app import create_app
    from adapters.http.background import install_outbox
    from assistant.outbox_worker import WorkerOptions

    app = create_app(slack_settings, config, db, policy_engine=policy_engine)
    install_outbox(app, options=WorkerOptions(poll_s=0.05, backoff_base_s=0.05, backoff_max_s=0.2))
    with running(app) as http:
        # The approval workflow (graph over the service) the server built at start-up: what the Slack listeners call.
        yield SlackServer(http=http, app=app, service=app.state.approvals, slack=slack_api)


@pytest.fixture
def request_deployment(slack_server: SlackServer) -> Callable[..., Any]:
    """Ask for a deploy decision through the core, as POST /api/deployments does; returns the view."""
    return functools.partial(ask, slack_server.service)
