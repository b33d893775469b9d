"""The CI gate script in docs/ci-integration.md, run exactly as written (bash, openssl, curl, jq)
against a real `gitops-health serve` process: approved passes, rejected/blocked fail, a bad secret is explained."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ci-integration.md"
CLI = Path(sys.executable).with_name("gitops-health")
SECRET = "ci-docs-secret"

PHI_DIFF = (
    "diff --git a/src/api.py b/src/api.py\nnew file mode 100644\n--- /dev/null\n+++ b/src/api.py\n@@ -0,0 +1,2 @@\n"
    '+def f(patient):\n+    logger.info("patient ssn %s", patient.ssn)\n'
)
SECRET_DIFF = (
    "diff --git a/src/cfg.py b/src/cfg.py\nnew file mode 100644\n--- /dev/null\n+++ b/src/cfg.py\n@@ -0,0 +1 @@\n"
    '+AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n'
)

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "curl", "openssl", "jq")), reason="the gate script needs bash, curl, openssl and jq"
)


def gate_script() -> str:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    scripts = [b for b in blocks if "# gitops-health deploy gate" in b]
    assert len(scripts) == 1, "docs/ci-integration.md must hold exactly one gate script block"
    return scripts[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("server")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_HEALTH_", "SLACK_", "TEAMS_"))}
    env.update(GITOPS_HEALTH_DATA_DIR=str(home / "data"), GITOPS_HEALTH_WEBHOOK_SECRET=SECRET)
    proc = subprocess.Popen(
        [str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("server did not start:\n" + (proc.stderr.read() if proc.stderr else ""))
        time.sleep(0.1)
    from assistant.approvals import ApprovalService
    from assistant.config import DEMO_CONFIG, parse_config
    from assistant.storage import Database

    db = Database(f"sqlite:///{home / 'data' / 'gitops-health.db'}")
    try:
        yield {"base": base, "home": home, "service": ApprovalService(db, parse_config(DEMO_CONFIG))}
    finally:
        db.dispose()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _start(server: dict[str, Any], tmp_path: Path, diff: str, *, secret: str = SECRET, **env: str) -> subprocess.Popen[str]:
    script = tmp_path / "gitops-deploy-gate.sh"
    script.write_text(gate_script(), encoding="utf-8")
    (tmp_path / "change.diff").write_text(diff, encoding="utf-8")
    variables = {
        "PATH": os.environ["PATH"],
        "GITOPS_HEALTH_URL": server["base"],
        "GITOPS_HEALTH_WEBHOOK_SECRET": secret,
        "SERVICE": "infusion-pump-controller",
        "VERSION": "2.4.1",
        "ENVIRONMENT": "production",
        "REPOSITORY": "acme/pump",
        "COMMIT": "9f1c2e7",
        "REQUESTED_BY": "dev@example.org",
        "AUTHORS": "dev@example.org, alice@example.org",
        "DIFF_FILE": str(tmp_path / "change.diff"),
        "POLL_SECONDS": "0.2",
        "TIMEOUT_SECONDS": "60",
    }
    variables.update(env)
    return subprocess.Popen(["bash", str(script)], cwd=tmp_path, env=variables, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _deployment_id(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    first = proc.stdout.readline()
    match = re.match(r"gitops-health: (dep_\w+) is pending", first)
    assert match, first + (proc.stderr.read() if proc.stderr else "")
    return match.group(1)


def test_an_approved_request_passes_the_gate(server: dict[str, Any], tmp_path: Path) -> None:
    proc = _start(server, tmp_path, PHI_DIFF, IDEMPOTENCY_KEY="pipeline-1001")
    dep_id = _deployment_id(proc)
    time.sleep(0.5)  # the script is polling now
    server["service"].cast_vote(dep_id, "erin", "approve", "slack")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert f"{dep_id} approved by erin at" in out
    # a retried job with the same key gets the same decision back, at once
    again = _start(server, tmp_path, PHI_DIFF, IDEMPOTENCY_KEY="pipeline-1001")
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0 and f"gitops-health: {dep_id} is approved" in out, out + err


def test_a_rejected_request_fails_the_gate_with_the_reason(server: dict[str, Any], tmp_path: Path) -> None:
    proc = _start(server, tmp_path, PHI_DIFF, COMMIT="abc1234")
    dep_id = _deployment_id(proc)
    server["service"].cast_vote(dep_id, "bob", "reject", "teams", "log line still prints the SSN")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert f"{dep_id} rejected by bob" in out and "reason: log line still prints the SSN" in out


def test_a_blocked_request_fails_at_once_with_the_violations(server: dict[str, Any], tmp_path: Path) -> None:
    proc = _start(server, tmp_path, SECRET_DIFF)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    assert " is blocked" in out and "violation no-hardcoded-secrets" in out


def test_a_wrong_secret_is_refused_and_explained(server: dict[str, Any], tmp_path: Path) -> None:
    proc = _start(server, tmp_path, PHI_DIFF, secret="not-the-secret")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    body = json.loads(err.split("refused the request: ", 1)[1])
    assert body["error"] == "unauthorized" and "does not match" in body["message"]
