"""`gitops-health policy test [DIR]` as users run it: a real subprocess on real directories."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "gitops-health")


def policy_test(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, "policy", "test", *args], capture_output=True, text=True, timeout=60)


POLICY = 'package team\n\nimport rego.v1\n\ndefault allow := false\n\nallow if input.env == "dev"\n'


def test_the_bundled_policies_pass() -> None:
    proc = policy_test()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS  gitops.review_test.test_hardcoded_secret_is_denied_anywhere" in proc.stdout
    assert " 0 failed" in proc.stdout


def test_a_user_directory_with_passing_and_failing_tests(tmp_path: Path) -> None:
    (tmp_path / "team.rego").write_text(POLICY)
    (tmp_path / "team_test.rego").write_text(
        "package team_test\n\nimport rego.v1\n\n"
        'test_dev_is_allowed if data.team.allow with input.env as "dev"\n\n'
        'test_prod_is_allowed if data.team.allow with input.env as "prod"\n'
    )
    proc = policy_test(str(tmp_path))
    assert proc.returncode == 1
    assert "PASS  team_test.test_dev_is_allowed  (team_test.rego)" in proc.stdout
    assert "FAIL  team_test.test_prod_is_allowed  (team_test.rego): undefined" in proc.stdout
    assert proc.stdout.rstrip().endswith("1 passed, 1 failed, 2 total")


def test_all_passing_exits_zero(tmp_path: Path) -> None:
    (tmp_path / "team.rego").write_text(POLICY)
    (tmp_path / "team_test.rego").write_text(
        'package team_test\n\nimport rego.v1\n\ntest_dev if data.team.allow with input.env as "dev"\n\n'
        'test_prod_denied if { not data.team.allow with input.env as "prod" }\n'
    )
    proc = policy_test(str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed, 0 failed, 2 total" in proc.stdout


def test_a_broken_policy_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "team.rego").write_text("package team\n\nimport rego.v1\n\nallow if {\n  input.env ==\n}\n")
    (tmp_path / "team_test.rego").write_text("package team_test\n\nimport rego.v1\n\ntest_x if data.team.allow\n")
    proc = policy_test(str(tmp_path))
    assert proc.returncode == 1
    assert f"{tmp_path / 'team.rego'}:6:" in proc.stderr
    assert proc.stdout == ""  # rego-cpp's own diagnostics must not leak onto stdout


def test_a_broken_test_file_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "team.rego").write_text(POLICY)
    (tmp_path / "team_test.rego").write_text("package team_test\n\nimport rego.v1\n\ntest_x if {\n  data.team.allow ==\n}\n")
    proc = policy_test(str(tmp_path))
    assert proc.returncode == 1
    assert f"{tmp_path / 'team_test.rego'}:6:" in proc.stderr


def test_no_tests_is_a_failure(tmp_path: Path) -> None:
    (tmp_path / "team.rego").write_text(POLICY)
    proc = policy_test(str(tmp_path))
    assert proc.returncode == 1
    assert "no tests" in proc.stderr and "_test.rego" in proc.stderr


def test_a_missing_directory_exits_2(tmp_path: Path) -> None:
    proc = policy_test(str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert "not a directory" in proc.stderr
