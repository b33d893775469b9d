"""`gitops-health serve --workers N`: N processes on one port, one database, /metrics summed, clean stop, fail together."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.support.deployments import post_deployment, request_fields
from tests.support.servers import CLI, ServeProcess, clean_environ

SECRET = "workers-test-secret"
ROOT = Path(__file__).resolve().parents[3]


def _command(workers: int) -> list[str]:
    return [str(CLI), "serve", "--host", "127.0.0.1", "--port", "0", "--workers", str(workers)]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = clean_environ(GITOPS_HEALTH_DATA_DIR=str(tmp_path / "data"), GITOPS_HEALTH_WEBHOOK_SECRET=SECRET)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(extra)
    env["PYTHONPATH"] = str(ROOT)
    return env


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _wait_children(pid: int, n: int, timeout: float = 60) -> list[int]:
    deadline = time.monotonic() + timeout
    while len(kids := _children(pid)) < n:
        assert time.monotonic() < deadline, f"{len(kids)} of {n} workers started"
        time.sleep(0.05)
    return kids


def _posted_count(text: str) -> float:
    match = re.search(r'^gitops_health_http_requests_total\{method="POST",route="/api/deployments",status="202"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_two_workers_share_the_port_the_database_and_the_metrics(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    with ServeProcess(tmp_path, _env(tmp_path, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)), command=_command(2)) as server:
        assert server.proc is not None
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            server.wait_healthy(http, timeout=60)
        workers = _wait_children(server.proc.pid, 2)
        for _ in range(2):  # both workers' start-ups are done once each answers (fresh connections spread over them)
            with httpx.Client(base_url=server.base_url, timeout=30) as http:
                server.wait_healthy(http, timeout=60)

        def post(i: int) -> httpx.Response:
            with httpx.Client(base_url=server.base_url, timeout=60) as http:  # a connection each: any worker may take it
                return post_deployment(http, SECRET, request_fields("", commit=f"c{i:05d}", version=f"1.0.{i}"))

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(post, range(24)))
        assert [a.status_code for a in answers] == [202] * 24, [a.text for a in answers if a.status_code != 202]
        ids = {a.json()["id"] for a in answers}
        assert len(ids) == 24
        from assistant.signing import sign

        for dep_id in ids:  # whichever worker answers, every request is there
            with httpx.Client(base_url=server.base_url, timeout=30) as http:
                got = http.get(f"/api/deployments/{dep_id}", headers=sign(SECRET, None, b""))
            assert got.status_code == 200 and got.json()["id"] == dep_id
        # Both workers served, and a scrape -- answered by either -- counts every worker's requests.
        served_by = {int(m.group(1)) for f in metrics_dir.iterdir() if (m := re.search(r"_(\d+)\.db$", f.name))}
        assert served_by == set(workers), (served_by, workers)
        for _ in range(6):
            with httpx.Client(base_url=server.base_url, timeout=30) as http:
                assert _posted_count(http.get("/metrics").text) == 24
        code = server.stop(60)
    assert code == 0, "".join(server.lines)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()], "a worker outlived the server"
    assert metrics_dir.exists(), "an operator's PROMETHEUS_MULTIPROC_DIR is theirs to keep"


def test_a_worker_that_dies_stops_the_server(tmp_path: Path) -> None:
    with ServeProcess(tmp_path, _env(tmp_path), command=_command(2)) as server:
        assert server.proc is not None
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            server.wait_healthy(http, timeout=60)
        workers = _wait_children(server.proc.pid, 2)
        os.kill(workers[0], signal.SIGKILL)
        code = server.finish(60)
    assert code == 1
    assert any('"worker_exited"' in line for line in server.lines), "".join(server.lines)
    assert not Path(f"/proc/{workers[1]}").exists() or _zombie(workers[1]), "the other worker kept running"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def test_workers_must_be_at_least_one(tmp_path: Path) -> None:
    proc = subprocess.run(_command(0), cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--workers 0" in proc.stderr and "use 1 to" in proc.stderr
