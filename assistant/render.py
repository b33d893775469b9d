"""A review result as JSON (the contract), Markdown (pull-request comments) or text (terminals).

Markdown goes to places many people read (a PR thread), so its free text
passes through `redact`: a rule message that quoted a line must not carry a
patient identifier there. JSON is the machine contract and is left exact.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Literal

from assistant.domain import SEVERITY_ORDER

if TYPE_CHECKING:
    from graphs.result import ReviewResult

Format = Literal["json", "markdown", "text"]
FORMATS: tuple[str, ...] = ("json", "markdown", "text")

_DECISION_WORDS = {"allow": "ALLOW", "review": "REVIEW REQUIRED", "deny": "DENY"}
_SEVERITY_MARK = {"critical": "🛑", "high": "🔴", "medium": "🟠", "low": "🟡"}


class UnknownFormat(ValueError):
    pass


def render(result: ReviewResult, fmt: str) -> str:
    """The whole output as one string (ending in a newline), so a caller prints it at once or not at all."""
    if fmt == "json":
        return to_json(result)
    if fmt == "markdown":
        return to_markdown(result)
    if fmt == "text":
        return to_text(result)
    raise UnknownFormat(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def to_json(result: ReviewResult) -> str:
    return json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def _ordered(result: ReviewResult) -> list:
    return sorted(result.findings, key=lambda f: (-SEVERITY_ORDER[f.severity], f.file, f.line, f.rule))


def _drafted_by(result: ReviewResult) -> str:
    """An AI-worded summary says so: the reader weighs it against the rule-based lines around it."""
    by = result.summary.drafted_by
    return "" if by == "rules" else f" (drafted by {by})"


def _cell(text: str) -> str:
    from assistant.redact import redact

    return redact(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def to_markdown(result: ReviewResult) -> str:
    from assistant.redact import redact

    p = result.policy
    risk = result.risk
    cs = result.clinical_safety
    out: list[str] = ["## gitops-health review", ""]
    out.append(
        f"**Decision: {_DECISION_WORDS[p.decision]}** · risk **{risk.score}/100 ({risk.level})** · "
        f"{len(result.findings)} finding{'s' if len(result.findings) != 1 else ''} · "
        f"{result.summary.files} file{'s' if result.summary.files != 1 else ''}, "
        f"+{result.summary.added_lines} −{result.summary.removed_lines}"
    )
    out.append("")
    if result.summary.text:
        out += [redact(result.summary.text) + _drafted_by(result), ""]
    if p.required_approvals:
        roles = ", ".join(f"{a.count} × `{a.role}`" for a in p.required_approvals)
        out += [f"**Required approvals:** {roles}", ""]
    if p.violations:
        out.append("### Policy")
        out.append("")
        for v in p.violations:
            out.append(f"- `{v.rule}`: {_cell(v.reason)}")
        out.append("")
    out.append("### Findings")
    out.append("")
    if result.findings:
        out.append("| | Severity | Rule | Where | Problem and fix | Regulations |")
        out.append("|---|---|---|---|---|---|")
        for f in _ordered(result):
            out.append(
                f"| {_SEVERITY_MARK[f.severity]} | {f.severity} | `{f.rule}` | `{_cell(f.file)}:{f.line}` | "
                f"{_cell(f.message)} | {_cell(', '.join(f.regulations))} |"
            )
    else:
        out.append("No findings.")
    out.append("")
    if result.suppressions:
        out.append("<details><summary>Suppressed findings</summary>")
        out.append("")
        for s in result.suppressions:
            out.append(f"- `{s.rule}` at `{_cell(s.file)}:{s.line}`: {_cell(s.reason) or '(no reason given)'}")
        out += ["", "</details>", ""]
    out.append("### Risk")
    out.append("")
    if risk.factors:
        out.append("| Factor | Points | Why |")
        out.append("|---|---:|---|")
        for factor in risk.factors:
            out.append(f"| {factor.name} | +{factor.points} | {_cell(factor.detail)} |")
    else:
        out.append("No risk factors.")
    out.append("")
    out.append("### Clinical safety")
    out.append("")
    verdict = "safety-critical" if cs.safety_critical else "not safety-critical"
    tests = "tests changed" if cs.tests_changed else "no tests changed"
    out.append(f"{verdict.capitalize()}, IEC 62304 class **{cs.iec62304_class}**, {tests}.")
    for note in cs.notes:
        out.append(f"- {_cell(note)}")
    out.append("")
    out.append("### Commit message")
    out.append("")
    fence = "````" if "```" in result.commit_message else "```"
    out += [fence, redact(result.commit_message).rstrip("\n"), fence, ""]
    return "\n".join(out)


def to_text(result: ReviewResult) -> str:
    p = result.policy
    risk = result.risk
    cs = result.clinical_safety
    out: list[str] = []
    out.append(f"Decision: {_DECISION_WORDS[p.decision]}")
    if result.summary.text:
        out.append(f"Summary:  {result.summary.text}{_drafted_by(result)}")
    out.append(f"Risk:     {risk.score}/100 ({risk.level})")
    for factor in risk.factors:
        out.append(f"          +{factor.points:<3} {factor.name}: {factor.detail}")
    verdict = "safety-critical" if cs.safety_critical else "not safety-critical"
    tests = "tests changed" if cs.tests_changed else "no tests changed"
    out.append(f"Clinical: {verdict}, IEC 62304 class {cs.iec62304_class}, {tests}")
    for note in cs.notes:
        out.append(f"          - {note}")
    if p.required_approvals:
        out.append("Approvals: " + ", ".join(f"{a.count} x {a.role}" for a in p.required_approvals))
    for v in p.violations:
        out.append(f"Policy:   [{v.rule}] {v.reason}")
    s = result.summary
    out.append(f"Files:    {s.files} (+{s.added_lines} -{s.removed_lines})")
    out.append("")
    if result.findings:
        out.append(f"Findings ({len(result.findings)}):")
        for f in _ordered(result):
            regs = f" [{', '.join(f.regulations)}]" if f.regulations else ""
            out.append(f"  {f.severity.upper():<8} {f.file}:{f.line} {f.rule} ({f.category})")
            out.append(f"           {f.message}{regs}")
    else:
        out.append("Findings: none")
    if result.suppressions:
        out.append("")
        out.append(f"Suppressed ({len(result.suppressions)}):")
        for sup in result.suppressions:
            out.append(f"  {sup.file}:{sup.line} {sup.rule}: {sup.reason or '(no reason given)'}")
    out.append("")
    out.append("Commit message:")
    out.extend("  " + line if line else "" for line in result.commit_message.rstrip("\n").split("\n"))
    return "\n".join(out) + "\n"
