"""Two outbox workers (separate engines, threads and loops, like two processes) never post a request's Teams card twice.

Same race as the Slack one: the post and the update of one request's card
are different jobs, and before the claim serialized them per (family,
payload) two workers could each run one, find no card, and both post.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

from sqlalchemy import select

from assistant.storage.outbox_tables import outbox_jobs
from tests.adapters.teams.conftest import APPROVALS, settings_for
from tests.support.deployments import ONE_APPROVER, ask
from tests.support.outbox_race import jobs_left, racing_workers

REQUESTS = 16


async def jitter() -> None:
    await asyncio.sleep(random.uniform(0, 0.01))


def test_racing_workers_post_one_teams_card_per_request_and_apply_every_vote(db, database_url, config, connector, policy_engine, tmp_path: Path):
    from adapters.teams.runtime import build_runtime
    from assistant.approvals import ApprovalService

    service = ApprovalService(db, config, policies=policy_engine, chats=("teams",))
    settings = settings_for(tmp_path)
    ids = []
    for _ in range(REQUESTS):
        view = ask(service, ONE_APPROVER)
        service.cast_vote(view.id, "bob", "approve", "teams")  # queues an update while the post still waits
        ids.append(view.id)

    async def make(worker_db: Any) -> dict[str, Any]:
        runtime = build_runtime(settings, config, worker_db, service)
        assert runtime.notifier is not None, "cards must be deliverable to the loopback connector"
        return runtime.notifier.handlers()

    racing_workers(database_url, make, until=lambda: jobs_left(db) == 0, delay=jitter)

    posts = connector.calls_to("send")
    for dep_id in ids:
        mine = [c for c in posts if dep_id in json.dumps(c.body)]
        assert len(mine) == 1, f"{dep_id}: {len(mine)} cards posted"
    cards = connector.conversation(APPROVALS)
    assert len(cards) == REQUESTS
    for card in cards:
        assert "Approved" in json.dumps(card) and "Bob Chen" in json.dumps(card)
    with db.read() as s:
        assert {r.status for r in s.execute(select(outbox_jobs.c.status))} == {"done"}
