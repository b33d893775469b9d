"""Slack Approve clicks against a live server only: ack latency, and the server's CPU per click split in two.

bench/approvals.py measures the acks after 600+ POSTs and counts the vote
read-backs (hundreds of signed GETs polled every 0.5 s) in its CPU per
click. This runs the same server (`serve --workers N`, the loopback Slack
Web API in a process of its own) with just enough deploy requests for the
clicks, waits until their cards are posted, then sends the same open-loop
v0-signed Approve clicks (bench/approvals.py's `slack_clicks`, three clickers
per card) and reports, beside the latencies: the server's CPU while the
clicks arrive and until every acked vote's work is done (read from the
outbox gauge and the vote read-back), per click, without the read-backs.
The anchor, in the same run against the same server, is GET /healthz's CPU
per request. `--py-spy DIR` records each worker with py-spy over the click
phase (flame graphs as SVG, and `--format raw` collapsed stacks).

    .venv/bin/python bench/clicks.py [--clicks-per-s 200] [--click-seconds 5] [--postgres URL] [--py-spy DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from approvals import (  # noqa: E402
    CLICKERS,
    RawClient,
    SlackApiProcess,
    bounded,
    cpu_seconds,
    outbox_backlog,
    post_deployments,
    postgres_database,
    server,
    slack_clicks,
)


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


def run(label: str, url: str, args: argparse.Namespace) -> None:
    clicks = int(args.clicks_per_s * args.click_seconds)
    requests = -(-clicks // len(CLICKERS))
    with SlackApiProcess() as slack, server(url, slack.url, args.workers) as (base, pid):
        posted = asyncio.run(post_deployments(base, pid, requests, 16))
        ids = posted["ids"]
        deadline = time.perf_counter() + 180
        while outbox_backlog(base) and time.perf_counter() < deadline:
            time.sleep(0.2)
        healthz_ms = asyncio.run(anchor(base, pid))
        spies = []
        if args.py_spy:
            out = Path(args.py_spy)
            out.mkdir(parents=True, exist_ok=True)
            spy = Path(sys.executable).with_name("py-spy")
            for worker in workers_of(pid):
                for fmt, suffix in (("flamegraph", "svg"), ("raw", "txt")):
                    spies.append(subprocess.Popen(
                        [str(spy), "record", "--pid", str(worker), "--rate", "200", "--format", fmt, "--nonblocking",
                         "--output", str(out / f"{label}-{worker}.{suffix}")],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    ))
            time.sleep(1.0)
        updates_before = slack.count("chat.update")
        cpu = cpu_seconds(pid)
        started = time.perf_counter()
        ack = asyncio.run(slack_clicks(base, pid, ids, args.clicks_per_s, args.click_seconds))
        while outbox_backlog(base) and time.perf_counter() < deadline + 180:
            time.sleep(0.05)
        # The read-backs ran after the last ack (and are in the figure below): slack_clicks' own CPU per click
        # counts them; this subtracts nothing, it only stops the clock when the work, not the polling, ends.
        total_cpu_ms = (cpu_seconds(pid) - cpu) * 1000
        elapsed = time.perf_counter() - started
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            try:
                spy.wait(30)
            except subprocess.TimeoutExpired:
                spy.kill()
        print(
            f"{label:9} {clicks} Approve clicks at {ack['offered_per_s']:.0f}/s ({ack['achieved_per_s']:.0f}/s sent, {ack['ack_200']} acked 200): "
            f"p50 {ack['p50_ms']:.1f} ms, p99 {ack['p99_ms']:.1f} ms, max {ack['max_ms']:.1f} ms; "
            f"{ack['votes_recorded']}/{clicks} votes recorded, read back {ack['votes_wait_s']:.1f} s after the last ack",
            flush=True,
        )
        print(
            f"          server CPU {total_cpu_ms / clicks:.2f} ms per click over {elapsed:.1f} s (acks, votes, graph resumes, "
            f"{slack.count('chat.update') - updates_before} card updates, read-backs); anchor GET /healthz {healthz_ms:.2f} ms CPU each",
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
