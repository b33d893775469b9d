"""The clinical-safety validator: what changed, IEC 62304 class with reasons, and whether tests came along."""

from __future__ import annotations

import io

from assistant.clinical import assess, combine, scan_file
from assistant.diffs import iter_file_diffs, parse_diff
from assistant.review._structure import udiff

DOSE_CHANGE = udiff(
    "cds/dosing/acetaminophen.py",
    ' SINGLE_DOSE_MG_PER_KG = Decimal("15")',
    '-MAX_DAILY_MG_PER_KG = Decimal("75")',
    '+MAX_DAILY_MG_PER_KG = Decimal("90")',
    start=4,
)
DOSE_TESTS = udiff(
    "tests/cds/dosing/test_acetaminophen.py",
    " from cds.dosing.acetaminophen import max_daily_mg",
    "+def test_max_daily_is_capped():",
    '+    assert max_daily_mg(Decimal("80")) == Decimal("4000")',
)


def test_a_dose_limit_change_without_tests_is_class_c_and_says_why():
    verdict = assess(parse_diff(DOSE_CHANGE))
    assert verdict.safety_critical is True
    assert verdict.iec62304_class == "C"
    assert verdict.tests_changed is False
    assert "acetaminophen" in verdict.touched_units
    assert any("cds/dosing/acetaminophen.py:5" in n and "dose" in n and "MAX_DAILY_MG_PER_KG" in n for n in verdict.notes)
    assert any("no tests" in n for n in verdict.notes)


def test_tests_touching_the_same_module_count_as_tests_changed():
    verdict = assess(parse_diff(DOSE_CHANGE + DOSE_TESTS))
    assert verdict.iec62304_class == "C" and verdict.tests_changed is True


def test_a_decision_rule_threshold_is_class_b():
    diff = udiff("cds/sepsis/qsofa.py", "-QSOFA_ESCALATION_SCORE = 2", "+QSOFA_ESCALATION_SCORE = 3")
    verdict = assess(parse_diff(diff))
    assert verdict.safety_critical and verdict.iec62304_class == "B"
    assert any("decision rule" in n for n in verdict.notes)


def test_alarm_suppression_is_class_c():
    diff = udiff("bedside/alarms/evaluator.py", "     def evaluate(self, patient, reading):",
                 "+        if patient.comfort_care_only:", "+            return []", "         events = []")
    verdict = assess(parse_diff(diff))
    assert verdict.iec62304_class == "C"
    assert any("alarm" in n for n in verdict.notes)


def test_non_clinical_change_is_class_a_and_not_safety_critical():
    diff = udiff("portal/branding.py", '-LOGO = "old.png"', '+LOGO = "new.png"')
    verdict = assess(parse_diff(diff))
    assert (verdict.safety_critical, verdict.iec62304_class, verdict.notes) == (False, "A", [])


def test_test_only_change_is_not_safety_critical_but_reports_tests():
    verdict = assess(parse_diff(DOSE_TESTS))
    assert verdict.safety_critical is False and verdict.iec62304_class == "A"
    assert verdict.tests_changed is True


def test_scans_keep_no_line_text_and_streaming_gives_the_same_verdict():
    files = parse_diff(DOSE_CHANGE + DOSE_TESTS)
    scans = [scan_file(f) for f in files]
    assert 'Decimal("90")' not in repr(scans)
    streamed = combine(scan_file(f) for f in iter_file_diffs(io.BytesIO((DOSE_CHANGE + DOSE_TESTS).encode())))
    assert streamed == assess(files)


def test_reviewer_findings_outside_the_scans_still_mark_the_change_clinical():
    from assistant.domain import Finding

    extra = Finding(category="clinical-safety", severity="high", file="cds/x.py", line=3, rule="SAFE-999",
                    message="m", regulations=[])
    verdict = combine([], [extra])
    assert verdict.safety_critical and verdict.iec62304_class == "B"
    assert any("cds/x.py:3" in n for n in verdict.notes)
