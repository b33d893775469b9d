"""The outbox's Slack handlers: one card per request, always the current state, retried the way Slack's answers mean."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from assistant.storage.outbox_tables import outbox_jobs
from tests.support.deployments import ONE_APPROVER as DIFF

APPROVALS = "C0APPROVALS"


@pytest.fixture
def parts(db: Any, config: Any, slack_api: Any, policy_engine: Any) -> dict[str, Any]:
    """The core, the Slack notifier on the loopback Web API, and a worker that runs only the Slack jobs."""
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack.notifier import SlackNotifier
    from assistant.approvals import ApprovalService
    from assistant.outbox_worker import OutboxWorker, WorkerOptions

    service = ApprovalService(db, config, policies=policy_engine, chats=("slack",))
    notifier = SlackNotifier(AsyncWebClient(token="xoxb-test", base_url=slack_api.url), config, db)
    worker = OutboxWorker(db, handlers=notifier.handlers(), options=WorkerOptions(backoff_base_s=0.01, backoff_max_s=0.02, poll_s=0.05))
    return {"service": service, "notifier": notifier, "worker": worker, "db": db}


def ask(service: Any, **fields: Any) -> Any:
    from assistant.deployments import DeploymentRequest

    body = {"service": "pump", "version": "1.0", "environment": "production", "repository": "acme/pump", "commit": "abc1234",
            "requested_by": "dev@example.org", "authors": ["dev@example.org"], "diff": DIFF}
    body.update(fields)
    return service.request_deployment(DeploymentRequest.model_validate(body))[0]


def job_states(db: Any) -> list[tuple[str, str, str | None]]:
    with db.read() as s:
        return [(r.kind, r.status, r.last_error) for r in s.execute(select(outbox_jobs).order_by(outbox_jobs.c.id))]


async def drain_until(worker: Any, done: Any, timeout: float = 10.0) -> None:
    """Run due jobs (retries come due a few ms later) until ``done()``."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError("the outbox did not get there in time")
        if not await worker.run_once():
            await asyncio.sleep(0.02)


async def test_post_then_updates_edit_the_same_card_with_the_latest_state(parts, slack_api):
    service, worker = parts["service"], parts["worker"]
    view = ask(service)
    await worker.drain()
    (posted,) = slack_api.calls_to("chat.postMessage")
    ts = slack_api.channel_messages(APPROVALS)[0]["ts"]

    service.cast_vote(view.id, "bob", "approve", "teams")  # cast anywhere: the Slack card follows
    await worker.drain()

    (updated,) = slack_api.calls_to("chat.update")
    assert (updated.args["channel"], updated.args["ts"]) == (APPROVALS, ts)
    assert "*Approved* by Bob Chen" in json.dumps(updated.args["blocks"])
    assert len(slack_api.calls_to("chat.postMessage")) == 1


async def test_a_job_that_runs_twice_never_posts_a_second_card(parts, slack_api):
    view = ask(parts["service"])
    first = await parts["notifier"].sync_card(view.id)
    again = await parts["notifier"].sync_card(view.id)
    assert first == again
    assert len(slack_api.calls_to("chat.postMessage")) == 1 and len(slack_api.calls_to("chat.update")) == 1


async def test_slack_server_errors_and_rate_limits_are_retried_until_the_card_is_there(parts, slack_api):
    slack_api.fail("chat.postMessage", times=2, status=500)
    slack_api.fail("chat.postMessage", times=1, status=429, error="ratelimited", retry_after=0)
    view = ask(parts["service"])

    await drain_until(parts["worker"], lambda: job_states(parts["db"])[0][1] == "done")

    assert len(slack_api.calls_to("chat.postMessage")) == 4
    assert len(slack_api.channel_messages(APPROVALS)) == 1
    assert view.id in slack_api.channel_messages(APPROVALS)[0]["text"]
    assert job_states(parts["db"]) == [("slack.post_card", "done", None)]


async def _die_after_posting(parts: dict[str, Any], view: Any) -> str:
    """What a claimer killed between chat.postMessage and saving the card's ts leaves: the card in Slack (posted
    the notifier's way), no chat_messages row, and the request's post job `running` under a lease that has run out.
    Returns the card's ts."""
    from sqlalchemy import update

    from adapters.slack import cards
    from adapters.slack.notifier import post_args

    text, blocks = cards.card(view, parts["service"].config)
    posted = await parts["notifier"].client.api_call("chat.postMessage", json=post_args(APPROVALS, view.id, text, blocks))
    with parts["db"].session() as s:
        s.execute(
            update(outbox_jobs)
            .where(outbox_jobs.c.payload.contains(view.id), outbox_jobs.c.kind == "slack.post_card")
            .values(status="running", attempts=1, claimed_by="dead-worker", lease_until=0.0)
        )
    return str(posted["ts"])


def all_done(db: Any) -> Any:
    return lambda: all(state == "done" for _, state, _ in job_states(db))


async def test_a_card_posted_by_a_claimer_that_died_before_saving_it_is_adopted_not_posted_again(parts, slack_api):
    from assistant import chat_messages

    view = ask(parts["service"])
    ts = await _die_after_posting(parts, view)
    parts["service"].cast_vote(view.id, "bob", "approve", "slack")  # the card must end up showing this too

    await drain_until(parts["worker"], all_done(parts["db"]))

    assert len(slack_api.calls_to("chat.postMessage")) == 1  # the dead claimer's; the retry found it
    assert len(slack_api.calls_to("conversations.history")) == 1
    (saved,) = chat_messages.find(parts["db"], view.id, "slack")
    assert (saved.channel, saved.message_ref) == (APPROVALS, ts)
    (only,) = slack_api.channel_messages(APPROVALS)
    assert only["ts"] == ts and "*Approved* by Bob Chen" in json.dumps(only["blocks"])


async def test_a_first_run_never_searches_and_a_search_slack_refuses_falls_back_to_posting(parts, slack_api):
    ask(parts["service"])
    await parts["worker"].drain()
    assert slack_api.calls_to("conversations.history") == [] and len(slack_api.channel_messages(APPROVALS)) == 1

    view = ask(parts["service"], version="1.1")
    await _die_after_posting(parts, view)
    slack_api.fail("conversations.history", error="missing_scope")
    await drain_until(parts["worker"], all_done(parts["db"]))
    # Without channels:history the retry cannot look, so it posts (and the log says which scope to grant).
    assert len([m for m in slack_api.channel_messages(APPROVALS) if view.id in m["text"]]) == 2


async def test_a_deleted_card_is_posted_again(parts, slack_api):
    view = ask(parts["service"])
    await parts["worker"].drain()
    slack_api.messages.clear()  # someone deleted the message in Slack

    parts["service"].cast_vote(view.id, "bob", "approve", "slack")
    await parts["worker"].drain()

    assert [c.args.get("ts") for c in slack_api.calls_to("chat.update")] != []
    (card,) = slack_api.channel_messages(APPROVALS)
    assert "*Approved* by Bob Chen" in json.dumps(card["blocks"])


async def test_a_channel_the_bot_cannot_post_to_fails_the_job_saying_what_to_fix(parts, slack_api):
    slack_api.fail("chat.postMessage", times=1, error="not_in_channel")
    ask(parts["service"])

    await parts["worker"].drain()

    ((kind, status, error),) = job_states(parts["db"])
    assert (kind, status) == ("slack.post_card", "failed")
    assert "not_in_channel" in error and "/invite" in error


async def test_a_blocked_request_gets_a_notice_saying_why_and_no_buttons(parts, slack_api):
    secret = 'diff --git a/c.py b/c.py\n--- a/c.py\n+++ b/c.py\n@@ -1 +1,2 @@\n x = 1\n+AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n'
    view = ask(parts["service"], diff=secret)
    assert view.status == "blocked"

    await parts["worker"].drain()

    (card,) = slack_api.channel_messages(APPROVALS)
    blocks = json.dumps(card["blocks"])
    assert "*Blocked by policy*" in blocks and "no-hardcoded-secrets" in blocks
    assert '"type": "actions"' not in blocks
    assert "wJalrXUtnFEMI" not in blocks
    assert job_states(parts["db"]) == [("slack.blocked_notice", "done", None)]


def test_handlers_are_registered_only_while_the_server_runs(db, config, slack_settings, policy_engine, serve):
    from adapters.http.app import create_app
    from assistant import outbox

    app = create_app(slack_settings, config, db, policy_engine=policy_engine)
    with serve(app):
        assert {"slack.post_card", "slack.update_card", "slack.blocked_notice"} <= set(outbox.handlers())
    assert not {"slack.post_card", "slack.update_card", "slack.blocked_notice"} & set(outbox.handlers())


async def test_an_expired_request_shows_expired_and_loses_its_buttons(parts, slack_api, db, config, policy_engine):
    from datetime import timedelta

    from assistant import clock
    from assistant.approvals import ApprovalService

    view = ask(parts["service"])
    await parts["worker"].drain()
    later = ApprovalService(db, config, policies=policy_engine, chats=("slack",), clock=lambda: clock.now() + timedelta(hours=5))

    (expired,) = later.expire_due()
    await parts["worker"].drain()

    assert expired.id == view.id and expired.status == "expired"
    (card,) = slack_api.channel_messages(APPROVALS)
    blocks = json.dumps(card["blocks"])
    assert "*Expired*" in blocks and "no decision within the approval window" in blocks
    assert '"type": "actions"' not in blocks


async def test_through_the_keep_alive_client_slack_answers_are_sorted_the_same_way(db, config, slack_api, policy_engine):
    """The runtime gives the notifier a WebApiClient for the card calls; errors mean the same through it."""
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack.webapi import WebApiClient

    from adapters.slack.notifier import SlackNotifier
    from assistant.approvals import ApprovalService
    from assistant.outbox_worker import OutboxWorker, WorkerOptions

    service = ApprovalService(db, config, policies=policy_engine, chats=("slack",))
    webapi = WebApiClient(slack_api.url, "xoxb-test", user_agent="test")
    try:
        notifier = SlackNotifier(AsyncWebClient(token="xoxb-unused", base_url=slack_api.url), config, db, webapi=webapi)
        worker = OutboxWorker(db, handlers=notifier.handlers(), options=WorkerOptions(backoff_base_s=0.01, backoff_max_s=0.02, poll_s=0.05))
        slack_api.fail("chat.postMessage", times=1, status=500)
        slack_api.fail("chat.postMessage", times=1, status=429, error="ratelimited", retry_after=0)
        view = ask(service)
        await drain_until(worker, lambda: job_states(db)[0][1] == "done")

        posts = slack_api.calls_to("chat.postMessage")
        assert len(posts) == 3 and posts[-1].token == "xoxb-test"
        (card,) = slack_api.channel_messages(APPROVALS)
        assert view.id in card["text"]

        slack_api.fail("chat.update", times=1, error="not_in_channel")
        service.cast_vote(view.id, "bob", "approve", "slack")
        await worker.drain()
        kind, status, error = job_states(db)[-1]
        assert (kind, status) == ("slack.update_card", "failed") and "/invite" in error

        second = ask(service, commit="def5678")
        await worker.drain()
        assert len(slack_api.channel_messages(APPROVALS)) == 2 and second.id in slack_api.channel_messages(APPROVALS)[1]["text"]
    finally:
        await webapi.close()
