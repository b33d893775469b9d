"""Behind an HTTP proxy (the usual way a hospital network reaches Slack), cards still reach Slack, through the proxy."""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr

from tests.adapters.slack.test_notifier import ask
from tests.adapters.slack.test_webapi import RawServer, ok_json


def _settings(tmp_path: Any, api_url: str) -> Any:
    from assistant.config import Settings

    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        webhook_secret=SecretStr("test-webhook-secret"),
        slack_bot_token=SecretStr("xoxb-test-bot-token"),
        slack_api_url=api_url,
    )


async def test_card_calls_go_through_the_proxy_the_environment_names(tmp_path, monkeypatch, db, config, policy_engine):
    from adapters.slack.runtime import build_runtime
    from assistant.approvals import ApprovalService

    def answer(n: int, body: bytes) -> bytes:
        return ok_json({"ok": True, "channel": "C0APPROVALS", "ts": f"1700000000.00000{n}"})

    async with RawServer(answer) as proxy:
        proxy_url = proxy.url.removesuffix("/api/")
        for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", proxy_url)
        service = ApprovalService(db, config, policies=policy_engine, chats=("slack",))
        # Slack itself is unreachable here: only the proxy can answer.
        runtime = build_runtime(_settings(tmp_path, "http://slack.invalid/api/"), config, db, service)
        try:
            assert runtime is not None and runtime.webapi is None  # the small client speaks no proxy protocol
            view = ask(service)
            await runtime.notifier.sync_card(view.id)
        finally:
            await runtime.stop()

    (request_line, headers, body) = proxy.requests[0]
    assert request_line.startswith("POST http://slack.invalid/api/chat.postMessage ")  # absolute form: a proxy request
    assert headers["authorization"] == "Bearer xoxb-test-bot-token"
    assert json.loads(body)["channel"] == "C0APPROVALS"


async def test_without_a_proxy_cards_use_the_keep_alive_client(tmp_path, monkeypatch, db, config, policy_engine, slack_api):
    from adapters.slack.runtime import build_runtime
    from assistant.approvals import ApprovalService

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    service = ApprovalService(db, config, policies=policy_engine, chats=("slack",))
    runtime = build_runtime(_settings(tmp_path, slack_api.url), config, db, service)
    try:
        assert runtime is not None and runtime.webapi is not None
        view = ask(service)
        await runtime.notifier.sync_card(view.id)
    finally:
        await runtime.stop()
    assert len(slack_api.calls_to("chat.postMessage")) == 1
