"""Teams adapter fixtures: the loopback Bot Framework connector, and the real server wired to it."""

from __future__ import annotations

# RE2 before regopy (see tests/adapters/http/conftest.py): regopy's static
# libstdc++ otherwise makes later RE2 compiles abort the process.
import assistant.redact  # noqa: F401  isort: skip

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.support.bot_connector import BotConnector, invoke_action
from tests.support.deployments import ONE_APPROVER, ask as ask_through
from tests.support.servers import running

APPROVALS = "19:approvals@thread.tacv2"


@pytest.fixture
def connector() -> Iterator[BotConnector]:
    with BotConnector() as server:
        yield server


def teams_config(service_url: str, *, conversation: str | None = APPROVALS, **changes: Any) -> Any:
    """The demo config with Teams cards going to ``service_url`` (and erin also known by her AAD object id)."""
    from assistant.config import DEMO_CONFIG, parse_config

    data = copy.deepcopy(DEMO_CONFIG)
    data["teams"] = {"service_url": service_url}
    data["channels"]["approvals"] = {"slack": None, "teams": conversation}
    for person in data["people"]:
        if person["id"] == "erin":
            person["aad_object_id"] = "6f1e0c2a-0000-4000-8000-00000000e41e"
    data.update(changes)
    return parse_config(data, "teams-test")


@pytest.fixture
def config(connector: BotConnector) -> Any:
    return teams_config(connector.url)


def settings_for(tmp_path: Path, **values: Any) -> Any:
    from assistant.config import Settings

    return Settings(_env_file=None, data_dir=tmp_path / "data", webhook_secret=SecretStr("test-webhook-secret"), **values)


@dataclass
class TeamsServer:
    """The running gitops-health server with Teams on, and what a test needs to drive it."""

    http: httpx.Client
    app: Any
    service: Any
    connector: BotConnector

    def click(self, user_id: str, verb: str, deployment_id: str, *, headers: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        activity = invoke_action(user_id=user_id, verb=verb, deployment_id=deployment_id, service_url=self.connector.url, **kw)
        return self.http.post("/api/messages", json=activity, headers=headers or {})

    def ask(self, diff: str = ONE_APPROVER, **fields: Any) -> Any:
        """A deploy request through the app's workflow, as POST /api/deployments makes it; returns the view."""
        return ask_through(self.service, diff, **fields)


def start_server(db: Any, config: Any, settings: Any, connector: BotConnector, policy_engine: Any) -> Any:
    from adapters.http.app import create_app
    from adapters.http.background import install_outbox
    from assistant.outbox_worker import WorkerOptions

    app = create_app(settings, config, db, policy_engine=policy_engine)
    install_outbox(app, options=WorkerOptions(poll_s=0.05, backoff_base_s=0.05, backoff_max_s=0.2))
    return app


@pytest.fixture
def teams_server(db: Any, config: Any, tmp_path: Path, connector: BotConnector, policy_engine: Any) -> Iterator[TeamsServer]:
    """create_app + the outbox worker, Teams in local mode with cards going to the loopback connector; SQLite or Postgres."""
    app = start_server(db, config, settings_for(tmp_path), connector, policy_engine)
    with running(app) as http:
        yield TeamsServer(http=http, app=app, service=app.state.approvals, connector=connector)
