"""Slack Approve clicks against a live server only: ack latency, and the server's CPU per click.

bench/approvals.py measures the acks after 600+ POSTs and counts its vote
read-backs (hundreds of signed GETs polled every 0.5 s until every vote is
in) in its CPU per click. This runs the same server (`serve --workers N`,
the loopback Slack Web API in a process of its own) with just enough deploy
requests for the clicks, waits until their cards are posted and the server
is idle, then sends the same open-loop v0-signed Approve clicks (three
clickers per card, in a row) and reports the ack latencies and the server's
CPU per click from the first click until it is idle again (acks, votes,
graph resumes, card updates; no read-backs), then reads every vote back
once. The anchor, in the same run against the same server, is GET
/healthz's CPU per request. `--py-spy DIR` samples each worker over the
clicks (py-spy's raw collapsed stacks).

    .venv/bin/python bench/clicks.py [--clicks-per-s 200] [--click-seconds 5] [--postgres URL] [--py-spy DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from approvals import (  # noqa: E402
    CLICKERS,
    PEOPLE,
    SECRET,
    RawClient,
    SlackApiProcess,
    bounded,
    click_requests,
    cpu_seconds,
    open_loop,
    outbox_backlog,
    post_deployments,
    postgres_database,
    server,
)

from assistant.signing import sign  # noqa: E402


def workers_of(supervisor: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[1]) == supervisor:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids or [supervisor]


async def anchor(base: str, pid: int, n: int = 2000) -> float:
    client = RawClient(base)
    raw = client.build("GET", "/healthz")
    try:
        await bounded(64, 32, lambda _i: client.send(raw))
        cpu = cpu_seconds(pid)
        await bounded(n, 32, lambda _i: client.send(raw))
        return (cpu_seconds(pid) - cpu) * 1000 / n
    finally:
        await client.close()


async def send_clicks(base: str, ids: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """bench/approvals.py's open-loop clicks (three clickers per card, in a row), without its read-back polling."""
    n = int(rate * seconds)
    client = RawClient(base)
    try:
        latencies, statuses, sent_s = await open_loop(client, click_requests(client, ids, n), rate)
    finally:
        await client.close()
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    return {"clicks": n, "sent_per_s": n / sent_s if sent_s else float(n), "ack_200": statuses.count(200),
            "p50_ms": q[49], "p99_ms": q[98], "max_ms": ms[-1]}


def wait_idle(pid: int, window_s: float = 0.5, idle_cpu_s: float = 0.02, timeout_s: float = 300.0) -> float:
    """Block until the server used less than ``idle_cpu_s`` of CPU over ``window_s`` (its work after the acks is
    done); returns the CPU of that last, idle window, which the caller subtracts."""
    deadline = time.perf_counter() + timeout_s
    while True:
        before = cpu_seconds(pid)
        time.sleep(window_s)
        used = cpu_seconds(pid) - before
        if used < idle_cpu_s or time.perf_counter() > deadline:
            return used


async def votes_recorded(base: str, ids: list[str], clicks: int) -> int:
    expected: dict[str, set[str]] = {}
    for i in range(clicks):
        expected.setdefault(ids[(i // len(CLICKERS)) % len(ids)], set()).add(PEOPLE[CLICKERS[i % len(CLICKERS)]])
    client = RawClient(base)
    recorded = 0
    try:
        for dep, people in expected.items():
            status, body = await client.send(client.build("GET", f"/api/deployments/{dep}", b"", sign(SECRET, None, b"")))
            if status == 200:
                recorded += len(people & {v["person"] for v in json.loads(body)["votes"]})
    finally:
        await client.close()
    return recorded


def run(label: str, url: str, args: argparse.Namespace) -> None:
    clicks = int(args.clicks_per_s * args.click_seconds)
    requests = -(-clicks // len(CLICKERS))
    with SlackApiProcess() as slack, server(url, slack.url, args.workers) as (base, pid):
        posted = asyncio.run(post_deployments(base, pid, requests, 16))
        ids = posted["ids"]
        deadline = time.perf_counter() + 180
        while outbox_backlog(base) and time.perf_counter() < deadline:
            time.sleep(0.2)
        wait_idle(pid)
        healthz_ms = asyncio.run(anchor(base, pid))
        spies = []
        if args.py_spy:
            out = Path(args.py_spy)
            out.mkdir(parents=True, exist_ok=True)
            spy = Path(sys.executable).with_name("py-spy")
            for worker in workers_of(pid):
                spies.append(subprocess.Popen(
                    [str(spy), "record", "--pid", str(worker), "--rate", "100", "--format", "raw", "--nonblocking",
                     "--output", str(out / f"{label}-{worker}.txt")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ))
            time.sleep(1.0)
        updates_before = slack.count("chat.update")
        cpu = cpu_seconds(pid)
        started = time.perf_counter()
        ack = asyncio.run(send_clicks(base, ids, args.clicks_per_s, args.click_seconds))
        idle_window = wait_idle(pid)
        work_cpu_ms = (cpu_seconds(pid) - cpu - idle_window) * 1000
        elapsed = time.perf_counter() - started
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
        recorded = asyncio.run(votes_recorded(base, ids, clicks))
        print(
            f"{label:9} {clicks} Approve clicks at {args.clicks_per_s:.0f}/s offered ({ack['sent_per_s']:.0f}/s sent, {ack['ack_200']} acked 200): "
            f"p50 {ack['p50_ms']:.1f} ms, p99 {ack['p99_ms']:.1f} ms, max {ack['max_ms']:.1f} ms; {recorded}/{clicks} votes recorded",
            flush=True,
        )
        print(
            f"          server CPU {work_cpu_ms / clicks:.2f} ms per click (acks, votes, graph resumes, "
            f"{slack.count('chat.update') - updates_before} card updates; until idle, {elapsed:.1f} s); "
            f"anchor GET /healthz {healthz_ms:.2f} ms CPU each",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks-per-s", type=float, default=200.0)
    parser.add_argument("--click-seconds", type=float, default=5.0)
    parser.add_argument("--postgres", metavar="URL", help="also run on a fresh database on this Postgres server")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--py-spy", metavar="DIR", help="record each worker with py-spy over the clicks")
    args = parser.parse_args()
    print(f"bench/clicks.py: `serve --workers {args.workers}`, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start; target ack p99 < 50 ms")
    with tempfile.TemporaryDirectory(prefix="bench-clicks-db-") as tmp:
        run("SQLite", f"sqlite:///{tmp}/gitops-health.db", args)
    if args.postgres:
        with postgres_database(args.postgres) as url:
            run("Postgres", url, args)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
