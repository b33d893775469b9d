"""What the summary agent's model may see and what it may say; imported only when an LLM is configured.

See: the deterministic draft, the structured facts and a masked excerpt of the
added code (`assistant.llm.masked_excerpt`); everything is redacted again by
`assistant.llm.draft` on its way out.

Say: 2-5 sentences of plain prose. `accept_llm_summary` cleans the answer
(markup, links, and the mentions that would ping a channel: `<!channel>`,
`@here`, `<@U123>`, Teams `<at>`), redacts it, and refuses it when it is too
long or claims anything the facts do not hold: another decision, risk level,
score or IEC 62304 class, a safety verdict turned round, no findings when
there are some, a rule id that is not among them, or approvals that differ.
The guard errs on refusing: a refused answer costs only the model's wording.
Kept apart from summary.py so a review without a model never compiles these
patterns (they are most of a module's import time).
"""

from __future__ import annotations

import heapq
import html
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from assistant.domain import ClinicalSafety, Finding, PolicyResult, Risk
from graphs.agents.summary import DECISION_WORDS, MAX_CHARS, MAX_SENTENCES, _finding_key, _plural

if TYPE_CHECKING:
    from graphs.result import FileSummary

__all__ = ["SYSTEM", "accept_llm_summary", "facts_of", "prompt_for"]


# --------------------------------------------------------------------------- what the model may see

def facts_of(
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


SYSTEM = (
    "You write the short summary a tech lead reads first about one automated code review "
    "in a regulated healthcare team. You only re-word facts you are given; you never decide anything."
)


def prompt_for(draft_text: str, facts: str, excerpt: str, risk: Risk, policy: PolicyResult) -> str:
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
