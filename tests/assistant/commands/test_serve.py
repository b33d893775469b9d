"""`gitops-health serve` as a real subprocess: starts on the defaults, stops cleanly, refuses bad set-ups."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

import policies
from tests.support.servers import CLI, ServeProcess, clean_environ


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return clean_environ(GITOPS_HEALTH_DATA_DIR=str(tmp_path / "data"), **extra)


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "serve", "--host", "127.0.0.1", *args],
        cwd=tmp_path,
        env=_env(tmp_path, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


# SQLite is the default and is covered by the SIGTERM test below; a server start
# costs seconds, so only Postgres gets its own.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_serve_migrates_and_serves_on_postgres(tmp_path: Path, database_url: str) -> None:
    with ServeProcess(tmp_path, _env(tmp_path, GITOPS_HEALTH_DATABASE_URL=database_url)) as server:
        with httpx.Client(base_url=server.base_url, timeout=5) as http:
            server.wait_healthy(http, timeout=10)
            ready = http.get("/readyz")
        code = server.stop(30)
    assert ready.status_code == 200, ready.text
    assert code == 0, "".join(server.lines)
    from assistant.storage import Database

    database = Database(database_url)
    try:
        assert database.current_revision() is not None  # serve applied the migrations
    finally:
        database.dispose()


def test_serve_runs_on_the_defaults_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    with ServeProcess(tmp_path, _env(tmp_path)) as server:
        with httpx.Client(base_url=server.base_url, timeout=5) as http:
            health = server.wait_healthy(http, timeout=10)
            ready = http.get("/readyz")
        code = server.stop(30)
    assert health.status_code == 200
    assert ready.status_code == 200, ready.text
    assert code == 0, "".join(server.lines)
    events = [json.loads(line).get("event") for line in server.lines if line.startswith("{")]
    assert "shutdown" in events
    assert "server_stopped" in events
    stopped = next(json.loads(line) for line in server.lines if '"server_stopped"' in line)
    assert stopped["signal"] == "SIGTERM"
    access = [json.loads(line) for line in server.lines if '"http_request"' in line]
    assert {(a["route"], a["status"]) for a in access} == {("/healthz", 200), ("/readyz", 200)}
    assert (tmp_path / "data" / "gitops-health.db").exists()  # migrations ran in the data dir


def test_a_bad_config_file_stops_start_up_with_one_line_per_problem(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "people:\n  - id: carol\n    name: Carol\n    colour: blue\n"
        "on_call:\n  - schedule: primary\n    members: [carol]\n    rotation: hourly\n"
        "    handoff: '2026-01-05T09:00:00+00:00'\n"
    )
    result = _run(tmp_path, "--port", "0", GITOPS_HEALTH_CONFIG=str(config))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2, result.stderr
    assert any("people[0].colour" in line for line in errors)
    assert any("on_call[0].rotation" in line and "hourly" in line for line in errors)
    assert not (tmp_path / "data" / "gitops-health.db").exists()


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    result = _run(tmp_path, "--port", "0", GITOPS_HEALTH_DATABASE_URL="mysql://db/x")
    assert result.returncode == 2
    assert "GITOPS_HEALTH_DATABASE_URL" in result.stderr


def test_a_broken_policy_stops_start_up_naming_file_and_line(tmp_path: Path) -> None:
    # A copy of the bundled policies package, first on the path, with one broken file added.
    shadow = tmp_path / "shadow" / "policies"
    shutil.copytree(Path(policies.__file__).parent, shadow, ignore=shutil.ignore_patterns("__pycache__"))
    (shadow / "zz_broken.rego").write_text(
        "package gitops.review\n\nimport rego.v1\n\nbroken if {\n    input.x ==\n}\n"
    )
    result = _run(tmp_path, "--port", "0", PYTHONPATH=str(tmp_path / "shadow"))
    assert result.returncode == 2, result.stderr
    assert "zz_broken.rego:6" in result.stderr
    assert not (tmp_path / "data" / "gitops-health.db").exists()  # nothing migrated


def test_a_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _run(tmp_path, "--port", str(port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_an_impossible_port_is_refused(tmp_path: Path, port: str) -> None:
    result = _run(tmp_path, "--port", port)
    assert result.returncode == 2
    assert "is not a TCP port" in result.stderr


_SLOW_SERVER = '''
import asyncio, sys
from fastapi import APIRouter
from adapters.http.app import create_app
from assistant.commands import serve
from assistant.config import DEMO_CONFIG, Settings, parse_config
from assistant.logging import configure_logging, get_logger
from assistant.storage import Database

configure_logging()
log = get_logger("slow")
db = Database(sys.argv[1])
app = create_app(Settings(_env_file=None), parse_config(DEMO_CONFIG), db)
router = APIRouter()

@router.get("/slow")
async def slow() -> dict:
    log.info("slow_started")
    await asyncio.sleep(1.5)
    return {"done": True}

app.include_router(router)
code = serve._serve(app, serve._bind("127.0.0.1", 0), log)
db.dispose()
sys.exit(code)
'''


def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path) -> None:
    """The server's own app and signal handling, plus a slow route added for this test."""
    script = tmp_path / "slow_server.py"
    script.write_text(_SLOW_SERVER)
    command = [sys.executable, str(script), f"sqlite:///{tmp_path / 'db.sqlite'}"]
    with ServeProcess(tmp_path, _env(tmp_path), command=command) as server:
        result: dict[str, Any] = {}

        def call() -> None:
            try:
                result["response"] = httpx.get(f"{server.base_url}/slow", timeout=10)
            except httpx.HTTPError as exc:  # recorded so the assertion below explains it
                result["error"] = exc

        with httpx.Client(base_url=server.base_url, timeout=2) as http:
            server.wait_healthy(http, timeout=10)  # the listener is up once a probe answers
        client = threading.Thread(target=call)
        client.start()
        server.wait_event("slow_started")
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        client.join(10)
        code = server.finish(30)
    assert "error" not in result, result
    assert result["response"].status_code == 200
    assert result["response"].json() == {"done": True}
    assert code == 0, "".join(server.lines)
    assert any('"server_stopped"' in line and "SIGTERM" in line for line in server.lines)
