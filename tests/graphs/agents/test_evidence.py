"""build_evidence: the control matrix of one reviewed diff, as the review graph's last node returns it."""

from __future__ import annotations

from assistant.diffs import parse_diff
from assistant.domain import ClinicalSafety, Finding, PolicyResult, RequiredApproval, Risk, Suppression
from graphs.agents.evidence import build_evidence
from graphs.result import FileSummary

DIFF = """\
diff --git a/svc/api.py b/svc/api.py
--- a/svc/api.py
+++ b/svc/api.py
@@ -1,2 +1,3 @@
 import logging
+logging.info("ssn %s", patient.ssn)
 x = 1
diff --git a/tests/test_api.py b/tests/test_api.py
new file mode 100644
--- /dev/null
+++ b/tests/test_api.py
@@ -0,0 +1 @@
+def test_x(): pass
"""

LOG = Finding(category="phi-exposure-log", severity="high", file="svc/api.py", line=2, rule="PHI-LOG-001",
              message="PHI in a log", regulations=["HIPAA 164.312(b)"])


def rows(evidence: dict) -> dict[str, dict]:
    return {row["id"]: row for row in evidence["controls"]}


def test_findings_become_gaps_and_the_rest_is_satisfied_or_not_applicable() -> None:
    ev = build_evidence(parse_diff(DIFF), [LOG], [], ClinicalSafety(), Risk(score=40, level="medium"),
                        PolicyResult(decision="allow"))
    by_id = rows(ev)
    assert by_id["HIPAA-164.312(b)"]["status"] == "gap"
    assert by_id["HIPAA-164.312(b)"]["gaps"] == [{
        "commit": None, "category": "phi-exposure-log", "severity": "high", "file": "svc/api.py", "line": 2,
        "rule": "PHI-LOG-001", "message": "PHI in a log", "regulations": ["HIPAA 164.312(b)"],
    }]
    assert by_id["HIPAA-164.312(e)"]["status"] == "satisfied"
    assert by_id["21CFR11-11.50"]["status"] == "not-applicable"  # no commit, nothing signed yet
    assert {"kind": "tests-changed", "commit": None, "files": ["tests/test_api.py"]} in by_id["IEC62304-5"]["evidence"]
    assert ev["summary"] == {"satisfied": 9, "gap": 1, "not-applicable": 1}


def test_required_approvals_are_pending_gaps_for_change_management() -> None:
    policy = PolicyResult(decision="review", required_approvals=[RequiredApproval(role="approver", count=1)])
    by_id = rows(build_evidence(parse_diff(DIFF), [], [], ClinicalSafety(), Risk(score=10, level="low"), policy))
    assert by_id["SOC2-CC8.1"]["gaps"] == [{"commit": None, "reason": "approval required (approver x1); pending"}]
    assert by_id["SOX-ITGC-CM"]["status"] == "gap"


def test_suppressions_are_reported_under_their_control() -> None:
    sup = Suppression(rule="PHI-LOG-001", file="svc/api.py", line=2, reason="fake data", finding=LOG)
    by_id = rows(build_evidence(parse_diff(DIFF), [], [sup], ClinicalSafety(), Risk(score=0, level="low"),
                                PolicyResult(decision="allow")))
    assert by_id["HIPAA-164.312(b)"]["suppressions"] == [{
        "commit": None, "rule": "PHI-LOG-001", "file": "svc/api.py", "line": 2, "reason": "fake data",
        "category": "phi-exposure-log",
    }]
    assert by_id["HIPAA-164.312(b)"]["status"] == "satisfied"


def test_file_summaries_work_as_well_as_parsed_files() -> None:
    args = ([LOG], [], ClinicalSafety(), Risk(score=40, level="medium"), PolicyResult(decision="allow"))
    summaries = [FileSummary(path="svc/api.py", status="modified", added=1, removed=0),
                 FileSummary(path="tests/test_api.py", status="added", added=1, removed=0)]
    assert build_evidence(summaries, *args) == build_evidence(parse_diff(DIFF), *args)


def test_an_empty_diff_has_nothing_applicable() -> None:
    ev = build_evidence([], [], [], ClinicalSafety(), Risk(score=0, level="low"), PolicyResult(decision="allow"))
    assert {row["status"] for row in ev["controls"]} == {"not-applicable"}
