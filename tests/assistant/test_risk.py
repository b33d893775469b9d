"""The risk score: explained (factors sum to the score), deterministic, bounded, and ordered by what matters."""

from __future__ import annotations

import pytest

from assistant.domain import ClinicalSafety, Finding
from assistant.risk import level_for, score


def finding(category: str = "injection", severity: str = "high", file: str = "svc/api.py", line: int = 10) -> Finding:
    return Finding(category=category, severity=severity, file=file, line=line, rule="T-001", message="m")  # type: ignore[arg-type]


SAFE = ClinicalSafety()


def test_a_clean_change_scores_zero_and_low() -> None:
    risk = score([], SAFE)
    assert (risk.score, risk.level, risk.factors) == (0, "low", [])


def test_factors_sum_to_the_score() -> None:
    findings = [finding("injection", "high"), finding("weak-crypto", "medium", line=30), finding("phi-exposure-log", "critical")]
    clinical = ClinicalSafety(safety_critical=True, iec62304_class="C", tests_changed=False, touched_units=["pump/dose.py"])
    risk = score(findings, clinical, "production", "infusion-pump-controller")
    total = sum(f.points for f in risk.factors)
    assert risk.score == min(100, total)
    names = [f.name for f in risk.factors]
    assert names == [
        "phi-exposure-log",
        "injection",
        "weak-crypto",
        "safety-critical-change",
        "safety-change-without-tests",
        "iec62304-class-c",
        "production",
        "device-service",
    ]
    assert all(f.detail for f in risk.factors)


def test_severity_orders_the_score() -> None:
    by_severity = [score([finding(severity=s)], SAFE).score for s in ("low", "medium", "high", "critical")]
    assert by_severity == sorted(by_severity) and len(set(by_severity)) == 4
    assert score([finding(severity="critical")], SAFE).level == "high"
    assert score([finding(severity="high")], SAFE).level == "medium"


def test_findings_have_diminishing_returns_but_more_still_counts() -> None:
    one = score([finding(line=1)], SAFE).score
    two = score([finding(line=1), finding(line=50)], SAFE).score
    many = score([finding(line=i * 10) for i in range(1, 40)], SAFE).score
    assert one < two < many
    assert two - one < one  # the second adds less than the first
    assert many < 100  # high findings alone never reach the cap: a critical issue must be something else


def test_safety_critical_without_tests_scores_more_than_with_tests() -> None:
    with_tests = score([], ClinicalSafety(safety_critical=True, iec62304_class="C", tests_changed=True))
    without = score([], ClinicalSafety(safety_critical=True, iec62304_class="C", tests_changed=False, touched_units=["dose.py"]))
    assert without.score > with_tests.score
    assert any(f.name == "safety-change-without-tests" and "dose.py" in f.detail for f in without.factors)


@pytest.mark.parametrize("env", ["production", "PROD", " prd ", "live"])
def test_production_environment_adds_points(env: str) -> None:
    assert score([], SAFE, env).score > score([], SAFE, "staging").score == 0


def test_score_is_capped_at_100_and_critical() -> None:
    findings = [finding(severity="critical", line=i * 10) for i in range(1, 20)]
    clinical = ClinicalSafety(safety_critical=True, iec62304_class="C")
    risk = score(findings, clinical, "production", "insulin-pump")
    assert risk.score == 100 and risk.level == "critical"


def test_same_input_same_score_whatever_the_order() -> None:
    findings = [finding("injection", "high", line=5), finding("weak-crypto", "medium", line=9), finding("injection", "low", line=40)]
    assert score(findings, SAFE) == score(list(reversed(findings)), SAFE)


@pytest.mark.parametrize(("points", "level"), [(0, "low"), (24, "low"), (25, "medium"), (49, "medium"), (50, "high"), (74, "high"), (75, "critical"), (100, "critical")])
def test_levels(points: int, level: str) -> None:
    assert level_for(points) == level


def test_a_safety_critical_change_is_not_counted_twice() -> None:
    clinical = ClinicalSafety(safety_critical=True, iec62304_class="C", tests_changed=True)
    safety_finding = finding("clinical-safety", "high", "pump/dose.py", 6)
    risk = score([safety_finding], clinical)
    assert [f.name for f in risk.factors] == ["safety-critical-change", "iec62304-class-c"]
    # a clinical-safety finding without a safety-critical verdict still counts
    assert score([safety_finding], ClinicalSafety()).factors[0].name == "clinical-safety"
