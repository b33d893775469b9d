"""Two outbox workers (separate engines, threads and loops, like two processes) never post a request's Slack card twice.

The post and the update of one request's card are different jobs; before the
claim serialized them per (family, payload), one worker could run the post
while another ran the update, both found no card yet, and both posted.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from typing import Any

from sqlalchemy import select

from assistant.storage.outbox_tables import outbox_attempts, outbox_jobs
from tests.support.deployments import ONE_APPROVER, ask
from tests.support.outbox_race import jobs_left, racing_workers

APPROVALS = "C0APPROVALS"
REQUESTS = 24


def slack_handlers(slack_api: Any, config: Any) -> Any:
    async def make(db: Any) -> dict[str, Any]:
        from slack_sdk.web.async_client import AsyncWebClient

        from adapters.slack.notifier import SlackNotifier

        return SlackNotifier(AsyncWebClient(token="xoxb-test", base_url=slack_api.url), config, db).handlers()

    return make


async def jitter() -> None:
    await asyncio.sleep(random.uniform(0, 0.01))


def posts_per_request(slack_api: Any) -> Counter[str]:
    posts: Counter[str] = Counter()
    for call in slack_api.calls_to("chat.postMessage"):
        posts[call.args["text"]] += 1
    return posts


def test_racing_workers_post_one_card_per_request_and_apply_every_vote(db, database_url, config, slack_api, policy_engine):
    from assistant.approvals import ApprovalService

    service = ApprovalService(db, config, policies=policy_engine, chats=("slack",))
    ids = []
    for _ in range(REQUESTS):
        view = ask(service, ONE_APPROVER)
        service.cast_vote(view.id, "bob", "approve", "slack")  # queues an update while the post still waits
        ids.append(view.id)

    racing_workers(database_url, slack_handlers(slack_api, config), until=lambda: jobs_left(db) == 0, delay=jitter)

    for dep_id in ids:
        posts = [c for c in slack_api.calls_to("chat.postMessage") if dep_id in c.args["text"]]
        assert len(posts) == 1, f"{dep_id}: {len(posts)} cards posted"
    cards = slack_api.channel_messages(APPROVALS)
    assert len(cards) == REQUESTS
    for card in cards:
        assert "*Approved* by Bob Chen" in json.dumps(card["blocks"]), card["text"]
    with db.read() as s:
        assert {r.status for r in s.execute(select(outbox_jobs.c.status))} == {"done"}


def test_a_dead_claimers_card_job_is_retried_after_its_lease_and_still_posts_one_card(db, database_url, config, slack_api, policy_engine):
    from assistant.approvals import ApprovalService
    from assistant.outbox_worker import OutboxWorker, WorkerOptions
    from assistant.storage import Database

    service = ApprovalService(db, config, policies=policy_engine, chats=("slack",))
    view = ask(service, ONE_APPROVER)
    service.cast_vote(view.id, "bob", "approve", "slack")

    # A worker claims the post and dies before running it (its lease is never extended).
    dead_db = Database(database_url)
    try:
        dead = OutboxWorker(dead_db, handlers=asyncio.run(slack_handlers(slack_api, config)(dead_db)), options=WorkerOptions(lease_s=1.0), worker_id="dead")
        (claimed,) = dead._claim(1)
    finally:
        dead_db.dispose()
    assert claimed.kind == "slack.post_card"

    racing_workers(database_url, slack_handlers(slack_api, config), until=lambda: jobs_left(db) == 0, delay=jitter)

    (posted,) = slack_api.calls_to("chat.postMessage")
    assert view.id in posted.args["text"]
    (card,) = slack_api.channel_messages(APPROVALS)
    assert "*Approved* by Bob Chen" in json.dumps(card["blocks"])
    with db.read() as s:
        attempts = [(r.attempt, r.worker, r.outcome) for r in s.execute(
            select(outbox_attempts).where(outbox_attempts.c.job_id == claimed.id).order_by(outbox_attempts.c.attempt))]
    assert attempts[0] == (1, "dead", "lost")
    assert attempts[1][0] == 2 and attempts[1][1].startswith("racer-") and attempts[1][2] == "ok"
