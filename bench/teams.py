"""Teams click latency: how long an Approve (`adaptiveCard/action` invoke) takes to be answered with the refreshed card.

Usage: .venv/bin/python bench/teams.py [--clicks 100] [--postgres URL | --no-postgres]

Unlike Slack, Teams waits for the card in the invoke's own answer, so the vote
(compare-and-set, audit record, card-update job, graph resume) is inside the
measured time. A real `gitops-health serve` runs as a subprocess in Teams'
local mode with its cards going to a loopback Bot Connector in this process;
--clicks requests are made (one approver each), their cards posted, then one
Approve per request is sent, one at a time, and the round trip measured.
Afterwards every card must have been updated to its decided form.

Anchor, same run, same server and client: GET /healthz round trip.
Postgres: --postgres URL, else GITOPS_HEALTH_TEST_POSTGRES_URL; a fresh
database is created and dropped.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.signing import sign  # noqa: E402
from tests.support.bot_connector import BotConnector, invoke_action  # noqa: E402

CLI = Path(sys.executable).with_name("gitops-health")
SECRET = "bench-teams-secret"
CONVERSATION = "19:approvals@thread.tacv2"
DIFF = """diff --git a/svc/api.py b/svc/api.py
--- a/svc/api.py
+++ b/svc/api.py
@@ -1,2 +1,3 @@
 import logging
+logging.info("patient %s", patient.ssn)
 x = 1
"""


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def _serve(tmp: Path, connector: BotConnector, database_url: str | None) -> tuple[subprocess.Popen[str], str]:
    from assistant.config import DEMO_CONFIG

    config = copy.deepcopy(DEMO_CONFIG)
    config["teams"] = {"service_url": connector.url}
    config["channels"]["approvals"] = {"teams": CONVERSATION}
    (tmp / "gitops-health.yaml").write_text(json.dumps(config, default=str))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_HEALTH_", "SLACK_", "TEAMS_"))}
    env.update(GITOPS_HEALTH_CONFIG=str(tmp / "gitops-health.yaml"), GITOPS_HEALTH_DATA_DIR=str(tmp / "data"),
               GITOPS_HEALTH_WEBHOOK_SECRET=SECRET)
    if database_url:
        env["GITOPS_HEALTH_DATABASE_URL"] = database_url
    proc = subprocess.Popen([str(CLI), "serve", "--host", "127.0.0.1", "--port", "0"], cwd=tmp, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr or []], daemon=True).start()
    deadline = time.monotonic() + 60
    port = None
    while port is None:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            raise SystemExit("the server did not start") from None
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == "serve_starting":
            port = record["port"]
    return proc, f"http://127.0.0.1:{port}"


def run(label: str, clicks: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp, BotConnector() as connector:
        proc, base = _serve(Path(tmp), connector, database_url)
        try:
            with httpx.Client(base_url=base, timeout=30) as http:
                while True:
                    try:
                        if http.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.1)
                ids = []
                for i in range(clicks):
                    body = json.dumps({"service": "ehr-api", "version": f"3.1.{i}", "environment": "production", "repository": "acme/ehr",
                                       "commit": "9f1c2e7", "requested_by": "dev@example.org", "authors": ["dev@example.org"], "diff": DIFF}).encode()
                    answer = http.post("/api/deployments", content=body, headers={"Content-Type": "application/json", **sign(SECRET, None, body)})
                    assert answer.status_code == 202, answer.text
                    ids.append(answer.json()["id"])
                connector.wait_for("send", count=clicks, timeout=120)
                anchor = []
                for _ in range(clicks):
                    t = time.perf_counter()
                    http.get("/healthz")
                    anchor.append((time.perf_counter() - t) * 1000)
                latency = []
                for dep_id in ids:
                    activity = invoke_action(user_id="29:1bob", verb="deployment.approve", deployment_id=dep_id, service_url=connector.url)
                    t = time.perf_counter()
                    answer = http.post("/api/messages", json=activity)
                    latency.append((time.perf_counter() - t) * 1000)
                    assert answer.status_code == 200 and "Approved" in json.dumps(answer.json()["value"]), answer.text
                connector.wait_for("update", count=clicks, timeout=120)
            print(f"{label}: Teams Approve invoke answered with the card, n={clicks}: p50 {statistics.median(latency):.1f} ms, "
                  f"p90 {_pct(latency, 90):.1f} ms, p99 {_pct(latency, 99):.1f} ms, max {max(latency):.1f} ms; "
                  f"every card updated: {len(connector.calls_to('update'))}/{clicks}")
            print(f"{label}: anchor GET /healthz p50 {statistics.median(anchor):.1f} ms, p99 {_pct(anchor, 99):.1f} ms")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=100)
    parser.add_argument("--postgres", default=os.environ.get("GITOPS_HEALTH_TEST_POSTGRES_URL"))
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    if args.clicks < 1:
        parser.error("--clicks must be at least 1")
    run("sqlite", args.clicks, None)
    if args.postgres and not args.no_postgres:
        import psycopg

        name = f"gh_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            run("postgres", args.clicks, f"{args.postgres.rpartition('/')[0]}/{name}")
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
