"""The policy engine: bundled defaults decide sensibly, broken policies are named by file and line."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from assistant.domain import ClinicalSafety, Finding, Risk
from assistant.policy import MEMO_SIZE, PolicyEngine, PolicyError, default_directory, policy_input, run_tests

LOW = Risk(score=0, level="low")


def finding(category: str, severity: str, file: str = "svc/api.py", line: int = 42) -> Finding:
    return Finding(category=category, severity=severity, file=file, line=line, rule="T-001", message="m")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine.load()


def evaluate(engine: PolicyEngine, findings=(), clinical=ClinicalSafety(), risk=LOW, environment=None, service=None):
    return engine.evaluate(policy_input(list(findings), clinical, risk, environment, service))


def test_clean_change_is_allowed(engine: PolicyEngine) -> None:
    result = evaluate(engine)
    assert result.decision == "allow" and result.required_approvals == [] and result.violations == []


def test_hardcoded_secret_is_denied_with_a_reason_naming_the_line(engine: PolicyEngine) -> None:
    result = evaluate(engine, [finding("hardcoded-secret", "critical", "cfg/app.py", 7)])
    assert result.decision == "deny"
    assert any(v.rule == "no-hardcoded-secrets" and "cfg/app.py:7" in v.reason for v in result.violations)


def test_critical_phi_exposure_is_denied_for_production_only(engine: PolicyEngine) -> None:
    phi = [finding("phi-exposure-log", "critical")]
    assert evaluate(engine, phi, environment="production").decision == "deny"
    assert evaluate(engine, phi, environment="staging").decision == "review"


def test_high_finding_needs_one_approver(engine: PolicyEngine) -> None:
    result = evaluate(engine, [finding("injection", "high")])
    assert result.decision == "review"
    assert [(a.role, a.count) for a in result.required_approvals] == [("approver", 1)]


def test_safety_critical_change_needs_clinical_safety_officer_and_more_without_tests(engine: PolicyEngine) -> None:
    with_tests = evaluate(engine, clinical=ClinicalSafety(safety_critical=True, iec62304_class="C", tests_changed=True))
    without = evaluate(engine, clinical=ClinicalSafety(safety_critical=True, iec62304_class="C", tests_changed=False))
    assert with_tests.decision == without.decision == "review"
    assert {a.role: a.count for a in with_tests.required_approvals} == {"approver": 1, "clinical-safety-officer": 1}
    assert {a.role: a.count for a in without.required_approvals} == {"approver": 2, "clinical-safety-officer": 1}


def test_policy_input_carries_facts_not_prose() -> None:
    data = policy_input([finding("injection", "high")], ClinicalSafety(), LOW, "production", "ehr-api")
    assert set(data) == {
        "findings", "finding_counts", "findings_total", "clinical_safety", "risk", "environment", "service"
    }
    assert "message" not in data["findings"][0]


def copy_bundled(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    target.mkdir()
    for path in default_directory().glob("*.rego"):
        shutil.copy(path, target / path.name)
    return target


def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    broken = directory / "team.rego"
    broken.write_text("package gitops.review\n\nimport rego.v1\n\ndeny contains x if {\n  x := input.a ==\n}\n")
    with pytest.raises(PolicyError) as info:
        PolicyEngine.load(directory)
    assert info.value.file == str(broken)
    assert info.value.line == 6
    assert f"{broken}:6:" in str(info.value)


def test_a_line_count_is_right_after_non_ascii_text(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    broken = directory / "team.rego"
    broken.write_text("package gitops.review\n# Überprüfung für Ärzte ✓✓\nimport rego.v1\n\nx := 1 if {\n  input.a ==\n}\n")
    with pytest.raises(PolicyError) as info:
        PolicyEngine.load(directory)
    assert info.value.line == 6


def test_rules_that_conflict_at_evaluation_raise_a_policy_error(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    (directory / "team.rego").write_text('package gitops.review\n\nimport rego.v1\n\ndecision := "allow"\n')
    engine = PolicyEngine.load(directory)  # no conflict on a clean input
    with pytest.raises(PolicyError, match="multiple outputs"):
        evaluate(engine, [finding("hardcoded-secret", "high")])


def test_a_directory_without_the_result_rule_is_refused(tmp_path: Path) -> None:
    (tmp_path / "only.rego").write_text('package other\n\nimport rego.v1\n\nallow := true\n')
    with pytest.raises(PolicyError, match="result is undefined"):
        PolicyEngine.load(tmp_path)


def test_a_result_that_is_not_a_decision_is_refused(tmp_path: Path) -> None:
    (tmp_path / "odd.rego").write_text(
        'package gitops.review\n\nimport rego.v1\n\nresult := {"decision": "maybe", "required_approvals": [], "violations": []}\n'
    )
    with pytest.raises(PolicyError, match="not a valid decision"):
        PolicyEngine.load(tmp_path)


def test_empty_or_missing_directories_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no .rego policy files"):
        PolicyEngine.load(tmp_path)
    with pytest.raises(PolicyError, match="no such policy directory"):
        PolicyEngine.load(tmp_path / "missing")


def test_a_non_utf8_policy_is_named(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    (directory / "latin1.rego").write_bytes(b"package gitops.review\n# caf\xe9\n")
    with pytest.raises(PolicyError, match="latin1.rego.*UTF-8"):
        PolicyEngine.load(directory)


def test_a_team_extends_the_defaults_with_its_own_file(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    (directory / "team.rego").write_text(
        "package gitops.review\n\nimport rego.v1\n\n"
        'deny contains {"rule": "no-friday-deploys", "reason": "frozen"} if input.service == "ehr-api"\n'
        'approvals contains {"role": "privacy-officer", "count": 1} if {\n'
        "  some f in input.findings\n"
        '  f.category == "phi-exposure-output"\n'
        "}\n"
    )
    engine = PolicyEngine.load(directory)
    assert evaluate(engine, service="ehr-api").decision == "deny"
    result = evaluate(engine, [finding("phi-exposure-output", "medium")])
    assert result.decision == "review"
    assert [(a.role, a.count) for a in result.required_approvals] == [("privacy-officer", 1)]


def test_evaluate_is_safe_from_several_threads(engine: PolicyEngine) -> None:
    inputs = [
        ([finding("hardcoded-secret", "high")], "deny"),
        ([finding("injection", "high")], "review"),
        ([], "allow"),
    ]
    errors: list[str] = []

    def work(i: int) -> None:
        findings, expected = inputs[i % 3]
        for _ in range(30):
            got = evaluate(engine, findings).decision
            if got != expected:
                errors.append(f"{got} != {expected}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_run_tests_reports_pass_fail_and_why(tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text('package p\n\nimport rego.v1\n\ndefault allow := false\n\nallow if input.ok\n')
    (tmp_path / "p_test.rego").write_text(
        "package p_test\n\nimport rego.v1\n\n"
        "test_ok if data.p.allow with input.ok as true\n\n"
        "test_wrong if data.p.allow with input.ok as false\n\n"
        "test_false := false\n"
    )
    results = {t.name: t for t in run_tests(tmp_path)}
    assert results["test_ok"].passed
    assert not results["test_wrong"].passed and "undefined" in results["test_wrong"].detail
    assert not results["test_false"].passed and results["test_false"].detail == "false"


def test_whole_input_replacement_gets_a_hint_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "p.rego").write_text('package p\n\nimport rego.v1\n\ny := 1\n\nallow if { y == 1; input.ok }\n')
    (tmp_path / "p_test.rego").write_text('package p_test\n\nimport rego.v1\n\ntest_x if data.p.allow with input as {"ok": true}\n')
    [result] = run_tests(tmp_path)
    assert not result.passed
    assert "with input.findings as fs" in result.detail


def test_a_result_rego_cpp_cannot_print_as_json_is_a_policy_error(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    (directory / "team.rego").write_text(
        "package gitops.review\n\nimport rego.v1\n\n"
        'review contains {"rule": "team", "reason": sprintf("at %s", [lower(input.service)])} if input.service\n'
    )
    engine = PolicyEngine.load(directory)
    with pytest.raises(PolicyError, match="use %v"):
        evaluate(engine, service="EHR-API")


def test_a_thousand_findings_are_decided_quickly_with_one_violation_per_rule(engine: PolicyEngine) -> None:
    findings = [finding("phi-exposure-log", "high", f"svc/m{i:04d}.cs", i + 1) for i in range(1000)]
    result = evaluate(engine, findings)
    assert result.decision == "review"
    [violation] = result.violations
    assert violation.reason.startswith("1000 high or critical finding(s) at svc/m0000.cs:1, svc/m0001.cs:2, svc/m0002.cs:3 and 997 more")


def test_the_policy_sees_the_most_severe_findings_and_exact_counts_of_all(engine: PolicyEngine) -> None:
    from assistant.policy import MAX_POLICY_FINDINGS

    many = [finding("phi-exposure-log", "critical", f"svc/m{i:04d}.py", 1) for i in range(MAX_POLICY_FINDINGS + 5)]
    secret = finding("hardcoded-secret", "high", "zz/config.py", 3)  # less severe: not among those listed
    data = policy_input([*many, secret], ClinicalSafety(), LOW, "staging", None)
    assert len(data["findings"]) == MAX_POLICY_FINDINGS and data["findings_total"] == MAX_POLICY_FINDINGS + 6
    assert data["finding_counts"] == {"phi-exposure-log": {"critical": MAX_POLICY_FINDINGS + 5}, "hardcoded-secret": {"high": 1}}
    result = engine.evaluate(data)
    assert result.decision == "deny"  # decided on the counts, so the unlisted secret still denies
    reasons = {v.rule: v.reason for v in result.violations}
    assert reasons["no-hardcoded-secrets"].startswith("hardcoded secret at 1 place(s) past the most severe findings listed")
    assert reasons["serious-finding"].startswith(f"{MAX_POLICY_FINDINGS + 5} high or critical finding(s) at svc/m0000.py:1")


def test_re2_still_works_after_policies_are_loaded() -> None:
    """regopy loaded before re2 corrupts the heap; assistant.policy must load re2 first (in a fresh process)."""
    import subprocess
    import sys

    code = (
        "from assistant.policy import PolicyEngine\n"
        "PolicyEngine.load()\n"
        "import re2\n"
        "for i in range(100):\n"
        "    re2.compile(r'gitops-health:\\s*ignore\\[([A-Za-z0-9_,\\s-]*)\\]([^\\n]*)' + str(i)).search('x')\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout.strip()) == (0, "ok"), proc.stderr[-500:]


def test_a_repeated_input_is_answered_from_the_memo_and_a_new_one_is_evaluated(tmp_path: Path) -> None:
    engine = PolicyEngine.load(copy_bundled(tmp_path))
    secret = [finding("hardcoded-secret", "high", line=3)]
    first = evaluate(engine, secret)
    assert first.decision == "deny"
    evaluate(engine, secret).violations[0].reason = "changed by a caller"  # answers are copies, not shared
    assert evaluate(engine, secret) == first
    assert evaluate(engine, [finding("hardcoded-secret", "high", line=9)]).violations[0].reason != first.violations[0].reason
    assert evaluate(engine).decision == "allow"
    for n in range(MEMO_SIZE + 5):  # the memo stays bounded
        evaluate(engine, [finding("weak-crypto", "low", line=n + 1)])
    assert len(engine._memo or {}) == MEMO_SIZE


def test_a_policy_that_reads_the_clock_is_evaluated_every_time(tmp_path: Path) -> None:
    directory = copy_bundled(tmp_path)
    (directory / "window.rego").write_text(
        "package gitops.review\n\nimport rego.v1\n\n"
        'review contains {"rule": "odd-second", "reason": "odd"} if (time.now_ns() / 1000000000) % 2 == 1\n'
    )
    engine = PolicyEngine.load(directory)
    assert engine._memo is None
    evaluate(engine)  # evaluates without error
