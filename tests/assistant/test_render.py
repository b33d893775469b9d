"""Rendering a review: JSON is the contract's shape, Markdown is a PR comment, text is for terminals."""

from __future__ import annotations

import json

import pytest

from assistant.domain import ClinicalSafety, Finding, PolicyResult, RequiredApproval, Risk, RiskFactor, Suppression, Violation
from assistant.render import UnknownFormat, render
from graphs.result import FileSummary, ReviewResult, ReviewSummary


def sample() -> ReviewResult:
    phi = Finding(
        category="phi-exposure-log",
        severity="high",
        file="svc/api.py",
        line=42,
        rule="PHI-LOG-001",
        message="patient SSN 123-45-6789 logged | use a redacting logger",
        regulations=["HIPAA 164.312(b)"],
    )
    weak = Finding(category="weak-crypto", severity="medium", file="svc/crypto.py", line=3, rule="CRY-001", message="MD5 used")
    return ReviewResult(
        findings=[phi, weak],
        suppressions=[Suppression(rule="SEC-003", file="tests/fixtures.py", line=5, reason="test fixture", finding=None)],
        risk=Risk(score=31, level="medium", factors=[RiskFactor(name="phi-exposure-log", points=25, detail="1 high")]),
        commit_message="feat(api): add visit export\n\nRisk: medium (31)\n",
        clinical_safety=ClinicalSafety(safety_critical=True, iec62304_class="C", notes=["dose calculation changed in pump/dose.py"]),
        policy=PolicyResult(
            decision="review",
            required_approvals=[RequiredApproval(role="approver", count=1)],
            violations=[Violation(rule="serious-finding", reason="svc/api.py:42: high phi-exposure-log finding")],
        ),
        evidence={"controls": [{"id": "HIPAA 164.312(b)", "status": "gap"}]},
        files=[FileSummary(path="svc/api.py", status="modified", language="python", added=10, removed=2)],
        summary=ReviewSummary(files=1, added_lines=10, removed_lines=2, findings_by_severity={"high": 1, "medium": 1}),
    )


def test_json_has_the_contract_shape() -> None:
    data = json.loads(render(sample(), "json"))
    assert {"findings", "risk", "commit_message", "clinical_safety", "policy", "evidence"} <= set(data)
    assert set(data["findings"][0]) == {"category", "severity", "file", "line", "rule", "message", "regulations"}
    assert data["findings"][0]["line"] == 42
    assert data["risk"]["score"] == 31 and data["risk"]["level"] == "medium"
    assert {"safety_critical", "iec62304_class", "notes"} <= set(data["clinical_safety"])
    assert data["policy"] == {
        "decision": "review",
        "required_approvals": [{"role": "approver", "count": 1}],
        "violations": [{"rule": "serious-finding", "reason": "svc/api.py:42: high phi-exposure-log finding"}],
    }
    assert data["evidence"] == {"controls": [{"id": "HIPAA 164.312(b)", "status": "gap"}]}


def test_markdown_is_a_pr_comment_with_tables_and_no_phi() -> None:
    md = render(sample(), "markdown")
    assert "**Decision: REVIEW REQUIRED**" in md
    assert "| 🔴 | high | `PHI-LOG-001` | `svc/api.py:42` |" in md
    assert "123-45-6789" not in md  # a rule message that quoted PHI is redacted in shared places
    assert "logged \\| use" in md  # a pipe in a message does not break the table
    assert "| phi-exposure-log | +25 | 1 high |" in md
    assert "1 × `approver`" in md
    assert "IEC 62304 class **C**" in md and "dose calculation changed" in md
    assert "```\nfeat(api): add visit export" in md
    assert "`SEC-003` at `tests/fixtures.py:5`: test fixture" in md
    # most severe first
    assert md.index("PHI-LOG-001") < md.index("CRY-001")


def test_text_reads_in_a_terminal() -> None:
    text = render(sample(), "text")
    lines = text.splitlines()
    assert lines[0] == "Decision: REVIEW REQUIRED"
    assert lines[1] == "Risk:     31/100 (medium)"
    assert "  HIGH     svc/api.py:42 PHI-LOG-001 (phi-exposure-log)" in lines
    assert "Approvals: 1 x approver" in lines
    assert "  feat(api): add visit export" in lines
    assert text.endswith("\n")


def test_a_clean_result_renders_in_every_format() -> None:
    clean = ReviewResult(
        risk=Risk(score=0, level="low"),
        commit_message="chore: record an empty change\n",
        clinical_safety=ClinicalSafety(),
        policy=PolicyResult(decision="allow"),
    )
    assert json.loads(render(clean, "json"))["findings"] == []
    assert "No findings." in render(clean, "markdown")
    assert "Findings: none" in render(clean, "text")


def test_unknown_format_is_refused() -> None:
    with pytest.raises(UnknownFormat, match="json, markdown, text"):
        render(sample(), "yaml")
