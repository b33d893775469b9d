"""What a Slack Approve click costs the server after its ack: CPU per vote, in-process, and where it goes.

The deploy requests are made first (not timed), each with its thread parked
(ApprovalWorkflow, as the server runs it); then each request gets the
bench's three Approve votes (alice, bob, erin: bob is the clinical-safety
officer, so the third vote decides), cast through the Slack listener's own
path (`_Votes._vote`: resolve the clicker, `cast_vote`, resume the thread)
on the server's thread pool, and then the outbox drains the card updates
against a loopback Slack Web API (a process of its own, so its CPU is not
counted). CPU is this process's (time.process_time). The machine is shared,
so each figure comes with an anchor measured in the same run (a fixed
pure-Python workload); `--profile` prints where the vote CPU goes.

    .venv/bin/python bench/votes.py [--requests 200] [--postgres URL] [--profile]
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
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from approvals import CLICKERS  # noqa: E402  (the same three clickers as the live bench)
from cards import anchor_ms, database, drain  # noqa: E402


class _Inline(Executor):
    """Runs the submitted call at once on the calling thread, so the profiler sees it."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            future.set_exception(exc)
        return future


def run(label: str, url: str | None, requests: int, profile: bool) -> None:
    from approvals import CONFIG, SlackApiProcess, request_body
    import yaml
    from pydantic import SecretStr

    from adapters.slack.runtime import build_runtime
    from assistant.approvals import ApprovalService
    from assistant.config import Settings, parse_config
    from assistant.deployments import DeploymentRequest
    from assistant.outbox_worker import OutboxWorker, WorkerOptions
    from assistant.policy import PolicyEngine
    from graphs.approval import ApprovalWorkflow

    config = parse_config(yaml.safe_load(CONFIG), "bench")
    with SlackApiProcess() as slack, database(url) as db:
        service = ApprovalService(db, config, policies=PolicyEngine.load(), chats=("slack",))
        workflow = ApprovalWorkflow.open(service)
        try:

            async def main() -> None:
                settings = Settings(_env_file=None, data_dir=Path(tempfile.mkdtemp(prefix="bench-votes-")), webhook_secret=SecretStr("bench"),
                                    slack_bot_token=SecretStr("xoxb-bench"), slack_api_url=slack.url)
                runtime = build_runtime(settings, config, db, workflow)
                assert runtime is not None
                worker = OutboxWorker(db, handlers=runtime.notifier.handlers(), options=WorkerOptions(concurrency=8))
                run_id = uuid.uuid4().hex[:6]
                loop = asyncio.get_running_loop()
                ids = [
                    (await loop.run_in_executor(None, workflow.request_deployment, DeploymentRequest.model_validate_json(request_body(i, run_id))))[0].id
                    for i in range(requests)
                ]
                await drain(worker)  # the cards are posted: what follows is votes and card updates only
                from adapters.slack.listeners import _Votes

                # Profiled, the votes run inline (cProfile sees only its own thread); else on the server's pool.
                votes = _Votes(config, workflow, _Inline() if profile else runtime.executor)
                prof = cProfile.Profile() if profile else None
                cpu, wall = time.process_time(), time.perf_counter()
                if prof:
                    prof.enable()
                # One vote at a time per request, three requests' votes in flight (like the bench: a card's clicks
                # arrive in a row while the previous card's are still being worked on).
                for dep in ids:
                    for user in CLICKERS:
                        await votes._vote(runtime.client, user, "C0APPROVALS", dep, "approve", None)
                vote_cpu, vote_wall = time.process_time() - cpu, time.perf_counter() - wall
                cpu, wall = time.process_time(), time.perf_counter()
                ran = await drain(worker)
                if prof:
                    prof.disable()
                card_cpu, card_wall = time.process_time() - cpu, time.perf_counter() - wall
                n = len(ids) * len(CLICKERS)
                print(f"{label} votes: {n} clicks, {vote_cpu * 1000 / n:.2f} ms CPU each, {vote_wall * 1000 / n:.2f} ms wall each")
                print(f"{label} card updates after them: {ran} jobs, {card_cpu * 1000 / n:.2f} ms CPU per click ({card_cpu * 1000 / max(ran, 1):.2f} per job)")
                print(f"{label} total per click: {(vote_cpu + card_cpu) * 1000 / n:.2f} ms CPU")
                decided = sum(1 for dep in ids if service.get(dep).status == "approved")
                print(f"{label}: {decided}/{len(ids)} approved; threads ended: "
                      f"{sum(1 for dep in ids if workflow.thread_status(dep) == 'approved')}/{len(ids)}")
                if prof:
                    out = io.StringIO()
                    pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(60)
                    print(out.getvalue())
                    out = io.StringIO()
                    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(40)
                    print(out.getvalue())
                await worker.stop()
                await runtime.stop()

            asyncio.run(main())
        finally:
            workflow.close()
        print(f"{label}: Slack received {slack.count('chat.postMessage')} chat.postMessage, {slack.count('chat.update')} chat.update")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--postgres", metavar="URL", help="also run on a fresh database on this Postgres server")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the votes and card updates")
    args = parser.parse_args()
    os.environ.setdefault("GITOPS_HEALTH_LOG_LEVEL", "INFO")
    from assistant.logging import configure_logging

    configure_logging("INFO", stream=open(os.devnull, "w"))  # noqa: SIM115 - formatted like the server's, not written
    print(f"anchor: {anchor_ms():.1f} ms CPU (fixed pure-Python workload)")
    run("sqlite", None, args.requests, args.profile)
    if args.postgres:
        run("postgres", args.postgres, args.requests, args.profile)
    print(f"anchor: {anchor_ms():.1f} ms CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
