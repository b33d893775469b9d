"""The evidence agent: the control matrix for one reviewed diff (the last node of the review graph).

The commit-range bundle (`gitops-health evidence`) and this single-diff view
share `assistant.evidence.control_matrix`, so a control reads the same
whether an auditor looks at one pull request or a release.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from assistant.domain import ClinicalSafety, Finding, PolicyResult, Risk, Suppression
from assistant.evidence import ChangeRecord, control_matrix, file_entries

__all__ = ["build_evidence"]


def build_evidence(
    files: Iterable[Any],
    findings: Sequence[Finding],
    suppressions: Sequence[Suppression],
    clinical: ClinicalSafety,
    risk: Risk,
    policy: PolicyResult,
) -> dict[str, Any]:
    """{"controls": [...], "summary": {...}} for one diff.

    `files` may be assistant.diffs.FileDiff objects or the review's
    FileSummary objects (anything with path, status and added/removed).
    Controls that need commit metadata (21 CFR 11.50 signatures) are
    not-applicable here; approvals the policy requires are gaps until given.
    """
    record = ChangeRecord(
        id="diff",
        files=file_entries(files),
        findings=sorted(findings, key=lambda f: (f.file, f.line, f.rule)),
        suppressions=list(suppressions),
        clinical=clinical,
        risk=risk,
        policy=policy,
    )
    controls = control_matrix([record])
    return {
        "controls": controls,
        "summary": {s: sum(1 for c in controls if c["status"] == s) for s in ("satisfied", "gap", "not-applicable")},
    }
