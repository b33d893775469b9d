"""The loopback Slack Web API answers slack_sdk the way Slack does (so the adapter tests mean something)."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError


def test_post_then_update_keeps_the_card_as_it_now_stands(slack_api):
    client = WebClient(token="xoxb-test", base_url=slack_api.url)
    posted = client.chat_postMessage(channel="C1", text="v1", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "v1"}}])
    client.chat_update(channel="C1", ts=posted["ts"], text="v2", blocks=[])
    card = slack_api.message("C1", posted["ts"])
    assert (card["text"], card["updates"]) == ("v2", 1)
    assert slack_api.calls_to("chat.postMessage")[0].args["blocks"][0]["text"]["text"] == "v1"


def test_errors_are_answered_like_slack(slack_api):
    client = WebClient(token="xoxb-test", base_url=slack_api.url)
    with pytest.raises(SlackApiError) as exc:
        client.chat_update(channel="C1", ts="1.2", text="x")
    assert exc.value.response["error"] == "message_not_found"
    with pytest.raises(SlackApiError) as exc:
        WebClient(token="xoxp-user", base_url=slack_api.url).chat_postMessage(channel="C1", text="x")
    assert exc.value.response["error"] == "invalid_auth"


def test_scheduled_failures_then_success(slack_api):
    client = WebClient(token="xoxb-test", base_url=slack_api.url)
    slack_api.fail("chat.postMessage", times=1, status=500)
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C1", text="x")
    assert client.chat_postMessage(channel="C1", text="x")["ok"]
    assert len(slack_api.wait_for("chat.postMessage", 2, timeout=1)) == 2
