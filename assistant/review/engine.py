"""The reviewer's matcher: runs every rule over the added lines of a diff.

Cost is what shapes this module. A diff is mostly ordinary code that no rule
cares about, so each file's added lines are scanned once with one combined
keyword pattern (RE2, linear time); only lines holding some rule's keyword go
on to that rule's own RE2 pattern, and a structural rule (`check`) runs only
on files whose diff mentions one of its keywords -- and parses a hunk with
tree-sitter only when it asks `ctx.syntax(hunk)`.

After matching: findings off added lines are dropped, inline suppressions are
applied, and findings that describe one problem are merged keeping the most
severe (see `_dedupe`).

Suppression: `gitops-health: ignore[RULE-ID, ...] reason` in any comment
style, on the finding's line or the line above, silences those rules there;
the silenced finding goes to `ReviewOutput.suppressions` so the evidence
shows who silenced what and why. A suppression without a reason silences
nothing: the finding stays, and its message says the suppression was ignored
and how to write it. (It is not a finding of its own: no category fits, and
the finding it failed to silence already carries the message.)

Rule gating: one RE2 Set per file says which line rules' patterns occur in
the added text and which structural rules' keywords occur anywhere in the
diff (removed lines included, so "an audit decorator was removed" rules can
fire); only those rules run, and they find candidate lines with `ctx.scan`.

Test files: line rules do not run on test files (tests/, test_*.py, *_test.go,
*.spec.ts, fixtures/...), where fake passwords, MD5 fixtures and string-built
SQL are normal, except the rules listed in `TEST_FILE_RULES` (private keys and
provider-issued credentials, which are real wherever they are committed).
Structural rules always run and decide for themselves with `ctx.is_test`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from assistant.diffs import FileDiff
from assistant.domain import SEVERITY_ORDER, Finding, Suppression
from assistant.review import re2fast as re2
from assistant.review.base import Hit, Rule
from assistant.review.context import FileContext
from assistant.review.vocabulary import PhiVocabulary

# Line rules that also run on test files: a real credential is a leak wherever it lands.
TEST_FILE_RULES: frozenset[str] = frozenset({"SEC-001", "SEC-002"})

DEDUPE_WINDOW = 2

_SUPPRESS_RE = re2.compile(r"gitops-health:\s*ignore\[([A-Za-z0-9_,\s-]*)\]([^\n]*)")
_COMMENT_END_RE = re2.compile(r"\s*(\*/|-->|#\})\s*$")


class RuleDefinitionError(ValueError):
    """A rule that cannot run: no pattern and no check, or a pattern RE2 rejects."""


@dataclass
class ReviewOutput:
    """Findings (sorted by file, line, rule) and the suppressions that silenced others.

    While files are still being reviewed one at a time, it also carries the facts they established
    (`Rule.facts`) and the findings waiting on one (`pending`: (fact, finding), from a Hit with
    `unless_fact`); `settle` decides those once every file is in.
    """

    findings: list[Finding] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)
    facts: set[str] = field(default_factory=set)
    pending: list[tuple[str, Finding]] = field(default_factory=list)

    def extend(self, other: ReviewOutput) -> None:
        self.findings.extend(other.findings)
        self.suppressions.extend(other.suppressions)
        if other.facts:
            self.facts.update(other.facts)
        if other.pending:
            self.pending.extend(other.pending)

    def settle(self) -> None:
        """Withdraw the pending findings whose fact some file established; the rest become findings,
        merged with their file's others as one file's findings are (`_dedupe`)."""
        pending, self.pending = self.pending, []
        standing = [f for fact, f in pending if fact not in self.facts]
        if not standing:
            return
        files = {f.file for f in standing}
        others = [f for f in self.findings if f.file not in files]
        for path in sorted(files):
            mine = [f for f in self.findings if f.file == path] + [f for f in standing if f.file == path]
            others.extend(sorted(_dedupe(mine), key=lambda f: (f.line, f.rule)))
        self.findings = others


@dataclass(frozen=True)
class _LineRule:
    rule: Rule
    pattern: object  # re2 compiled
    unless: tuple[object, ...]


@dataclass(frozen=True)
class _Compiled:
    line_rules: tuple[_LineRule, ...]
    keyword_re: object | None
    keyless: tuple[_LineRule, ...]
    structural: tuple[Rule, ...]
    # One RE2 Set per stage: a single linear pass over a file says which rules can fire at all.
    line_set: object | None = None  # over the added text, one entry per line rule (its pattern)
    struct_set: object | None = None  # over the whole diff text, lowercased: one entry per keyworded structural rule
    struct_index: tuple[int, ...] = ()  # Set entry -> index into `structural`


_CACHE: dict[int, tuple[Sequence[Rule], _Compiled]] = {}


def _compile(rules: Sequence[Rule]) -> _Compiled:
    cached = _CACHE.get(id(rules))
    if cached is not None and cached[0] is rules:
        return cached[1]
    line_rules: list[_LineRule] = []
    keyless: list[_LineRule] = []
    structural: list[Rule] = []
    keywords: set[str] = set()
    for rule in rules:
        if rule.check is not None:
            structural.append(rule)
            continue
        if rule.pattern is None:
            raise RuleDefinitionError(f"rule {rule.id} has neither a pattern nor a check; give it one of them")
        try:
            compiled = _LineRule(rule, re2.compile(rule.pattern), tuple(re2.compile(u) for u in rule.unless))
        except re2.error as exc:
            raise RuleDefinitionError(f"rule {rule.id}: RE2 cannot compile its pattern: {exc}") from None
        if any(k != k.lower() for k in rule.keywords):
            raise RuleDefinitionError(f"rule {rule.id}: keywords must be lowercase (the prefilter lowercases lines)")
        if rule.keywords:
            line_rules.append(compiled)
            keywords.update(rule.keywords)
        else:
            keyless.append(compiled)
    keyword_re = None
    if keywords:
        alternation = "|".join(re2.escape(k) for k in sorted(keywords, key=len, reverse=True))
        keyword_re = re2.compile(alternation)
    all_line = [*line_rules, *keyless]
    line_set = None
    if all_line:
        line_set = re2.Set.SearchSet(_set_options())
        for lr in all_line:
            line_set.Add(f"(?m:{lr.rule.pattern})")
        line_set.Compile()
    struct_set = None
    struct_index: list[int] = []
    if any(r.keywords for r in structural):
        struct_set = re2.Set.SearchSet(_set_options())
        for i, r in enumerate(structural):
            if r.keywords:
                struct_set.Add("|".join(re2.escape(k) for k in r.keywords))
                struct_index.append(i)
        struct_set.Compile()
    result = _Compiled(
        tuple(line_rules), keyword_re, tuple(keyless), tuple(structural), line_set, struct_set, tuple(struct_index)
    )
    _CACHE[id(rules)] = (rules, result)
    return result


def _set_options() -> object:
    options = re2.Options()
    options.max_mem = 256 << 20  # a DFA that runs out of memory would silently match nothing
    return options


def _default_rules() -> Sequence[Rule]:
    from assistant.review.rules import RULES

    return RULES


def review(
    files: Iterable[FileDiff],
    vocabulary: PhiVocabulary | None = None,
    *,
    rules: Sequence[Rule] | None = None,
) -> ReviewOutput:
    """Review every file of a diff; files may be a stream (`iter_file_diffs`), held one at a time."""
    vocab = vocabulary or _default_vocabulary()
    out = ReviewOutput()
    for file in files:
        out.extend(review_file(file, vocab, rules=rules))
    out.settle()
    out.findings.sort(key=lambda f: (f.file, f.line, f.rule))
    out.suppressions.sort(key=lambda s: (s.file, s.line, s.rule))
    return out


_VOCAB: list[PhiVocabulary] = []


def _default_vocabulary() -> PhiVocabulary:
    if not _VOCAB:
        _VOCAB.append(PhiVocabulary.default())
    return _VOCAB[0]


def review_file(
    file: FileDiff,
    vocabulary: PhiVocabulary | None = None,
    *,
    rules: Sequence[Rule] | None = None,
) -> ReviewOutput:
    """Review one file: the unit of streaming."""
    if file.binary or file.status == "deleted" or not file.hunks:
        return ReviewOutput()
    compiled = _compile(rules if rules is not None else _default_rules())
    ctx = FileContext(file, vocabulary or _default_vocabulary())
    raw: list[Finding] = []
    raw.extend(_line_findings(ctx, compiled))
    waiting: dict[int, str] = {}  # id(finding) -> the fact that would withdraw it
    facts: set[str] = set()
    raw.extend(_structural_findings(ctx, compiled, waiting, facts))
    if not raw:
        return ReviewOutput(facts=facts) if facts else ReviewOutput()
    findings, suppressions = _apply_suppressions(ctx, raw)
    pending: list[tuple[str, Finding]] = []
    if waiting:
        pending = [(waiting[id(f)], f) for f in findings if id(f) in waiting]
        findings = [f for f in findings if id(f) not in waiting]
    findings = _dedupe(findings)
    findings.sort(key=lambda f: (f.line, f.rule))
    return ReviewOutput(findings, suppressions, facts, pending)


def _applies(rule: Rule, ctx: FileContext) -> bool:
    if rule.languages is not None and ctx.language not in rule.languages:
        return False
    return True


def _finding(rule: Rule, ctx: FileContext, line: int, message: str | None = None) -> Finding:
    return Finding(
        category=rule.category,
        severity=rule.severity,
        file=ctx.path,
        line=line,
        rule=rule.id,
        message=message or rule.message,
        regulations=list(rule.regulations),
    )


def _line_findings(ctx: FileContext, compiled: _Compiled) -> Iterator[Finding]:
    added = ctx.added
    if not added or compiled.line_set is None:
        return
    all_line = (*compiled.line_rules, *compiled.keyless)
    text = "\n".join(ln.text for ln in added)
    hits = compiled.line_set.Match(text)  # type: ignore[attr-defined]
    if not hits:
        return
    in_test = ctx.is_test
    for index in sorted(hits):
        lr = all_line[index]
        rule = lr.rule
        if not _applies(rule, ctx) or (in_test and rule.id not in TEST_FILE_RULES):
            continue
        # Each line on its own (`lines_matching`): a match cannot start on one line and hide the next.
        matching = ctx.lines_matching(rule.pattern)  # type: ignore[arg-type]
        for ln in ctx.added_in(matching):
            if rule.keywords:
                low = ln.text.lower()
                if not any(k in low for k in rule.keywords):
                    continue
            if _matches(lr, ln.text):
                yield _finding(rule, ctx, ln.new_no or 1)


def _matches(lr: _LineRule, text: str) -> bool:
    if lr.pattern.search(text) is None:  # type: ignore[attr-defined]
        return False
    return not any(u.search(text) is not None for u in lr.unless)  # type: ignore[attr-defined]


def _structural_findings(
    ctx: FileContext, compiled: _Compiled, waiting: dict[int, str], facts: set[str]
) -> Iterator[Finding]:
    """Findings of the structural rules the file's keywords gate in; a finding waiting on a fact is
    also recorded in `waiting`, and the rules' facts about the file go to `facts`."""
    if not compiled.structural:
        return
    runnable = [i for i, r in enumerate(compiled.structural) if not r.keywords]
    if compiled.struct_set is not None:
        hits = compiled.struct_set.Match(_gate_text(ctx))  # type: ignore[attr-defined]
        runnable.extend(compiled.struct_index[k] for k in hits or ())
    numbers = ctx.added_numbers
    for i in sorted(runnable):
        rule = compiled.structural[i]
        if not _applies(rule, ctx):
            continue
        if rule.facts is not None:
            facts.update(rule.facts(ctx))
        for hit in rule.check(ctx):  # type: ignore[misc]
            if not isinstance(hit, Hit):
                raise RuleDefinitionError(f"rule {rule.id}: check must yield Hit values, got {type(hit).__name__}")
            if hit.line in numbers:
                finding = _finding(rule, ctx, hit.line, hit.message)
                if hit.unless_fact is not None:
                    waiting[id(finding)] = hit.unless_fact
                yield finding


def _gate_text(ctx: FileContext) -> str | bytes:
    """Every line of the file's diff, its hunk headers and its path, lowercased, for the keyword gate: the
    post-image's lowercased bytes the context already holds, when they, the removed lines and the rest
    are ASCII (where `bytes.lower` is `str.lower`); the lines' order does not matter to keywords, none
    spans lines. (A header is git's line of context above the hunk -- the enclosing function, or an
    import like `from ..audit import audit_event` -- which rules read too.)"""
    hunks = ctx.file.hunks
    post = ctx.post_bytes_lower
    rest = "\n".join([*(ln.text for h in hunks for ln in h.lines if ln.kind == "-"), *(h.header for h in hunks if h.header),
                      ctx.path])
    if post is not None and rest.isascii():
        return post + b"\n" + rest.lower().encode("ascii")
    return "\n".join(ln.text for h in hunks for ln in h.lines).lower() + "\n" + rest.lower()


def _suppression_on(text: str) -> tuple[set[str], str] | None:
    m = _SUPPRESS_RE.search(text)
    if m is None:
        return None
    ids = {part.strip().upper() for part in m.group(1).split(",") if part.strip()}
    reason = _COMMENT_END_RE.sub("", m.group(2)).strip(" \t-:;")
    return ids, reason


def _apply_suppressions(ctx: FileContext, findings: list[Finding]) -> tuple[list[Finding], list[Suppression]]:
    """Silence findings under a reasoned inline suppression; a reasonless one silences nothing and says so."""
    kept: list[Finding] = []
    suppressions: list[Suppression] = []
    for f in findings:
        silenced = False
        for number in (f.line, f.line - 1):
            ln = ctx.new_line(number)
            if ln is None or "gitops-health" not in ln.text:
                continue
            parsed = _suppression_on(ln.text)
            if parsed is None or f.rule.upper() not in parsed[0]:
                continue
            ids, reason = parsed
            if reason:
                suppressions.append(Suppression(rule=f.rule, file=f.file, line=f.line, reason=reason, finding=f))
                silenced = True
            else:
                f = f.model_copy(
                    update={
                        "message": f.message
                        + f" (The inline suppression of {f.rule} on line {number} was ignored because it gives no "
                        "reason: write `gitops-health: ignore[" + f.rule + "] <why this is safe>`.)"
                    }
                )
            break
        if not silenced:
            kept.append(f)
    return kept, suppressions


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per problem: merge findings of one category on the same line, or within
    DEDUPE_WINDOW lines when the same rule fired (a statement over two or three lines), keeping
    the most severe. Different rules on different lines are different problems and stay apart, and
    so do hardcoded-secret findings on different lines: each line holding a literal is its own leak.
    """
    kept: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.category, f.line, -SEVERITY_ORDER[f.severity], f.rule)):
        merged = False
        for k in range(len(kept) - 1, -1, -1):
            g = kept[k]
            if g.category != f.category or f.line - g.line > DEDUPE_WINDOW:
                if g.category != f.category:
                    break
                continue
            same_line = g.line == f.line
            if same_line or (g.rule == f.rule and f.category != "hardcoded-secret"):
                if SEVERITY_ORDER[f.severity] > SEVERITY_ORDER[g.severity]:
                    kept[k] = f
                merged = True
                break
        if not merged:
            kept.append(f)
    return kept
