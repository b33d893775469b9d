"""The summary agent: the few sentences a tech lead reads first about one review.

The deterministic draft is the product. It is built from the structured result
alone (what changed, the most serious findings and where, the clinical-safety
verdict and class, the risk level and its main factors, the policy decision
and the approvals it requires), with no LLM and in a few microseconds, because
the server reviews every deploy request.

An LLM, when configured, may only re-word that draft. It sees the draft, the
facts and an excerpt of the added code masked by `assistant.llm.masked_excerpt`
(string literals, comments, long numbers, dates and runs of capitalised words
removed) and then redacted, because `redact` only knows labelled names and
dates and a test fixture's `"Rosa Delgado"` carries no label. Its answer is
cleaned of markup and of mentions that would ping a channel, redacted again,
and refused (giving the deterministic draft) when it is too long or claims a
decision, risk level, score, safety class, approval or finding the facts do
not hold (graphs/agents/summary_llm.py, imported only with a model). Nothing
the model writes reaches a finding, the risk, a trailer or a decision: this
agent returns prose only.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from assistant.domain import SEVERITY_ORDER, ClinicalSafety, Finding, PolicyResult, Risk

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel
    from langgraph.runtime import Runtime

    from assistant.diffs import FileDiff
    from graphs.result import FileSummary

__all__ = ["DraftedSummary", "MAX_CHARS", "deterministic_summary", "node", "summarize"]

MAX_CHARS = 1000  # a model's answer longer than this after cleaning is refused, not cut (a cut could drop the decision)
MAX_SENTENCES = 6
LLM_TIMEOUT_S = 20.0
EXCERPT_BUDGET = 3000  # characters of masked added code sent to the model

DECISION_WORDS = {"allow": "allow", "review": "review required", "deny": "deny"}


@dataclass(frozen=True, slots=True)
class DraftedSummary:
    text: str
    drafted_by: str  # "rules", or "llm:<provider>" when the model's wording passed every check


# --------------------------------------------------------------------------- the deterministic draft


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _change_sentence(files: Sequence[FileSummary]) -> str:
    if not files:
        return "An empty change: nothing to review."
    if len(files) == 1:
        f = files[0]
        if f.binary:
            counts = "binary"
        elif f.status == "added":
            counts = f"+{f.added}"
        elif f.status == "deleted":
            counts = f"-{f.removed}"
        else:
            counts = f"+{f.added} -{f.removed}"
        if f.status == "renamed" and f.old_path:
            return f"Renames {f.old_path} to {f.path} ({counts})."
        verb = {"added": "Adds", "deleted": "Deletes"}.get(f.status, "Modifies")
        return f"{verb} {f.path} ({counts})."
    added = removed = 0
    for f in files:
        added += f.added
        removed += f.removed
    top = heapq.nlargest(2, files, key=lambda f: f.added + f.removed)
    rest = len(files) - len(top)
    names = " and ".join(f.path for f in top) if not rest else f"{top[0].path}, {top[1].path} and {rest} more"
    return f"Changes {len(files)} files (+{added} -{removed}), mostly {names}."


_SEVERITY_OF = attrgetter("severity")


def _finding_key(f: Finding) -> tuple[int, str, int, str]:
    return (-SEVERITY_ORDER[f.severity], f.file, f.line, f.rule)


def _findings_sentence(findings: Sequence[Finding]) -> str:
    if not findings:
        return "The reviewer found no problems."
    if len(findings) == 1:
        f = findings[0]
        return f"1 finding: {f.rule} ({f.category}, {f.severity}) at {f.file}:{f.line}."
    counted = Counter(map(_SEVERITY_OF, findings))
    counts = {s: counted[s] for s in ("critical", "high", "medium", "low") if counted[s]}
    by_severity = ", ".join(f"{n} {s}" for s, n in counts.items())
    # The first two of the worst severity in the reviewer's order (file, line, rule): no sort, as the server
    # summarises every review and a large diff can carry thousands of findings.
    worst: list[Finding] = []
    for severity in counts:
        worst += islice((f for f in findings if f.severity == severity), 2 - len(worst))
        if len(worst) == 2:
            break
    where = " and ".join(f"{f.rule} ({f.category}, {f.severity}) at {f.file}:{f.line}" for f in worst)
    return f"{len(findings)} findings ({by_severity}); the most serious: {where}."


def _clinical_sentence(cs: ClinicalSafety) -> str:
    if not cs.safety_critical:
        return f"Clinical safety: not safety-critical, IEC 62304 class {cs.iec62304_class}."
    if cs.tests_changed:
        tests = "with test changes"
    else:
        units = ", ".join(cs.touched_units[:3])
        tests = f"with no test changes for {units}" if units else "with no test changes"
    return f"Clinical safety: safety-critical, IEC 62304 class {cs.iec62304_class}, {tests}."


def _risk_sentence(risk: Risk) -> str:
    if not risk.factors:
        return f"Risk {risk.level} ({risk.score}/100), no risk factors."
    main = heapq.nlargest(3, risk.factors, key=lambda x: x.points)
    parts = [f"{x.name} (+{x.points})" for x in main]
    factors = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"Risk {risk.level} ({risk.score}/100), mainly {factors}."


def _approvals(policy: PolicyResult) -> str:
    parts = [_plural(a.count, a.role) for a in policy.required_approvals]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _policy_sentence(policy: PolicyResult) -> str:
    word = DECISION_WORDS[policy.decision]
    if policy.decision == "deny":
        rules = ", ".join(v.rule for v in policy.violations[:3])
        because = f" ({rules})" if rules else ""
        return f"Policy decision: {word}{because}; it cannot be deployed as it is."
    if policy.required_approvals:
        return f"Policy decision: {word}; it needs approval from {_approvals(policy)}."
    return f"Policy decision: {word}; no approvals required."


def deterministic_summary(
    files: Sequence[FileSummary],
    findings: Sequence[Finding],
    clinical: ClinicalSafety,
    risk: Risk,
    policy: PolicyResult,
) -> str:
    """Five sentences from the structured result: change, findings, clinical safety, risk, decision."""
    return " ".join(
        (
            _change_sentence(files),
            _findings_sentence(findings),
            _clinical_sentence(clinical),
            _risk_sentence(risk),
            _policy_sentence(policy),
        )
    )


# --------------------------------------------------------------------------- the agent


def summarize(
    files: Sequence[FileSummary],
    findings: Sequence[Finding],
    clinical: ClinicalSafety,
    risk: Risk,
    policy: PolicyResult,
    *,
    sample: Sequence[FileDiff] = (),
    llm: BaseChatModel | None = None,
    timeout_s: float = LLM_TIMEOUT_S,
) -> DraftedSummary:
    """The review's summary: the deterministic draft, or the model's re-wording of it when that passes every check.

    Never raises for the model's sake: a timeout, an error, an empty or
    refused answer all give the deterministic draft, marked "rules".
    """
    rules_text = deterministic_summary(files, findings, clinical, risk, policy)
    if llm is None:
        return DraftedSummary(rules_text, "rules")

    from assistant.llm import draft, masked_excerpt, provider_name
    from graphs.agents.summary_llm import SYSTEM, accept_llm_summary, facts_of, prompt_for

    try:
        facts = facts_of(files, findings, clinical, risk, policy)
        prompt = prompt_for(rules_text, facts, masked_excerpt(sample, EXCERPT_BUDGET), risk, policy)
        answer = draft(llm, prompt, fallback="", timeout_s=timeout_s, system=SYSTEM)
        accepted = accept_llm_summary(answer, findings, clinical, risk, policy) if answer else None
        by = f"llm:{provider_name(llm)}"
    except Exception:  # noqa: BLE001 - the optional path must never cost the review its summary
        return DraftedSummary(rules_text, "rules")
    return DraftedSummary(rules_text, "rules") if accepted is None else DraftedSummary(accepted, by)


def node(state: Mapping[str, Any], runtime: Runtime[Any]) -> dict[str, Any]:
    """The graph's `summary` node: runs beside the commit writer, so the diff sample is still there."""
    drafted = summarize(
        state["files"],
        state["findings"],
        state["clinical_safety"],
        state["risk"],
        state["policy"],
        sample=state.get("sample") or (),
        llm=runtime.context.llm if getattr(runtime.context, "summary_llm", True) else None,
    )
    return {"review_summary": drafted}
