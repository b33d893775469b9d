"""Deploy approvals benchmark: POST /api/deployments requests/s on SQLite and Postgres, and Slack click ack latency.

Usage: .venv/bin/python bench/approvals.py [--requests 1500] [--concurrency 32]
           [--clicks-per-s 200] [--click-seconds 5] [--postgres URL | --no-postgres] [--workers N]

A real `gitops-health serve --workers N` (default: one per CPU, as production
would run it on this host; printed in the first line) runs as a subprocess
(Slack enabled against a loopback Slack Web API in a second subprocess, so
every request also posts its card through the outbox, as in production, and
the fake Slack's threads do not share a GIL with the load generator's
clock); this process is the load: bounded (a fixed number of requests, a
fixed number in flight), small diffs, every request a new deploy. The
cards still queued when the last POST is answered are counted, and the
outbox's drain of them (nothing else running) prices a card, so the
request's own CPU is shown beside the phase's (which includes the cards
posted meanwhile). Afterwards every 202 is read back with a signed GET:
nothing may be lost. Then Approve clicks (real v0-signed `block_actions`)
arrive open-loop at --clicks-per-s and the time to Slack's ack (the HTTP
answer) is measured; the vote itself is recorded after the ack, and every
click's vote is then read back with signed GETs (an ack must stand for a
vote that is really recorded). Last, how
far the outbox (cards, card updates) was behind when the load ended, and
how long until it is idle (read from the server's /metrics gauge).

Targets (issue 5): >= 300 requests/s on SQLite; ack p99 < 50 ms.
Anchor, measured in the same run against the same server: GET /healthz
requests/s with the same client and concurrency (the ceiling of the HTTP
stack and this client, with no review, no database write).
On a shared machine requests/s move with the other load; the server's CPU
per POST and per click (user + system of the server and its workers, from
/proc, over the phase) barely does: compare those between runs.
Postgres: --postgres URL, else GITOPS_HEALTH_TEST_POSTGRES_URL; a fresh
database is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402  (readiness polling only)

from assistant.signing import sign  # noqa: E402
from tests.support.slack_api import SlackApiServer, block_action, signed_headers  # noqa: E402

SECRET = "bench-webhook-secret"
SLACK_SIGNING_SECRET = "bench-slack-signing-secret"
CLI = Path(sys.executable).with_name("gitops-health")
CONFIG = """
people:
  - {id: alice, name: Alice Moreno, email: alice@example.org, slack_id: U0ALICE, roles: [approver]}
  - {id: bob, name: Bob Chen, email: bob@example.org, slack_id: U0BOB, roles: [approver, clinical-safety-officer]}
  - {id: erin, name: Erin Walsh, email: erin@example.org, slack_id: U0ERIN, roles: [approver]}
channels:
  approvals: {slack: C0APPROVALS}
  alerts: {slack: C0ALERTS}
approvals:
  expire_after_minutes: 240
"""
CLICKERS = ("U0ALICE", "U0BOB", "U0ERIN")
PEOPLE = {"U0ALICE": "alice", "U0BOB": "bob", "U0ERIN": "erin"}


def small_diff(i: int) -> str:
    """A few lines in an infusion pump's dosing module: the policy wants human approvals, so cards go out."""
    return (
        f"diff --git a/pump/dosing.py b/pump/dosing.py\n--- a/pump/dosing.py\n+++ b/pump/dosing.py\n"
        f"@@ -1,3 +1,4 @@\n import math\n \n-MAX_DAILY_DOSE_MG_PER_KG = {i % 50 + 10}\n+MAX_DAILY_DOSE_MG_PER_KG = {i % 50 + 11}\n"
        f"+BOLUS_LIMIT_ML = {i % 7 + 2}\n"
    )


def request_body(i: int, run: str) -> bytes:
    return json.dumps(
        {
            "service": "infusion-pump-controller",
            "version": f"2.4.{i}",
            "environment": "production",
            "repository": "acme/pump",
            "commit": f"{run}{i:07x}"[:40],
            "requested_by": "dev@example.org",
            "authors": ["dev@example.org"],
            "diff": small_diff(i),
        }
    ).encode()


# --------------------------------------------------------------------------- the server


def _slack_api_main(conn: Any) -> None:
    with SlackApiServer() as slack:
        conn.send(slack.url)
        while (method := conn.recv()) is not None:
            conn.send(len(slack.calls_to(method)))


class SlackApiProcess:
    """The loopback Slack Web API in a process of its own; `count(method)` = calls it received."""

    def __enter__(self) -> SlackApiProcess:
        self._conn, child = multiprocessing.Pipe()
        self._proc = multiprocessing.get_context("fork").Process(target=_slack_api_main, args=(child,), daemon=True)
        self._proc.start()
        if not self._conn.poll(30):
            raise SystemExit("the loopback Slack API did not start within 30 s")
        self.url: str = self._conn.recv()
        return self

    def count(self, method: str) -> int:
        self._conn.send(method)
        return int(self._conn.recv())

    def __exit__(self, *exc: object) -> None:
        self._conn.send(None)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()



def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(port: int, workers: int) -> list[str]:
    command = [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return command if workers == 1 else [*command, "--workers", str(workers)]


def _workers_settled(supervisor: int, workers: int) -> bool:
    """With N workers, /readyz answers as soon as one is up: wait until N exist and their start-up CPU has settled
    (the connections the load opens first would otherwise all land on the first worker)."""
    if workers == 1:
        return True
    children = [p.parent.name for p in Path("/proc").glob("[0-9]*/stat") if _ppid(p) == supervisor]
    if len(children) < workers:
        return False
    before = cpu_seconds(supervisor)
    time.sleep(0.5)
    return cpu_seconds(supervisor) - before < 0.05


def _ppid(stat: Path) -> int:
    try:
        return int(stat.read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


@contextmanager
def server(database_url: str, slack_api_url: str, workers: int = 1) -> Iterator[tuple[str, int]]:
    with tempfile.TemporaryDirectory(prefix="bench-approvals-") as tmp:
        (Path(tmp) / "gitops-health.yaml").write_text(CONFIG)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_HEALTH_", "SLACK_", "TEAMS_"))}
        env.update(
            GITOPS_HEALTH_DATA_DIR=str(Path(tmp) / "data"),
            GITOPS_HEALTH_DATABASE_URL=database_url,
            GITOPS_HEALTH_CONFIG=str(Path(tmp) / "gitops-health.yaml"),
            GITOPS_HEALTH_WEBHOOK_SECRET=SECRET,
            GITOPS_HEALTH_LOG_LEVEL="WARNING",
            SLACK_BOT_TOKEN="xoxb-bench-token",
            SLACK_SIGNING_SECRET=SLACK_SIGNING_SECRET,
            SLACK_API_URL=slack_api_url,
        )
        port = _free_port()
        log = (Path(tmp) / "server.log").open("wb")
        proc = subprocess.Popen(serve_command(port, workers), env=env, cwd=tmp, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"server exited with {proc.returncode}:\n{(Path(tmp) / 'server.log').read_text()[-3000:]}")
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200 and _workers_settled(proc.pid, workers):
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("server did not become ready within 120 s")
                time.sleep(0.2)
            yield base, proc.pid
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU so far of a process and its children (the workers of `serve --workers N`).

    A figure the other load on the shared machine barely moves, unlike requests/s.
    """
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid: int) -> dict[str, int]:
    """Clock ticks so far per kind of server thread, over the workers of `serve` (pid and its children).

    The pools name their OS threads (assistant/thread_pool.py): deployments-cor(e), outbox-db, slack-core ...;
    a process's main thread runs its event loop (HTTP, the outbox's claims and card calls); what the live
    threads do not account for was used by threads that have exited (e.g. per-run thread pools).
    """
    ticks: dict[str, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if stat.parent.name != str(pid) and fields[1] != str(pid):
            continue
        process = int(fields[11]) + int(fields[12])
        accounted = 0
        for task in Path(f"/proc/{stat.parent.name}/task").glob("*"):
            try:
                text = (task / "stat").read_text()
            except OSError:
                continue
            used = sum(int(x) for x in text.rpartition(")")[2].split()[11:13])
            kind = "event loop" if task.name == stat.parent.name else text[text.index("(") + 1 : text.rindex(")")].rstrip("0123456789").rstrip("_")
            ticks[kind] = ticks.get(kind, 0) + used
            accounted += used
        ticks["threads that exited"] = ticks.get("threads that exited", 0) + max(0, process - accounted)
    return ticks


# --------------------------------------------------------------------------- load
# A minimal HTTP/1.1 keep-alive client over asyncio streams: requests are
# built (and signed) before the clock starts, so the load generator spends
# microseconds per request, not the millisecond httpx needs; on a shared
# 2-core machine that is the difference between measuring the server and
# measuring the client.


class RawClient:
    def __init__(self, base: str) -> None:
        host_port = base.split("://", 1)[1]
        self.host, port = host_port.split(":")
        self.port = int(port)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0

    def build(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        if self._idle:
            reader, writer = self._idle.pop()
            return reader, writer, True
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 22)
        self.opened += 1
        return reader, writer, False

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Send one pre-built request; (status, body). A reused connection the server closed is replaced once."""
        for _ in range(2):
            reader, writer, reused = await self._connection()
            try:
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                if reused:
                    continue
                raise
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            self._idle.append((reader, writer))
            return status, body
        raise ConnectionError("server closed the connection twice")

    async def close(self) -> None:
        for _reader, writer in self._idle:
            writer.close()
        self._idle.clear()


async def bounded(n: int, concurrency: int, one: Any) -> tuple[float, list[Any]]:
    """Run one(i) for i in range(n) with at most `concurrency` in flight; (seconds, results)."""
    results: list[Any] = [None] * n
    counter = iter(range(n))

    async def lane() -> None:
        for i in counter:
            results[i] = await one(i)

    start = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - start, results


async def post_deployments(base: str, pid: int, n: int, concurrency: int, cards: Any = None) -> dict[str, Any]:
    """POST n deploy requests; then (with `cards`, the loopback Slack's count of cards posted) wait for the
    outbox to post the rest of the cards, to price a card, before reading every request back."""
    run = uuid.uuid4().hex[:8]
    client = RawClient(base)
    try:
        health = client.build("GET", "/healthz")
        cpu = cpu_seconds(pid)
        anchor_s, anchor = await bounded(n, concurrency, lambda _i: client.send(health))
        anchor_cpu = cpu_seconds(pid) - cpu

        posts = []
        for i in range(n):
            body = request_body(i, run)
            posts.append(client.build("POST", "/api/deployments", body, {**sign(SECRET, None, body), "Content-Type": "application/json"}))
        cpu = cpu_seconds(pid)
        threads = thread_cpu(pid)
        post_s, posted = await bounded(n, concurrency, lambda i: client.send(posts[i]))
        post_cpu = cpu_seconds(pid) - cpu
        tick = os.sysconf("SC_CLK_TCK")
        by_thread = {k: (v - threads.get(k, 0)) * 1000 / tick / n for k, v in thread_cpu(pid).items() if v != threads.get(k, 0)}
        # The server's CPU over the POST phase includes the cards the outbox posted meanwhile (chat-delivery's
        # cost, not the request's). Price a card by letting the outbox drain the rest with no other load,
        # then take that many cards' worth out of the phase's CPU: the request's own CPU, estimated.
        drain: dict[str, float] = {}
        if cards is not None:
            cards_in_phase = cards()
            cpu = cpu_seconds(pid)
            started = time.perf_counter()
            while outbox_backlog(base) and time.perf_counter() < started + 180:
                await asyncio.sleep(0.2)
            drained = cards() - cards_in_phase
            await client.close()  # idle past the server's keep-alive timeout: open fresh connections for the reads
            drain = {
                "cards_in_phase": cards_in_phase,
                "drain_s": time.perf_counter() - started,
                "card_cpu_ms": (cpu_seconds(pid) - cpu) * 1000 / drained if drained else float("nan"),
            }
        answers = [json.loads(body) for status, body in posted if status == 202]
        accepted = [a["id"] for a in answers]
        statuses: dict[str, int] = {}
        for a in answers:
            statuses[a["status"]] = statuses.get(a["status"], 0) + 1
        errors = [(status, body[:200]) for status, body in posted if status != 202]

        reads = [client.build("GET", f"/api/deployments/{dep}", b"", sign(SECRET, None, b"")) for dep in accepted]

        async def read(i: int) -> bool:
            status, body = await client.send(reads[i])
            return status == 200 and json.loads(body)["id"] == accepted[i]

        _read_s, readable = await bounded(len(accepted), concurrency, read)
    finally:
        await client.close()
    return {
        "requests": n,
        "accepted_202": len(accepted),
        "errors": errors[:5],
        "error_count": len(errors),
        "requests_per_s": len(accepted) / post_s,
        "retrievable": sum(readable),
        "anchor_healthz_per_s": sum(1 for status, _ in anchor if status == 200) / anchor_s,
        "post_cpu_ms": post_cpu * 1000 / n,
        "anchor_cpu_ms": anchor_cpu * 1000 / n,
        "post_wall_s": post_s,
        "by_thread": by_thread,
        **drain,
        "ids": accepted,
        "statuses": statuses,
    }


def click_requests(client: RawClient, deployment_ids: list[str], n: int) -> list[bytes]:
    """`n` signed Approve clicks, three clickers per card in a row (alice, bob, erin), built before the clock starts."""
    clicks = []
    for i in range(n):
        user = CLICKERS[i % len(CLICKERS)]
        dep = deployment_ids[(i // len(CLICKERS)) % len(deployment_ids)]
        body, content = block_action(user=user, action_id="deployment.approve", value=dep, trigger_id=f"{i}.{i}.bench")
        clicks.append(client.build("POST", "/slack/events", body, {**content, **signed_headers(SLACK_SIGNING_SECRET, body)}))
    return clicks


async def open_loop(client: RawClient, clicks: list[bytes], rate: float) -> tuple[list[float], list[int], float]:
    """Send `clicks` at `rate`/s whatever the answers do (open loop, so a slow server cannot slow the offer down);
    returns each click's send-to-ack latency (s), its HTTP status, and how long the sending took."""
    latencies: list[float] = []
    statuses: list[int] = []
    # Open the connections outside the measurement.
    warm = client.build("GET", "/healthz")
    await asyncio.gather(*(client.send(warm) for _ in range(64)))

    async def click(i: int) -> None:
        sent = time.perf_counter()
        status, _body = await client.send(clicks[i])
        latencies.append(time.perf_counter() - sent)
        statuses.append(status)

    start = time.perf_counter()
    tasks = []
    for i in range(len(clicks)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(click(i)))
    sent_s = time.perf_counter() - start
    await asyncio.gather(*tasks)
    return latencies, statuses, sent_s


async def slack_clicks(base: str, pid: int, deployment_ids: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """Open-loop Approve clicks at `rate`/s; latency = send to Slack's ack (HTTP 200)."""
    n = int(rate * seconds)
    client = RawClient(base)
    clicks = click_requests(client, deployment_ids, n)
    try:
        cpu = cpu_seconds(pid)
        latencies, statuses, sent_s = await open_loop(client, clicks, rate)
        # Every acked click must become a recorded vote: read them back (the server records them after the ack).
        expected: dict[str, set[str]] = {}
        for i in range(n):
            expected.setdefault(deployment_ids[(i // len(CLICKERS)) % len(deployment_ids)], set()).add(PEOPLE[CLICKERS[i % len(CLICKERS)]])
        reads = {dep: client.build("GET", f"/api/deployments/{dep}", b"", sign(SECRET, None, b"")) for dep in expected}
        recorded = 0
        waited = time.perf_counter()
        while time.perf_counter() < waited + 180:
            recorded = 0
            for dep, raw in reads.items():
                status, body = await client.send(raw)
                if status == 200:
                    recorded += len(expected[dep] & {v["person"] for v in json.loads(body)["votes"]})
            if recorded >= n:
                cpu = cpu_seconds(pid) - cpu
                break
            await asyncio.sleep(0.5)
        waited = time.perf_counter() - waited
    finally:
        await client.close()
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100)
    return {
        "clicks": n,
        "offered_per_s": rate,
        "achieved_per_s": n / sent_s if sent_s else float(n),
        "ack_200": sum(1 for s in statuses if s == 200),
        "p50_ms": q[49],
        "p99_ms": q[98],
        "max_ms": ms[-1],
        "votes_recorded": recorded,
        "votes_wait_s": waited,
        "cpu_ms": cpu * 1000 / n,
    }


# --------------------------------------------------------------------------- runs


def outbox_backlog(base: str) -> int:
    """Jobs waiting or running, from the server's own /metrics gauge."""
    total = 0
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith("gitops_health_outbox_jobs{") and ('status="pending"' in line or 'status="running"' in line):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


@contextmanager
def postgres_database(url: str) -> Iterator[str]:
    import psycopg

    name = f"gh_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{url.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_one(label: str, database_url: str, args: argparse.Namespace, *, clicks: bool) -> None:
    with SlackApiProcess() as slack, server(database_url, slack.url, args.workers) as (base, pid):
        result = asyncio.run(post_deployments(base, pid, args.requests, args.concurrency, lambda: slack.count("chat.postMessage")))
        ids = result.pop("ids")
        print(
            f"{label:9} POST /api/deployments: {result['requests_per_s']:7.1f} requests/s "
            f"({result['accepted_202']}/{result['requests']} accepted, {result['error_count']} errors, "
            f"{result['retrievable']}/{result['accepted_202']} retrievable afterwards; {result['statuses']})   "
            f"anchor GET /healthz: {result['anchor_healthz_per_s']:7.1f} requests/s",
            flush=True,
        )
        print(
            f"          server CPU per POST {result['post_cpu_ms']:.2f} ms (server busy {result['post_cpu_ms'] * result['requests'] / 1000 / result['post_wall_s'] * 100:.0f}% "
            f"of one CPU while posting; includes the outbox's card posts in that time), per GET /healthz {result['anchor_cpu_ms']:.2f} ms",
            flush=True,
        )
        parts = sorted(result["by_thread"].items(), key=lambda kv: -kv[1])
        print(
            "          of which by server thread: " + ", ".join(f"{k} {v:.2f}" for k, v in parts) + " ms per POST "
            "(deployments-cor: the request's review, database write and approval park; event loop: HTTP and the "
            "outbox's own loop work; outbox-db/slack-core: card claims and posts)",
            flush=True,
        )
        priced_on = result["requests"] - result.get("cards_in_phase", result["requests"])
        if result.get("cards_in_phase") is not None and priced_on < 50:
            print(
                f"          of which cards: {result['cards_in_phase']}/{result['requests']} posted during the POST phase; "
                f"only {priced_on} left after it, too few to price a card (no estimate of the request's own CPU)",
                flush=True,
            )
        elif result.get("cards_in_phase") is not None and result["card_cpu_ms"] == result["card_cpu_ms"]:
            own = result["post_cpu_ms"] - result["cards_in_phase"] * result["card_cpu_ms"] / result["requests"]
            print(
                f"          of which cards: {result['cards_in_phase']}/{result['requests']} posted during the POST phase at "
                f"{result['card_cpu_ms']:.2f} ms CPU each (priced on the {result['requests'] - result['cards_in_phase']} the outbox "
                f"posted in the {result['drain_s']:.1f} s after it, nothing else running); the request's own CPU ~{own:.2f} ms per POST",
                flush=True,
            )
        if result["errors"]:
            print(f"          first errors: {result['errors']}", flush=True)
        if clicks and ids:
            ack = asyncio.run(slack_clicks(base, pid, ids, args.clicks_per_s, args.click_seconds))
            print(
                f"{label:9} Slack Approve ack at {ack['offered_per_s']:.0f}/s offered ({ack['achieved_per_s']:.0f}/s sent, "
                f"{ack['ack_200']}/{ack['clicks']} acked 200): p50 {ack['p50_ms']:.1f} ms, p99 {ack['p99_ms']:.1f} ms, max {ack['max_ms']:.1f} ms; "
                f"{ack['votes_recorded']}/{ack['clicks']} votes recorded (read back {ack['votes_wait_s']:.1f} s after the last ack); "
                f"server CPU {ack['cpu_ms']:.2f} ms per click (ack, vote, graph resume, read-backs)",
                flush=True,
            )
        # The outbox posts and updates cards behind the load: how far behind, and how long until it is idle.
        posted = slack.count("chat.postMessage")
        start = time.perf_counter()
        left = outbox_backlog(base)
        while left and time.perf_counter() < start + 180:
            time.sleep(0.2)
            left = outbox_backlog(base)
        print(
            f"          outbox: {posted}/{len(ids)} cards posted when the load ended (the POST phase's backlog is reported above); "
            f"idle {time.perf_counter() - start:.1f} s later "
            f"({left} jobs left), {slack.count('chat.postMessage')} cards and {slack.count('chat.update')} card updates sent",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--clicks-per-s", type=float, default=200.0)
    parser.add_argument("--click-seconds", type=float, default=5.0)
    parser.add_argument("--postgres", default=os.environ.get("GITOPS_HEALTH_TEST_POSTGRES_URL"))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1,
        help="server processes (`serve --workers N`); default one per CPU, as a production deploy on this host would run",
    )
    args = parser.parse_args()
    print(
        f"bench/approvals.py: {args.requests} requests, {args.concurrency} in flight, small diffs; server `gitops-health serve --workers {args.workers}`; {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at start; targets >= 300 requests/s (SQLite), ack p99 < 50 ms"
    )
    with tempfile.TemporaryDirectory(prefix="bench-approvals-db-") as tmp:
        run_one("SQLite", f"sqlite:///{tmp}/gitops-health.db", args, clicks=True)
    if args.postgres and not args.no_postgres:
        with postgres_database(args.postgres) as url:
            run_one("Postgres", url, args, clicks=True)
    else:
        print("Postgres  skipped: pass --postgres URL or set GITOPS_HEALTH_TEST_POSTGRES_URL")
    print(f"load average {os.getloadavg()[0]:.1f} at the end (other processes share these CPUs: compare figures from quiet runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
