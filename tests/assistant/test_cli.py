"""The entry point's own `review` argument reading agrees with Typer's, and both routes give the same output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import review_arguments
from assistant.cli_app import app

CLI = str(Path(sys.executable).parent / "gitops-health")

DIFF = b"""diff --git a/svc/api.py b/svc/api.py
index 1111111..2222222 100644
--- a/svc/api.py
+++ b/svc/api.py
@@ -10,2 +10,3 @@ def chart(request, patient_id):
     patient = Patient.objects.get(pk=patient_id)
+    log.info("chart for %s, DOB %s", patient.full_name, patient.date_of_birth)
     return render(request, "chart.html", {"patient": patient})
"""

ARGVS = [
    ["review"],
    ["review", "--diff", "x.diff"],
    ["review", "--diff=x.diff", "--format=json"],
    ["review", "--format", "markdown", "--diff", "-"],
    ["review", "--diff", "a.diff", "--diff", "b.diff"],
    ["review", "--format", "text", "--format", "json"],
    ["review", "--diff", "has space.diff", "--format", "json"],
    ["review", "--diff="],
]
TYPER_ONLY = [
    [],
    ["--help"],
    ["review", "--help"],
    ["review", "--diff"],
    ["review", "--format", "xml"],
    ["review", "--diff", "-x.diff"],
    ["review", "--dif", "x.diff"],
    ["review", "x.diff"],
    ["review", "--", "--diff"],
    ["commit-msg"],
    ["Review"],
]


def typer_review_params(args: list[str]) -> tuple[str, str]:
    """What Typer binds to review's parameters for `args` (its own parser, without running the command)."""
    import typer.main

    group = typer.main.get_command(app)
    ctx = group.make_context("gitops-health", list(args))
    name, command, rest = group.resolve_command(ctx, [*getattr(ctx, "_protected_args", []), *ctx.args])
    assert name == "review"
    sub = command.make_context(name, rest, parent=ctx)
    return sub.params["diff"], sub.params["format"]


@pytest.mark.parametrize("args", ARGVS, ids=" ".join)
def test_the_fast_route_reads_review_arguments_as_typer_does(args: list[str]) -> None:
    assert review_arguments(args) == typer_review_params(args)


@pytest.mark.parametrize("args", TYPER_ONLY, ids=lambda a: " ".join(a) or "(none)")
def test_anything_unusual_is_left_to_typer(args: list[str]) -> None:
    assert review_arguments(args) is None


def test_both_routes_print_the_same_review(tmp_path: Path) -> None:
    plain = tmp_path / "change.diff"
    plain.write_bytes(DIFF)
    dashed = tmp_path / "-change.diff"  # a value that looks like an option: Typer's route
    dashed.write_bytes(DIFF)
    env = {**os.environ, "GITOPS_HEALTH_LLM": "none"}
    fast = subprocess.run([CLI, "review", "--diff", "change.diff", "--format", "json"], cwd=tmp_path,
                          capture_output=True, timeout=120, env=env)
    typer_route = subprocess.run([CLI, "review", "--diff", "-change.diff", "--format", "json"], cwd=tmp_path,
                                 capture_output=True, timeout=120, env=env)
    assert fast.returncode == typer_route.returncode == 0, (fast.stderr, typer_route.stderr)
    assert fast.stderr == typer_route.stderr == b""
    assert b'"rule": "PHI-LOG-001"' in fast.stdout
    assert fast.stdout == typer_route.stdout.replace(b"-change.diff", b"change.diff")


def test_a_bad_format_keeps_typer_s_message_and_exit_code(tmp_path: Path) -> None:
    proc = subprocess.run([CLI, "review", "--format", "xml"], capture_output=True, timeout=120, input=b"")
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert b"--format 'xml' is not one of json, markdown, text" in proc.stderr
