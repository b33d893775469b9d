"""What a Slack approval card costs the server: CPU per card post and per card update, in-process.

The deploy requests and votes are made first (not timed); then the outbox
worker drains the card jobs against the loopback Slack Web API, which runs
in a process of its own so its CPU is not counted. CPU is this process's
(time.process_time: the worker's loop, its database thread and slack_sdk's
HTTP client), divided by the cards. The machine is shared, so the figure
comes with an anchor measured in the same run: a fixed pure-Python workload
(CPU ms), and `--profile` prints where the card CPU goes (cProfile).

    .venv/bin/python bench/cards.py [--cards 300] [--postgres URL] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TARGET_MS = 2.0


def anchor_ms() -> float:
    """CPU of a fixed pure-Python workload (dict/str churn like a card's), best of 5."""
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for i in range(20_000):
            d = {"type": "section", "text": {"type": "mrkdwn", "text": f"*Service* {i}"}}
            str(d)
        best = min(best, time.process_time() - start)
    return best * 1000


@contextmanager
def database(url: str | None) -> Iterator[Any]:
    from assistant.storage import Database

    if url is None:
        tmp = tempfile.mkdtemp(prefix="bench-cards-")
        db = Database(f"sqlite:///{tmp}/gh.db")
        db.upgrade()
        try:
            yield db
        finally:
            db.dispose()
        return
    import psycopg

    name = f"bench_cards_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = Database(f"{url.rpartition('/')[0]}/{name}")
    try:
        db.upgrade()
        yield db
    finally:
        db.dispose()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def drain(worker: Any) -> int:
    total = 0
    while True:
        ran = await worker.run_once(limit=worker.options.concurrency)
        if not ran:
            return total
        total += ran


def run(label: str, url: str | None, cards: int, profile: bool) -> None:
    from approvals import SlackApiProcess, request_body
    from pydantic import SecretStr

    from adapters.slack.runtime import build_runtime
    from assistant.approvals import ApprovalService
    from assistant.config import DEMO_CONFIG, Settings, parse_config
    from assistant.deployments import DeploymentRequest
    from assistant.outbox_worker import OutboxWorker, WorkerOptions
    from assistant.policy import PolicyEngine

    config = parse_config(DEMO_CONFIG, "bench")
    with SlackApiProcess() as slack, database(url) as db:
        service = ApprovalService(db, config, policies=PolicyEngine.load(), chats=("slack",))
        ids: list[str] = []

        async def main() -> None:
            # The notifier as the server builds it: one pooled HTTP session, the core's calls on its thread pool.
            settings = Settings(_env_file=None, data_dir=Path(tempfile.mkdtemp(prefix="bench-cards-")), webhook_secret=SecretStr("bench"),
                                slack_bot_token=SecretStr("xoxb-bench"), slack_api_url=slack.url)
            runtime = build_runtime(settings, config, db, service)
            assert runtime is not None
            notifier = runtime.notifier
            worker = OutboxWorker(db, handlers=notifier.handlers(), options=WorkerOptions(concurrency=8))
            await drain(worker)  # nothing yet: warms the loop, pools and statements
            run_id = uuid.uuid4().hex[:6]
            ids.extend(service.request_deployment(DeploymentRequest.model_validate_json(request_body(i, run_id)))[0].id for i in range(cards))
            for phase in ("post", "update"):
                if phase == "update":
                    for dep in ids:
                        service.cast_vote(dep, "bob", "approve", "slack")
                prof = cProfile.Profile() if profile else None
                cpu, wall = time.process_time(), time.perf_counter()
                if prof:
                    prof.enable()
                ran = await drain(worker)
                if prof:
                    prof.disable()
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                print(f"{label} card {phase}: {ran} jobs, {cpu * 1000 / max(ran, 1):.2f} ms CPU each, {wall * 1000 / max(ran, 1):.2f} ms wall each")
                if prof:
                    out = io.StringIO()
                    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(45)
                    print(out.getvalue())
            await worker.stop()
            await runtime.stop()

        asyncio.run(main())
        posts, updates = slack.count("chat.postMessage"), slack.count("chat.update")
        print(f"{label}: Slack received {posts} chat.postMessage, {updates} chat.update for {cards} requests")
        if posts != cards or updates < cards:
            raise SystemExit(f"{label}: wrong number of Slack calls")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=300)
    parser.add_argument("--postgres", metavar="URL", help="also run on a fresh database on this Postgres server")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each phase")
    args = parser.parse_args()
    os.environ.setdefault("GITOPS_HEALTH_LOG_LEVEL", "INFO")
    from assistant.logging import configure_logging

    configure_logging("INFO", stream=open(os.devnull, "w"))  # noqa: SIM115 - formatted like the server's, not written
    print(f"anchor: {anchor_ms():.1f} ms CPU (fixed pure-Python workload); target {TARGET_MS} ms CPU per card")
    run("sqlite", None, args.cards, args.profile)
    if args.postgres:
        run("postgres", args.postgres, args.cards, args.profile)
    print(f"anchor: {anchor_ms():.1f} ms CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
