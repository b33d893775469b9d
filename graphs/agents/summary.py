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
dates and a test fixture's `"Rosa Delgado"` carries no label. Its answer is cleaned of markup
and mentions that would ping a channel, redacted again, and rejected (giving
the deterministic draft) when it is too long or claims a decision, risk level,
score, safety class, approval or finding the facts do not hold. Nothing the
model writes reaches a finding, the risk, a trailer or a decision: this agent
returns prose only.
"""

from __future__ import annotations

import heapq
import html
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
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

__all__ = ["DraftedSummary", "MAX_CHARS", "accept_llm_summary", "deterministic_summary", "node", "summarize"]

MAX_CHARS = 1000  # an answer longer than this after cleaning is refused, not cut (a cut could drop the decision)
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


# --------------------------------------------------------------------------- what the model may see

def _facts(
    files: Sequence[FileSummary],
    findings: Sequence[Finding],
    clinical: ClinicalSafety,
    risk: Risk,
    policy: PolicyResult,
) -> str:
    from assistant.llm import mask_text

    out = [f"files changed: {len(files)}"]
    for f in files[:20]:
        out.append(f"- {f.path}: {f.status} (+{f.added} -{f.removed})")
    out.append(f"findings: {len(findings)}")
    for f in heapq.nsmallest(10, findings, key=_finding_key):
        out.append(f"- {f.severity} {f.category} {f.rule} at {f.file}:{f.line}")
    out.append(
        f"clinical safety: {'safety-critical' if clinical.safety_critical else 'not safety-critical'}, "
        f"IEC 62304 class {clinical.iec62304_class}, tests changed: {'yes' if clinical.tests_changed else 'no'}"
    )
    for note in clinical.notes[:5]:
        out.append(f"- {mask_text(note)}")
    out.append(f"risk: {risk.level}, score {risk.score}/100")
    for x in risk.factors:
        out.append(f"- {x.name} (+{x.points}): {mask_text(x.detail)}")
    out.append(f"policy decision: {DECISION_WORDS[policy.decision]}")
    for a in policy.required_approvals:
        out.append(f"- required approval: {_plural(a.count, a.role)}")
    for v in policy.violations:
        out.append(f"- violation {v.rule}: {mask_text(v.reason)}")
    return "\n".join(out)


_SYSTEM = (
    "You write the short summary a tech lead reads first about one automated code review "
    "in a regulated healthcare team. You only re-word facts you are given; you never decide anything."
)


def _prompt(draft_text: str, facts: str, excerpt: str, risk: Risk, policy: PolicyResult) -> str:
    return (
        "Rewrite the draft summary below as 2 to 5 plain sentences for a reviewer: what changed, the most serious "
        "findings and where, the clinical-safety verdict and IEC 62304 class, the risk level and its main factors, "
        "and the policy decision with the approvals it requires.\n"
        f"Rules: at most {MAX_CHARS} characters; plain text only (no markdown, lists, links, code or @-mentions); "
        "use only the facts given; never change or add a finding, rule id, risk level, score, safety class, "
        f"approval or decision; say that the policy decision is '{DECISION_WORDS[policy.decision]}' and that the "
        f"risk is {risk.level} ({risk.score}/100); do not quote code or data values.\n\n"
        f"Draft:\n{draft_text}\n\nFacts:\n{facts}\n\nAdded code (masked excerpt):\n{excerpt}\n"
    )


# --------------------------------------------------------------------------- what the model may say

_ANGLE = re.compile(r"</?[A-Za-z!@#][^<>\n]{0,200}>")  # HTML tags, Slack <!channel>/<@U123>/<#C1>, Teams <at>
_BROADCAST = re.compile(r"(?i)(?:^|(?<=[\s(\[{,;:]))[@!](?:here|channel|everyone|all|group|team|room)\b")
_MENTION = re.compile(r"(?:^|(?<=[\s(\[{,;:]))@(?=[A-Za-z0-9_])")
_LINK = re.compile(r"!?\[([^\]\n]{0,200})\]\([^)\n]{0,500}\)")
_URL = re.compile(r"(?i)\b(?:https?|ftp|file|mailto|slack|msteams)://\S+|\bwww\.\S+")
_LINE_MARKUP = re.compile(r"(?m)^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-*+•][ \t]+|\d{1,2}[.)][ \t]+)")
_INLINE_MARKUP = re.compile(r"\*\*|~~|`+|\*(?=\S)|(?<=\S)\*|(?<!\S)#{1,6}(?=\s)")
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


def _clean(text: str) -> str:
    """Plain prose: no markup, links, mentions or invisible characters."""
    text = "".join(c for c in html.unescape(text) if c in "\n\t" or unicodedata.category(c) not in ("Cf", "Cc"))
    text = text.replace("```", "\n")
    text = _ANGLE.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _URL.sub("", text)
    text = _BROADCAST.sub("", text)
    text = _MENTION.sub("", text)
    text = _LINE_MARKUP.sub("", text)
    text = _INLINE_MARKUP.sub("", text)
    text = text.replace("<", "").replace(">", "")
    return _SPACE.sub(" ", text).strip()


_NEGATED = re.compile(r"(?i)\b(?:not|no|never|without)\s+(?:\w+\s+)?$")
_DECISION_CLAIMS: dict[str, re.Pattern[str]] = {
    "allow": re.compile(
        r"(?i)\ballow(?:s|ed)?\b|\b(?:is|was|been|already|auto-?)\s*approved\b|(?:^|[.!?;:]\s*)approved\b"
        r"|\bsafe\s+to\s+(?:merge|deploy|ship|release)\b|\bgood\s+to\s+go\b|\blgtm\b"
        r"|\bno\s+approvals?\s+(?:is\s+|are\s+)?(?:needed|required)\b|\b(?:can|may)\s+(?:be\s+)?(?:merged|deployed|shipped)\b"
    ),
    "review": re.compile(
        r"(?i)\breview(?:\s+is)?\s+required\b|\b(?:requires?|needs?)\s+(?:a\s+)?(?:human\s+|manual\s+)?review\b"
        r"|\bpending\s+(?:review|approval)\b|\b(?:requires?|needs?)\s+(?:\w+\s+)?approvals?\b"
        r"|\bdecision\s*(?:is\s+|was\s+|[:=\-–—]\s*)?[\"'“]?review\b"
    ),
    "deny": re.compile(
        r"(?i)\bden(?:y|ies|ied)\b|\bblock(?:s|ed|ing)?\b|\breject(?:s|ed)?\b"
        r"|\b(?:must|should|can)\s*not\s+(?:be\s+)?(?:merged|deployed|shipped)\b|\bcannot\s+(?:be\s+)?(?:merged|deployed)\b"
    ),
}
_LEVEL_WORDS = {"low": "low", "minimal": "low", "medium": "medium", "moderate": "medium", "high": "high",
                "critical": "critical", "severe": "critical", "elevated": "?", "significant": "?"}
_LEVEL = r"(low|minimal|medium|moderate|high|critical|severe|elevated|significant)"
_RISK_LEVEL_CLAIMS = (
    re.compile(r"(?i)\b" + _LEVEL + r"[\s-]+risk\b"),
    re.compile(r"(?i)\brisk(?:\s+(?:level|score|rating))?(?:\s+(?:is|was|of|at|rated|stays|remains|assessed|scored|considered|as))*\s*[:=\-–—]?\s*"
               r"(?:\d{1,3}\s*/\s*100\s*)?\(?\s*" + _LEVEL + r"\b"),
)
_SCORE_CLAIMS = (
    re.compile(r"\b(\d{1,3})\s*/\s*100\b"),
    re.compile(r"(?i)\bscore\s*(?:of|is|was|:|=)?\s*(\d{1,3})\b"),
)
_CLASS_CLAIM = re.compile(r"(?i)\bclass\s+([ABC])\b")
_SAFETY_CRITICAL = re.compile(r"(?i)\b(?:(not|non)[\s-]+)?safety[\s-]critical\b")
_NO_FINDINGS = re.compile(r"(?i)\bno\s+(?:\w+\s+)?(?:findings|issues|problems|vulnerabilities|concerns)\b|\bclean\s+(?:change|diff|review)\b")
_RULE_ID = re.compile(r"\b[A-Z][A-Z0-9]{1,9}(?:-[A-Z0-9]{2,10})*-\d{3}\b")
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "a": 1, "an": 1}


def _claims(pattern: re.Pattern[str], text: str) -> Iterable[re.Match[str]]:
    """Matches of `pattern` that are not negated just before ("not allowed", "no review required")."""
    for m in pattern.finditer(text):
        if not _NEGATED.search(text, max(0, m.start() - 24), m.start()):
            yield m


def accept_llm_summary(
    text: str,
    findings: Sequence[Finding],
    clinical: ClinicalSafety,
    risk: Risk,
    policy: PolicyResult,
) -> str | None:
    """The model's summary cleaned and redacted, or None when it is empty, too long or contradicts the facts."""
    from assistant.redact import redact

    if len(text) > 4 * MAX_CHARS:
        return None
    cleaned = redact(_clean(text))
    if not cleaned or len(cleaned) > MAX_CHARS or len(_SENTENCE_END.findall(cleaned)) > MAX_SENTENCES:
        return None
    # The decision: stated, and no other one claimed.
    if not any(True for _ in _claims(_DECISION_CLAIMS[policy.decision], cleaned)):
        return None
    for decision, pattern in _DECISION_CLAIMS.items():
        if decision != policy.decision and any(True for _ in _claims(pattern, cleaned)):
            return None
    # The risk level: stated, and never another; any score given is ours.
    levels = {_LEVEL_WORDS[m.group(1).lower()] for p in _RISK_LEVEL_CLAIMS for m in p.finditer(cleaned)}
    if levels != {risk.level}:
        return None
    if any(int(m.group(1)) != risk.score for p in _SCORE_CLAIMS for m in p.finditer(cleaned)):
        return None
    # The clinical verdict and class, when mentioned.
    if any(m.group(1).upper() != clinical.iec62304_class for m in _CLASS_CLAIM.finditer(cleaned)):
        return None
    for m in _SAFETY_CRITICAL.finditer(cleaned):
        if bool(m.group(1)) == clinical.safety_critical:
            return None
    # Findings: none denied, none invented.
    if findings and _NO_FINDINGS.search(cleaned):
        return None
    rules = {f.rule for f in findings} | {v.rule for v in policy.violations}
    if any(m.group(0) not in rules for m in _RULE_ID.finditer(cleaned)):
        return None
    # Approvals: on review, every required role named; a count given for a role is its count.
    for approval in policy.required_approvals:
        role = r"[\s-]+".join(map(re.escape, re.split(r"[\s_-]+", approval.role)))
        if policy.decision == "review" and not re.search(r"(?i)\b" + role, cleaned):
            return None
        for m in re.finditer(r"(?i)\b(\d+|one|two|three|four|five|an?)\s+(?:more\s+|additional\s+)?" + role, cleaned):
            word = m.group(1).lower()
            if (int(word) if word.isdigit() else _NUMBER_WORDS[word]) != approval.count:
                return None
    return cleaned


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

    try:
        facts = _facts(files, findings, clinical, risk, policy)
        prompt = _prompt(rules_text, facts, masked_excerpt(sample, EXCERPT_BUDGET), risk, policy)
        answer = draft(llm, prompt, fallback="", timeout_s=timeout_s, system=_SYSTEM)
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
        llm=runtime.context.llm,
    )
    return {"review_summary": drafted}
