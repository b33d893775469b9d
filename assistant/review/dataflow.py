"""Which local names hold a patient record or a PHI value, within one hunk.

A hunk is all the reviewer sees of a function, so "flow" here is deliberately
shallow: `p = encounter.patient`, `for p in cohort.patients`,
`Patient p = repo.get(id)`, `patient := load(id)`, a parameter typed
`Patient`, and `text = f"... {p.full_name} ..."` (a PHI-bearing string bound
to a name that a sink later receives). That is enough to connect a log or chat
call to the record it leaks without a whole-program analysis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistant.diffs import DiffLine, Hunk
from assistant.review import re2fast as re2
from assistant.review.lexing import Chain, Masked, balanced_span, chains, line_at, mask
from assistant.review.vocabulary import PhiVocabulary, _hint_word, split_words

_ASSIGN_RE = re2.compile(
    r"^\s*(?:(?:const|let|var|val|final|auto|private|public|protected|static|readonly)\s+)*"
    r"(?:[A-Za-z_][\w.<>\[\],?]*\s+)?([A-Za-z_]\w*)\s*(?::\s*[\w.\[\]|<>, ]+?)?\s*(?::=|=)(?:[^=]|$)"
)
_FOR_RE = re2.compile(
    r"\bfor\s*\(?\s*(?:const|let|var|final)?\s*(?:[A-Z][\w<>]*\s+)?([A-Za-z_]\w*)\s+(?:in|of|:)\s+([^\n]+)"
)
_FOREACH_RE = re2.compile(r"\bforeach\s*\(\s*(?:var|[\w<>]+)\s+([A-Za-z_]\w*)\s+in\s+([^\n]+)")
_RANGE_RE = re2.compile(r"\bfor\s+(?:[A-Za-z_]\w*\s*,\s*)?([A-Za-z_]\w*)\s*:?=\s*range\s+([^\n]+)")
_TYPED_RE = re2.compile(r"\b([A-Z][A-Za-z0-9_]*)(?:<[^>]*>)?\s+\*?([a-z_][A-Za-z0-9_]*)\s*[=;,)]")
_ANNOT_RE = re2.compile(r"\b([a-z_][A-Za-z0-9_]*)\s*:\s*\*?(?:[\w.]+\.)?([A-Z][A-Za-z0-9_]*)\b")
_GO_PARAM_RE = re2.compile(r"[(,]\s*([a-z_][A-Za-z0-9_]*)\s+\*?(?:\w+\.)?([A-Z][A-Za-z0-9_]*)\s*[,)]")
_COUNTING = ("len(", "count(", "sum(", ".count(", ".size()", ".length", "Count(", "len ")


@dataclass
class HunkFlow:
    record_vars: set[str] = field(default_factory=set)
    phi_vars: dict[str, list[int]] = field(default_factory=dict)  # name -> new-file lines holding the PHI


def _mentions_record(text: str, vocab: PhiVocabulary, pre: tuple[Masked, list[Chain]] | None = None) -> bool:
    if any(c in text for c in _COUNTING):
        return False
    if not may_name_record(text, vocab):
        return False
    for ch in (pre[1] if pre is not None else chains(mask(text).masked)):
        segs = ch.segments
        for k, seg in enumerate(segs):
            if vocab.is_record(seg):
                rest = [w for s in segs[k + 1:] for w in split_words(s)]
                if not any(w in vocab.neutral for w in rest):
                    return True
    return False


def may_name_record(text: str, vocab: PhiVocabulary) -> bool:
    """A necessary condition for `vocab.is_record` of any identifier in `text`: a record word in it.

    `is_record` asks for a record word among an identifier's (lowercase) words, and those words are
    pieces of the identifier, so the lowercased text holds the record word: a substring test per word
    decides "no record here" without masking or splitting the text.
    """
    low = text.lower()
    return any(w in low for w in vocab.record_words)


def may_hold_phi(text: str, vocab: PhiVocabulary, names: set[str] | frozenset[str] = frozenset()) -> bool:
    """A necessary condition for `phi_chains(text, vocab, names, {})` to yield anything.

    A chain yields only if its words hold a PHI term (then the text holds the term's hint word, see
    `PhiVocabulary.hint_words`), name a record (a record word), or are one of `names`; a string key
    only if it names a PHI term. Substring tests, so no tokenizing: it may say yes wrongly, never no.
    """
    if any(n in text for n in names):
        return True
    return _hint_words_re(vocab).search(text.lower()) is not None


_HINT_WORDS: dict[int, tuple[PhiVocabulary, object]] = {}


def _hint_words_re(vocab: PhiVocabulary) -> object:
    found = _HINT_WORDS.get(id(vocab))
    if found is None or found[0] is not vocab:
        words = {_hint_word(term) for term in vocab.terms} | set(vocab.record_words)
        regex = re2.compile("|".join(re2.escape(w) for w in sorted(words, key=len, reverse=True)))
        found = (vocab, regex)
        _HINT_WORDS[id(vocab)] = found
    return found[1]


def hunk_flow(
    hunk: Hunk,
    vocab: PhiVocabulary,
    post: list[DiffLine] | None = None,
    hints: frozenset[int] | None = None,
    lo: int = 0,
    hi: int | None = None,
) -> HunkFlow:
    """Names bound to patient records and to PHI values in this hunk's post-image (and its header).

    `hints` (new-file numbers of lines that may mention PHI at all) lets lines that cannot bind
    anything be skipped without a regex.
    """
    post = post if post is not None else [ln for ln in hunk.lines if ln.kind != "-"]
    hi = len(post) if hi is None else min(hi, len(post))
    flow = HunkFlow()
    candidates = [ln for ln in post[lo:hi] if hints is None or ln.new_no in hints]
    texts = [hunk.header] + [ln.text for ln in candidates]
    records = vocab.record_words
    for text in texts:
        # Every binding below asks `is_record` of a piece of the line: no record word, nothing to bind.
        low = text.lower()
        if not any(w in low for w in records):
            continue
        if (text != low) if text.isascii() else any(c.isupper() for c in text):
            for regex in (_TYPED_RE, _GO_PARAM_RE):
                for m in regex.finditer(text):
                    type_name, var = m.group(1), m.group(2)
                    if vocab.is_record(type_name):
                        flow.record_vars.add(var)
            if ":" in text:
                for m in _ANNOT_RE.finditer(text):
                    if vocab.is_record(m.group(2)):
                        flow.record_vars.add(m.group(1))
        if "for" in text:
            for regex in (_FOR_RE, _FOREACH_RE, _RANGE_RE):
                m = regex.search(text)
                if m and _mentions_record(m.group(2), vocab):
                    flow.record_vars.add(m.group(1))
    for i in range(lo, hi):
        ln = post[i]
        if hints is not None and ln.new_no not in hints and not ln.text.rstrip().endswith(("(", "[", "{")):
            continue
        if "=" not in ln.text:
            continue
        m = _ASSIGN_RE.search(ln.text)
        if not m:
            continue
        var = m.group(1)
        rhs_start = m.end(0) - (0 if m.group(0).endswith(("=",)) else 1)
        rhs = ln.text[rhs_start:].strip()
        if rhs.startswith(("(", "[", "{")) and not rhs.endswith((")", "]", "}", ");", "];", "};")):
            col = ln.text.index(rhs[0], rhs_start)
            span, starts = balanced_span(post, i, col, max_lines=8)
        else:
            span, starts = rhs, [0]
            col = 0
        if not may_hold_phi(span, vocab, flow.record_vars):
            continue  # binds neither a record (that needs a record word) nor a PHI value
        rhs_m = mask(span)
        pre = (rhs_m, chains(rhs_m.masked))
        if _mentions_record(span, vocab, pre) and vocab.phi_in_chain([var], flow.record_vars) is None:
            # `p = encounter.patient`, but not `name = patient.name` (that is a PHI value, below)
            rhs_chains = pre[1]
            if rhs_chains and all(
                vocab.phi_in_chain(c.segments, flow.record_vars) in (None, "patient record") for c in rhs_chains
            ):
                flow.record_vars.add(var)
                continue
        lines = phi_lines_in(span, starts, post, i, vocab, flow.record_vars, pre=pre)
        if lines:
            flow.phi_vars[var] = lines
    return flow


def phi_lines_in(
    span: str,
    starts: list[int],
    post: list[DiffLine],
    first: int,
    vocab: PhiVocabulary,
    record_vars: set[str],
    phi_vars: dict[str, list[int]] | None = None,
    skip_before: int = 0,
    pre: tuple[Masked, list[Chain]] | None = None,
) -> list[int]:
    """New-file lines within `span` (post[first:] joined) where a PHI expression appears.

    `pre`: `span` already masked and split into chains (`mask`, `chains`), when the caller has them.
    """
    from assistant.review.phiexpr import phi_chains

    out: list[int] = []
    for offset, _what in phi_chains(span, vocab, record_vars, phi_vars or {}, skip_before, pre=pre):
        idx = first + line_at(starts, offset)
        if idx < len(post):
            no = post[idx].new_no
            if no is not None and no not in out:
                out.append(no)
    return out
