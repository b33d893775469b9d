"""`gitops-health audit verify|export` and `db upgrade` as users run them: real processes, real databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from assistant import audit
from assistant.storage import Database


def _cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assistant.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


def _env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITOPS_HEALTH_", "SLACK_", "TEAMS_"))}
    env["GITOPS_HEALTH_DATABASE_URL"] = database_url
    return env


def test_db_upgrade_reports_the_revision(database_url: str, tmp_path: Path) -> None:
    result = _cli(["db", "upgrade"], _env(database_url), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "database at revision" in result.stdout


def test_verify_exits_0_when_intact_and_1_naming_the_first_bad_record(db: Database, database_url: str, tmp_path: Path) -> None:
    for i in range(5):
        with db.session() as s:
            audit.append(s, "alice", "deployment.vote", f"dep_{i}", {"i": i})
    ok = _cli(["audit", "verify"], _env(database_url), tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "5 records" in ok.stdout

    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET subject = 'dep_999' WHERE seq = 4"))
    bad = _cli(["audit", "verify"], _env(database_url), tmp_path)
    assert bad.returncode == 1
    assert "seq 4" in bad.stderr


def test_export_jsonl_writes_every_record(db: Database, database_url: str, tmp_path: Path) -> None:
    for i in range(3):
        with db.session() as s:
            audit.append(s, "bob", "alert.acknowledged", f"alt_{i}", {})
    out = tmp_path / "audit.jsonl"
    result = _cli(["audit", "export", "--format", "jsonl", "--out", str(out)], _env(database_url), tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["subject"] for r in rows] == ["alt_0", "alt_1", "alt_2"]


def test_export_refuses_an_unknown_format(tmp_path: Path) -> None:
    result = _cli(["audit", "export", "--format", "csv"], _env(f"sqlite:///{tmp_path}/x.db"), tmp_path)
    assert result.returncode == 2 and "jsonl" in result.stderr


def test_a_bad_config_stops_the_command_with_one_line_per_problem(tmp_path: Path) -> None:
    (tmp_path / "gitops-health.yaml").write_text("on_call:\n  - schedule: p\n    members: [ghost]\n    rotation: hourly\n    handoff: '2026-01-05T09:00:00+00:00'\n")
    result = _cli(["audit", "verify"], _env(f"sqlite:///{tmp_path}/x.db"), tmp_path)
    assert result.returncode == 2
    assert "on_call[0].rotation: 'hourly' is not one of daily, weekly" in result.stderr
