"""The control matrix and the evidence bundle an auditor receives.

A change set (a commit range, or one diff) is turned into one row per control
(HIPAA 164.312(a)-(e), 21 CFR 11.10(e) and 11.50, IEC 62304 §5 and §8, SOC 2
CC8.1, SOX change management) with a status, the evidence for it and the gaps
against it. Everything here is a pure function of the reviewed records, so
the same commits always give the same bytes: no wall-clock time, no absolute
paths, sorted keys, and findings in a fixed order. Commit subjects pass
through `redact` because a bundle leaves the core.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.domain import SEVERITY_ORDER, ClinicalSafety, Finding, PolicyResult, Risk, Suppression
from assistant.evidence_report import render_markdown
from assistant.filekinds import is_test, kind_of
from assistant.redact import redact

if TYPE_CHECKING:  # the commit-range bundle's type; a review never loads git helpers
    from assistant.gitrepo import Commit

__all__ = [
    "CONTROLS",
    "SCHEMA",
    "ChangeRecord",
    "Control",
    "FileEntry",
    "build_bundle",
    "canonical_json",
    "control_matrix",
    "write_bundle",
]

SCHEMA = "gitops-health/evidence/v1"
STATUSES = ("satisfied", "gap", "not-applicable")
APPROVAL_TRAILERS = ("approved-by", "reviewed-by", "acked-by")
_CHANGE_REF = re.compile(r"\b[A-Z][A-Z0-9]{1,9}-\d+\b|(?:^|\s)#\d+\b|\b(?:refs?|fixes|closes|resolves)\b[: ]+\S+", re.I)


@dataclass(frozen=True, slots=True)
class Control:
    id: str
    framework: str
    citation: str
    title: str
    categories: frozenset[str]  # finding categories that are gaps against it
    refs: tuple[str, ...]  # substrings of a finding's regulations that map it here
    scope: str  # "code": when source code changed; "software": anything but docs; "commits": commits; "changes": any


CONTROLS: tuple[Control, ...] = (
    Control("HIPAA-164.312(a)", "HIPAA", "45 CFR 164.312(a)", "Access control",
            frozenset({"access-control", "unencrypted-phi-storage"}), ("164.312(a)",), "code"),
    Control("HIPAA-164.312(b)", "HIPAA", "45 CFR 164.312(b)", "Audit controls",
            frozenset({"missing-audit", "phi-exposure-log"}), ("164.312(b)",), "code"),
    Control("HIPAA-164.312(c)", "HIPAA", "45 CFR 164.312(c)", "Integrity",
            frozenset({"injection"}), ("164.312(c)",), "code"),
    Control("HIPAA-164.312(d)", "HIPAA", "45 CFR 164.312(d)", "Person or entity authentication",
            frozenset({"hardcoded-secret"}), ("164.312(d)",), "code"),
    Control("HIPAA-164.312(e)", "HIPAA", "45 CFR 164.312(e)", "Transmission security",
            frozenset({"insecure-transport", "weak-crypto"}), ("164.312(e)",), "code"),
    Control("21CFR11-11.10(e)", "21 CFR Part 11", "21 CFR 11.10(e)", "Audit trails",
            frozenset({"missing-audit"}), ("11.10(e)",), "code"),
    Control("21CFR11-11.50", "21 CFR Part 11", "21 CFR 11.50", "Signature manifestations",
            frozenset(), ("11.50",), "commits"),
    Control("IEC62304-5", "IEC 62304", "IEC 62304 §5", "Software development process",
            frozenset({"clinical-safety"}), ("62304 §5", "62304 5"), "code"),
    Control("IEC62304-8", "IEC 62304", "IEC 62304 §8", "Software configuration management and change control",
            frozenset(), ("62304 §8", "62304 8"), "changes"),
    Control("SOC2-CC8.1", "SOC 2", "SOC 2 CC8.1", "Change management",
            frozenset(), ("CC8.1",), "changes"),
    Control("SOX-ITGC-CM", "SOX", "SOX ITGC change management", "Change management (segregation of duties)",
            frozenset(), ("SOX",), "software"),
)


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str
    status: str
    added: int
    removed: int


@dataclass(slots=True)
class ChangeRecord:
    """One reviewed change: a commit of the range, or the single diff of a review."""

    id: str  # the commit sha, or "diff"
    files: list[FileEntry]
    findings: list[Finding]
    suppressions: list[Suppression]
    clinical: ClinicalSafety
    risk: Risk
    policy: PolicyResult
    commit: Commit | None = None
    tests_changed: list[str] = field(default_factory=list)
    merge_of: list[str] = field(default_factory=list)  # a merge whose branch commits were reviewed on their own
    merged_by: list[tuple[str, str]] = field(default_factory=list)  # (merge sha, merger e-mail) that brought it in

    def __post_init__(self) -> None:
        if not self.tests_changed:
            self.tests_changed = sorted(f.path for f in self.files if is_test(f.path) and f.status != "deleted")

    @property
    def changes_code(self) -> bool:
        return "code" in _kinds(self.files)

    @property
    def changes_software(self) -> bool:
        """Anything but documentation: code, tests, build and pipeline files all reach production."""
        return bool(_kinds(self.files) - {"docs"})


def _kinds(files: Sequence[FileEntry]) -> frozenset[str]:
    return frozenset(kind_of(f.path) for f in files)


def file_entries(files: Iterable[Any]) -> list[FileEntry]:
    """FileEntry for FileDiff (counting lines) or anything with path/status/added/removed (FileSummary)."""
    out = []
    for f in files:
        if hasattr(f, "added_lines"):
            added = sum(1 for _ in f.added_lines())
            removed = sum(1 for _ in f.removed_lines())
        else:
            added, removed = int(getattr(f, "added", 0)), int(getattr(f, "removed", 0))
        out.append(FileEntry(path=f.path, status=str(f.status), added=added, removed=removed))
    return sorted(out, key=lambda e: e.path)


# --------------------------------------------------------------------------- the matrix


def _maps(control: Control, finding: Finding) -> bool:
    if finding.category in control.categories:
        return True
    return any(ref in reg for reg in finding.regulations for ref in control.refs)


def _finding_gap(record: ChangeRecord, f: Finding) -> dict[str, Any]:
    return {
        "commit": record.commit.sha if record.commit else None,
        "category": f.category,
        "severity": f.severity,
        "file": f.file,
        "line": f.line,
        "rule": f.rule,
        "message": f.message,
        "regulations": sorted(f.regulations),
    }


def _process_gap(record: ChangeRecord, reason: str) -> dict[str, Any]:
    return {"commit": record.commit.sha if record.commit else None, "reason": reason}


def _suppression_entry(record: ChangeRecord, s: Suppression) -> dict[str, Any]:
    return {
        "commit": record.commit.sha if record.commit else None,
        "rule": s.rule,
        "file": s.file,
        "line": s.line,
        "reason": s.reason,
        "category": s.finding.category if s.finding else None,
    }


def _approvers(commit: Commit) -> list[tuple[str, str]]:
    """(trailer, person) for every approval trailer given by someone other than the author."""
    out = []
    for key, value in commit.trailers:
        if key.lower() in APPROVAL_TRAILERS:
            if commit.author_email and commit.author_email.lower() in value.lower():
                continue  # approving one's own change is not an approval
            out.append((key, value))
    return sorted(set(out))


def _signed_off(commit: Commit) -> list[str]:
    return sorted(set(commit.trailer_values("Signed-off-by")))


_SIGNATURE_WORDS = {"G": "good", "U": "good, untrusted key", "X": "good, expired signature", "Y": "good, expired key",
                    "R": "good, revoked key", "B": "bad", "E": "cannot be checked", "N": "none"}


def _applies(control: Control, records: Sequence[ChangeRecord]) -> bool:
    if not records:
        return False
    if control.scope == "commits":
        return any(r.commit is not None for r in records)
    if control.scope == "code":
        return any(r.changes_code for r in records) or any(_maps(control, f) for r in records for f in r.findings)
    if control.scope == "software":
        return any(r.changes_software for r in records)
    return any(r.files or r.commit is not None for r in records)


def _process(control: Control, record: ChangeRecord) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Evidence and gaps that come from how a change was made rather than from findings."""
    evidence: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    sha = record.commit.sha if record.commit else None
    commit = record.commit

    if record.merge_of and control.id not in ("SOC2-CC8.1", "SOX-ITGC-CM"):
        return evidence, gaps  # a merge adds no change of its own: its branch commits carry the evidence

    if control.id == "21CFR11-11.50" and commit is not None:
        signed_off = _signed_off(commit)
        for person in signed_off:
            evidence.append({"kind": "signed-off", "commit": sha, "by": person})
        if commit.signature != "N":
            evidence.append({"kind": "signature", "commit": sha, "status": _SIGNATURE_WORDS.get(commit.signature, commit.signature)})
        if commit.signature == "B":
            gaps.append(_process_gap(record, "the commit's cryptographic signature is bad"))
        elif not signed_off and commit.signature not in ("G", "U", "X", "Y", "R"):
            gaps.append(_process_gap(record, "no Signed-off-by trailer and no signature: the change carries no signer's name"))

    elif control.id == "IEC62304-5":
        if record.tests_changed:
            evidence.append({"kind": "tests-changed", "commit": sha, "files": record.tests_changed})
        if record.clinical.safety_critical:
            evidence.append({"kind": "safety-classification", "commit": sha, "class": record.clinical.iec62304_class,
                             "notes": list(record.clinical.notes)})
            if not record.tests_changed and not record.clinical.tests_changed:
                gaps.append(_process_gap(record, f"safety-critical change (class {record.clinical.iec62304_class}) "
                                                 "without a change to its tests"))

    elif control.id == "IEC62304-8":
        if commit is not None:
            text = f"{commit.subject}\n{commit.body}"
            refs = sorted({m.group(0).strip() for m in _CHANGE_REF.finditer(text)})
            if refs:
                evidence.append({"kind": "change-reference", "commit": sha, "refs": refs})
            if record.clinical.iec62304_class in ("B", "C") and not refs:
                gaps.append(_process_gap(record, f"class {record.clinical.iec62304_class} change without a change-request "
                                                 "reference (e.g. PUMP-123 or #123) in its message"))

    elif control.id == "SOC2-CC8.1":
        if record.merge_of:
            evidence.append({"kind": "merge", "commit": sha, "merged": record.merge_of})
            return evidence, gaps
        evidence.append({"kind": "policy", "commit": sha, "decision": record.policy.decision,
                         "risk": f"{record.risk.level} ({record.risk.score})"})
        required = sum(a.count for a in record.policy.required_approvals)
        approvals = _approvers(commit) if commit is not None else []
        for key, person in approvals:
            evidence.append({"kind": "approval", "commit": sha, "trailer": key, "by": person})
        if record.policy.decision == "deny":
            reasons = "; ".join(v.reason for v in record.policy.violations) or "see the policy violations"
            gaps.append(_process_gap(record, f"the policy denies this change: {reasons}"))
        elif required and len(approvals) < required:
            roles = ", ".join(f"{a.role} x{a.count}" for a in record.policy.required_approvals)
            have = f"{len(approvals)} recorded" if commit is not None else "pending"
            gaps.append(_process_gap(record, f"approval required ({roles}); {have}"))

    elif control.id == "SOX-ITGC-CM" and record.changes_software:
        if commit is None:
            if record.policy.required_approvals:
                roles = ", ".join(f"{a.role} x{a.count}" for a in record.policy.required_approvals)
                gaps.append(_process_gap(record, f"independent approval required ({roles}); pending"))
        else:
            approvals = _approvers(commit)
            for key, person in approvals:
                evidence.append({"kind": "approval", "commit": sha, "trailer": key, "by": person})
            independent = commit.committer_email.lower() != commit.author_email.lower()
            if independent:
                evidence.append({"kind": "independent-committer", "commit": sha,
                                 "author": commit.author_email, "committer": commit.committer_email})
            for merge, merger in record.merged_by:
                if merger.lower() != commit.author_email.lower():
                    evidence.append({"kind": "merged-by", "commit": sha, "merge": merge, "by": merger})
                    independent = True
            if not approvals and not independent:
                gaps.append(_process_gap(record, "no independent approval: no Approved-by/Reviewed-by trailer from "
                                                 "another person and the author committed it"))
    return evidence, gaps


def _gap_key(g: dict[str, Any]) -> tuple[Any, ...]:
    return (g.get("commit") or "", g.get("file") or "", g.get("line") or 0, g.get("rule") or "", g.get("reason") or "")


def control_matrix(records: Sequence[ChangeRecord], order: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per control: status, evidence for it, gaps against it, suppressions reported under it.

    `order` is the commit order (oldest first) used to sort rows' entries.
    """
    position = {sha: i for i, sha in enumerate(order or [r.id for r in records])}
    # Which controls each finding maps to, worked out once per (category, regulations) instead of per control.
    maps_to: dict[tuple[str, tuple[str, ...]], frozenset[str]] = {}

    def mapped_ids(f: Finding) -> frozenset[str]:
        key = (f.category, tuple(f.regulations))
        ids = maps_to.get(key)
        if ids is None:
            ids = maps_to[key] = frozenset(c.id for c in CONTROLS if _maps(c, f))
        return ids

    rows = []
    for control in CONTROLS:
        evidence: list[dict[str, Any]] = []
        gaps: list[dict[str, Any]] = []
        suppressions: list[dict[str, Any]] = []
        reviewed: list[str] = []
        for record in records:
            gaps.extend(_finding_gap(record, f) for f in record.findings if control.id in mapped_ids(f))
            for s in record.suppressions:
                if s.finding is None or control.id in mapped_ids(s.finding):
                    suppressions.append(_suppression_entry(record, s))
            ev, gp = _process(control, record)
            evidence.extend(ev)
            gaps.extend(gp)
            reviewed.append(record.id)
        applies = _applies(control, records)
        if applies and reviewed:
            cats = ", ".join(sorted(control.categories)) or "process checks"
            evidence.insert(0, {"kind": "review", "commits": reviewed,
                                "detail": f"{len(reviewed)} change(s) reviewed for {cats}"})
        if len(evidence) > 1:
            evidence.sort(key=lambda e: (position.get(e.get("commit") or "", -1), json.dumps(e, sort_keys=True)))
        if len(gaps) > 1:
            gaps.sort(key=lambda g: (position.get(g.get("commit") or "", -1), *_gap_key(g)))
        if len(suppressions) > 1:
            suppressions.sort(key=lambda s: (position.get(s.get("commit") or "", -1), s["file"], s["line"], s["rule"]))
        status = "gap" if gaps else ("satisfied" if applies else "not-applicable")
        rows.append({
            "id": control.id,
            "framework": control.framework,
            "citation": control.citation,
            "title": control.title,
            "status": status,
            "evidence": evidence,
            "gaps": gaps,
            "suppressions": suppressions,
        })
    return rows


# --------------------------------------------------------------------------- the bundle


def _commit_entry(record: ChangeRecord) -> dict[str, Any]:
    c = record.commit
    assert c is not None
    findings = sorted(record.findings, key=lambda f: (f.file, f.line, f.rule))
    return {
        "sha": c.sha,
        "parents": list(c.parents),
        "author": {"name": c.author_name, "email": c.author_email},
        "committer": {"name": c.committer_name, "email": c.committer_email},
        "authored_at": c.authored_at,
        "committed_at": c.committed_at,
        "subject": redact(c.subject),
        "signature": _SIGNATURE_WORDS.get(c.signature, c.signature),
        "trailers": [[k, redact(v)] for k, v in c.trailers],
        "files": [{"path": f.path, "status": f.status, "added": f.added, "removed": f.removed} for f in record.files],
        "tests_changed": record.tests_changed,
        "findings": [f.model_dump(mode="json") for f in findings],
        "suppressions": [_suppression_entry(record, s) for s in sorted(record.suppressions, key=lambda s: (s.file, s.line, s.rule))],
        "clinical_safety": record.clinical.model_dump(mode="json"),
        "risk": record.risk.model_dump(mode="json"),
        "policy": record.policy.model_dump(mode="json"),
        "merge_of": record.merge_of,
    }


def build_bundle(rev: str, records: Sequence[ChangeRecord], *, tool_version: str = "") -> dict[str, Any]:
    """The whole evidence.json document for a commit range."""
    matrix = control_matrix(records)
    findings = [f for r in records for f in r.findings]
    by_severity = {s: sum(1 for f in findings if f.severity == s) for s in sorted(SEVERITY_ORDER, key=SEVERITY_ORDER.get)}
    by_status = {s: sum(1 for row in matrix if row["status"] == s) for s in STATUSES}
    commits = [r.commit for r in records if r.commit is not None]
    return {
        "schema": SCHEMA,
        "tool": {"name": "gitops-health", "version": tool_version},
        "range": {
            "rev": rev,
            "commits": len(records),
            "first": commits[0].sha if commits else None,
            "last": commits[-1].sha if commits else None,
            "from": min((c.committed_at for c in commits), default=None),
            "to": max((c.committed_at for c in commits), default=None),
        },
        "summary": {
            "commits": len(records),
            "findings": len(findings),
            "findings_by_severity": by_severity,
            "suppressions": sum(len(r.suppressions) for r in records),
            "controls": by_status,
            "highest_risk": max((r.risk.score for r in records), default=0),
        },
        "controls": matrix,
        "suppressions": [_suppression_entry(r, s) for r in records for s in sorted(r.suppressions, key=lambda s: (s.file, s.line, s.rule))],
        "commits": [_commit_entry(r) for r in records if r.commit is not None],
    }


def canonical_json(document: Any) -> bytes:
    """Sorted keys, fixed separators, UTF-8, one trailing newline: the same document, the same bytes."""
    return (json.dumps(document, sort_keys=True, ensure_ascii=False, indent=2, separators=(",", ": ")) + "\n").encode("utf-8")


def write_bundle(bundle: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write evidence.json, evidence.md and SHA256SUMS (sha256sum's format) into `out_dir`."""
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    files = {"evidence.json": canonical_json(bundle), "evidence.md": render_markdown(bundle).encode("utf-8")}
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(files.items()))
    files["SHA256SUMS"] = sums.encode("ascii")
    written = []
    for name, data in files.items():
        path = directory / name
        tmp = directory / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(path)
        written.append(path)
    return written
