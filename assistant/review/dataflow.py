"""Which local names hold a patient record or a PHI value, within one hunk.

A hunk is all the reviewer sees of a function, so "flow" here is deliberately
shallow: `p = encounter.patient`, `for p in cohort.patients`,
`Patient p = repo.get(id)`, `patient := load(id)`, a parameter typed
`Patient`, and `text = f"... {p.full_name} ..."` (a PHI-bearing string bound
to a name that a sink later receives). That is enough to connect a log or chat
call to the record it leaks without a whole-program analysis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.diffs import DiffLine, Hunk
from assistant.review import re2fast as re2
from assistant.review.lexing import Chain, Masked, balanced_span, chains, line_at, mask
from assistant.review.vocabulary import PhiVocabulary, _hint_word, split_words

ASSIGN_PATTERN = (
    r"^\s*(?:(?:const|let|var|val|final|auto|private|public|protected|static|readonly)\s+)*"
    r"(?:[A-Za-z_][\w.<>\[\],?]*\s+)?([A-Za-z_]\w*)\s*(?::\s*[\w.\[\]|<>, ]+?)?\s*(?::=|=)(?:[^=]|$)"
)
_ASSIGN_RE = re2.compile(ASSIGN_PATTERN)
_FOR_RE = re2.compile(
    r"\bfor\s*\(?\s*(?:const|let|var|final)?\s*(?:[A-Z][\w<>]*\s+)?([A-Za-z_]\w*)\s+(?:in|of|:)\s+([^\n]+)"
)
_FOREACH_RE = re2.compile(r"\bforeach\s*\(\s*(?:var|[\w<>]+)\s+([A-Za-z_]\w*)\s+in\s+([^\n]+)")
_RANGE_RE = re2.compile(r"\bfor\s+(?:[A-Za-z_]\w*\s*,\s*)?([A-Za-z_]\w*)\s*:?=\s*range\s+([^\n]+)")
# (also Java's enhanced for: `for (Patient p : cohort)`)
_TYPED_RE = re2.compile(r"\b([A-Z][A-Za-z0-9_]*)(?:<[^>]*>)?\s+\*?([a-z_][A-Za-z0-9_]*)\s*(?:[=;,)]|:[^:])")
_ANNOT_RE = re2.compile(r"\b([a-z_][A-Za-z0-9_]*)\s*:\s*\*?(?:[\w.]+\.)?([A-Z][A-Za-z0-9_]*)\b")
_GO_PARAM_RE = re2.compile(r"[(,]\s*([a-z_][A-Za-z0-9_]*)\s+\*?(?:\w+\.)?([A-Z][A-Za-z0-9_]*)\s*[,)]")
_COUNTING = ("len(", "count(", "sum(", ".count(", ".size()", ".length", "Count(", "len ")


# Identifiers, as RE2's `[A-Za-z_]\w*` finds them (its \w is ASCII). The stdlib engine: two ASCII classes
# and no nesting, so linear, and its findall is many times faster than the RE2 wrapper's on whole spans.
IDENTIFIER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Chain segments as `lexing.chains` reads them (`$` is an identifier character in JS and PHP).
TOKEN_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


@dataclass
class HunkFlow:
    record_vars: set[str] = field(default_factory=set)
    phi_vars: dict[str, list[int]] = field(default_factory=dict)  # name -> new-file lines holding the PHI


def _mentions_record(text: str, vocab: PhiVocabulary, pre: tuple[Masked, list[Chain]] | None = None) -> bool:
    if any(c in text for c in _COUNTING):
        return False
    if not may_name_record(text, vocab):
        return False
    masked = pre[0] if pre is not None else mask(text)
    for ch in (pre[1] if pre is not None else chains(masked.masked)):
        segs = ch.segments
        for k, seg in enumerate(segs):
            if vocab.is_record(seg):
                if k == len(segs) - 1 and k > 0 and seg.lower() in _RECORD_VERBS and _is_call(masked.masked, ch):
                    continue  # `audit.Record(...)`, `h.chart(...)`: the verb, not a record
                rest = [w for s in segs[k + 1:] for w in split_words(s)]
                if not any(w in vocab.neutral for w in rest):
                    return True
    return False


# Record words that are also verbs: called as a method (`audit.Record(...)`) they act, they are not the record.
_RECORD_VERBS = frozenset({"record", "chart"})


def _is_call(masked: str, ch: Chain) -> bool:
    end = ch.start + len(ch.text)
    return ch.called or masked[end: end + 3].lstrip().startswith("(")


def record_words_pattern(vocab: PhiVocabulary) -> str:
    """RE2 pattern, case-insensitive, for any record word of `vocab` (for `FileContext.lines_matching`)."""
    found = _RECORD_PATTERNS.get(id(vocab))
    if found is None or found[0] is not vocab:
        words = sorted(vocab.record_words, key=len, reverse=True)
        found = (vocab, "(?i:" + "|".join(re2.escape(w) for w in words) + ")" if words else "[^\\s\\S]")
        _RECORD_PATTERNS[id(vocab)] = found
    return found[1]


_RECORD_PATTERNS: dict[int, tuple[PhiVocabulary, str]] = {}


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

    A chain yields only if one of its segments is in `names`, names a record (`is_record`) or, as its
    last segment, holds a PHI term. A chain segment is a whole token of the text (`TOKEN_RE`: masking
    only blanks string contents and comments, whose edges are quotes, braces and line ends), and a
    segment's term is the token's (`phi_in_chain` drops a leading get/is, which no term starts with:
    checked when the index is built). A string key yields only if its whole text names a PHI term;
    its words are pieces of it, so the lowercased text then holds every word of the term: one RE2 Set
    pass finds which terms' rarest words occur, substring tests check the rest. When that pass and the
    raw tokens say maybe and the text has strings, the masked text decides (`phiexpr.may_yield`, which
    does not count words inside string literals that are not keys). Per-identifier answers are cached
    by the vocabulary. It may say yes wrongly, never no.
    """
    tokens = TOKEN_RE.findall(text)
    if names and not names.isdisjoint(tokens):
        return True
    index = _hint_index(vocab)
    says = False
    if index.tokens_decide:
        known = index.token_says
        for t in tokens:
            found = known.get(t)
            if found is None:
                found = vocab.is_record(t) or vocab.phi_term(t) is not None
                if len(known) < 200_000:
                    known[t] = found
            if found:
                says = True
                break
        if not any(q in text for q in "\"'`"):
            return says  # no string, so no string key (and the raw tokens are a superset of the masked ones)
    if not says and not _words_hint(text.lower(), index):
        return False
    if not index.tokens_decide:
        return True
    from assistant.review.phiexpr import may_yield

    masked = mask(text)
    return may_yield(masked, vocab, set(IDENTIFIER_RE.findall(masked.masked)), lambda ns: not names.isdisjoint(ns))


def _may_hold_phi_raw(text: str, vocab: PhiVocabulary, names: set[str] | frozenset[str]) -> bool:
    """`may_hold_phi` without the masked check: words inside any string count. Where the answer shapes
    an assignment's span (the literal or call opening at the end of its line) rather than gating it, so
    that span stays what it always was."""
    tokens = TOKEN_RE.findall(text)
    if names and not names.isdisjoint(tokens):
        return True
    index = _hint_index(vocab)
    if index.tokens_decide:
        if any_token_says(tokens, vocab):
            return True
        if not any(q in text for q in "\"'`"):
            return False
    return _words_hint(text.lower(), index)


def _words_hint(low: str, index: _HintIndex) -> bool:
    hits = index.words.Match(low)  # type: ignore[attr-defined]
    if not hits:
        return False
    for k in hits:
        terms = index.terms[k]
        if terms is None:
            return True  # a record word
        if any(all(w in low for w in term) for term in terms):
            return True
    return False


def any_token_says(tokens: list[str], vocab: PhiVocabulary) -> bool | None:
    """Whether any of `tokens` names a record or holds a PHI term (cached per vocabulary); None when
    the vocabulary has a term starting with get/is, where a token's term may differ from its chain
    segment's (see `may_hold_phi`) and tokens cannot decide."""
    index = _hint_index(vocab)
    if not index.tokens_decide:
        return None
    known = index.token_says
    for t in tokens:
        says = known.get(t)
        if says is None:
            says = vocab.is_record(t) or vocab.phi_term(t) is not None
            if len(known) < 200_000:
                known[t] = says
        if says:
            return True
    return False


@dataclass(frozen=True)
class _HintIndex:
    words: object  # RE2 Set over the hint words
    terms: tuple[tuple[tuple[str, ...], ...] | None, ...]  # per Set entry: the terms it hints at; None: a record word
    tokens_decide: bool  # no term starts with get/is, so a token's own term is its chain segment's
    token_says: dict[str, bool] = field(default_factory=dict)  # token -> is_record or names a PHI term


_HINT_INDEX: dict[int, tuple[PhiVocabulary, _HintIndex]] = {}


def _hint_index(vocab: PhiVocabulary) -> _HintIndex:
    found = _HINT_INDEX.get(id(vocab))
    if found is None or found[0] is not vocab:
        by_word: dict[str, list[tuple[str, ...]] | None] = {}
        for term in sorted(vocab.terms):
            word = _hint_word(term)
            if by_word.get(word, []) is not None:
                by_word.setdefault(word, []).append(term)  # type: ignore[union-attr]
        for word in vocab.record_words:
            by_word[word] = None
        words = sorted(by_word)
        regex_set = re2.Set.SearchSet(re2.Options())
        for word in words:
            regex_set.Add(re2.escape(word))
        regex_set.Compile()
        index = _HintIndex(
            regex_set,
            tuple(None if by_word[w] is None else tuple(by_word[w]) for w in words),  # type: ignore[arg-type]
            not any(term[0] in ("get", "is") for term in vocab.terms),
        )
        found = (vocab, index)
        _HINT_INDEX[id(vocab)] = found
    return found[1]


@dataclass
class Bindings:
    """What a hunk's lines could bind, before any PHI analysis (the cheap half of `hunk_flow`).

    `record_vars` are final (a patient-typed parameter, a loop over patients); `assignments` are the
    assignments whose right-hand side may hold a record or PHI, in order, for `flow_of` to judge.
    `names` is every name this window could end up binding: a sink whose arguments use none of them
    needs no analysis at all.
    """

    record_vars: set[str] = field(default_factory=set)
    assignments: list[tuple[int, str, str, list[int]]] = field(default_factory=list)  # (index, var, span, starts)
    names: frozenset[str] = frozenset()


def bindings(
    hunk: Hunk,
    vocab: PhiVocabulary,
    post: list[DiffLine] | None = None,
    hints: frozenset[int] | None = None,
    lo: int = 0,
    hi: int | None = None,
    *,
    record_lines: frozenset[int] | None = None,
    record_vars: set[str] | None = None,
) -> Bindings:
    """The candidate bindings of post[lo:hi] (and the hunk header); see `hunk_flow`.

    `record_lines`: new-file numbers of the lines where `record_words_pattern(vocab)` matches
    (`FileContext.lines_matching`, one pass per file), when the caller has them: other lines are
    skipped without looking at them. `record_vars`: `record_vars_of` of the same arguments, when the
    caller has it.
    """
    post = post if post is not None else [ln for ln in hunk.lines if ln.kind != "-"]
    hi = len(post) if hi is None else min(hi, len(post))
    out = Bindings()
    if record_vars is None:
        record_vars = record_vars_of(hunk, vocab, post, hints, lo, hi, record_lines=record_lines)
    out.record_vars = set(record_vars)
    names = set(out.record_vars)  # every name an assignment kept may bind
    record_names = set(out.record_vars)  # a superset of the record names bound so far, as the gate asks
    for i in range(lo, hi):
        ln = post[i]
        if hints is not None and ln.new_no not in hints and not ln.text.rstrip().endswith(_CONTINUED):
            continue
        if "=" not in ln.text:
            continue
        found = _assignment(post, i, vocab, record_names)
        if found is None:
            continue
        var, span, starts = found
        if not may_hold_phi(span, vocab, record_names) and serialized_name(span) not in names:
            continue  # binds neither a record (that needs a record word or a record name) nor a PHI value
        out.assignments.append((i, var, span, starts))
        names.add(var)
        if any(vocab.is_record(t) for t in TOKEN_RE.findall(span)):
            record_names.add(var)  # `flow_of` binds a record only where `_mentions_record`: a chain segment is_record
    out.names = frozenset(names)
    return out


def _assignment_head(text: str) -> tuple[str, int, str] | None:
    """(name, where the right-hand side starts, the right-hand side stripped) of an assignment line, or None.

    One reading of the line for both `_assignment` and `_assignment_shapes`, so the two can never
    disagree on what the value of an assignment is."""
    m = _ASSIGN_RE.search(text)
    if not m:
        return None
    rhs_start = m.end(0) - (0 if m.group(0).endswith(("=",)) else 1)
    name = m.group(1)
    if name in _SECOND_RESULTS:
        # `p, err := s.patients.Get(ctx, id)` / `patient, created = ...get_or_create(...)`: the value is the first name's
        first = _MULTI_HEAD_RE.search(text[: m.start(1)])
        if first is not None and first.group(1) != "_":
            name = first.group(1)
    return name, rhs_start, text[rhs_start:].strip()


# The second name of `x, err := ...` (Go) and `x, created = ...` (Django): a status, the first name holds the value.
_SECOND_RESULTS = frozenset({"err", "ok", "error", "created", "found", "exists", "_"})
_MULTI_HEAD_RE = re2.compile(r"^\s*(?:(?:var|const|let|val)\s+)?\(?\s*([A-Za-z_]\w*)\s*,\s*$")


def _opens_unclosed(rhs: str) -> bool:
    """A right-hand side that opens a bracket at its start and does not close it on this line (`x = (`)."""
    return rhs.startswith(("(", "[", "{")) and not rhs.endswith((")", "]", "}", ");", "];", "};"))


def _assignment(
    post: list[DiffLine],
    i: int,
    vocab: PhiVocabulary,
    record_names: set[str] | frozenset[str],
) -> tuple[str, str, list[int]] | None:
    """(name, value text, line starts within it) of the assignment on post[i], or None.

    The value is the right-hand side, or, when it opens a bracket it does not close (`x = (`, or
    `msg := &slack.WebhookMessage{` whose head cannot hold PHI by `_may_hold_phi_raw` over
    `record_names`), the bracketed group across the following lines."""
    parsed = _assignment_head(post[i].text)
    if parsed is None:
        return None
    var, rhs_start, rhs = parsed
    ln = post[i]
    if _opens_unclosed(rhs):
        col = ln.text.index(rhs[0], rhs_start)
        span, starts = balanced_span(post, i, col, max_lines=8)
    elif rhs.endswith(("(", "[", "{")) and not _may_hold_phi_raw(rhs, vocab, record_names):
        # `msg := &slack.WebhookMessage{` / `body = render(`: the value is the literal or call that opens here
        col = ln.text.rstrip().rindex(rhs[-1])
        head_col = ln.text.index(rhs, rhs_start)
        inner, inner_starts = balanced_span(post, i, col, max_lines=8)
        head = ln.text[head_col:col]
        span, starts = head + inner, [0] + [s + len(head) for s in inner_starts[1:]]
    elif rhs.endswith(",") and (col := _unclosed_at(ln.text, rhs_start)) is not None:
        # `msg := fmt.Sprintf("... %s (born %s)",` / `sub.FirstName, sub.BirthDate)`: the call goes on below
        head_col = ln.text.index(rhs, rhs_start)
        inner, inner_starts = balanced_span(post, i, col, max_lines=8)
        head = ln.text[head_col:col]
        span, starts = head + inner, [0] + [s + len(head) for s in inner_starts[1:]]
    else:
        span, starts = rhs, [0]
    return var, span, starts


# A value that is another name serialized or wrapped whole: it holds what that name holds.
_SERIALIZED_RE = re2.compile(
    r"^\s*(?:await\s+)?(?:json\s*\.\s*(?:Marshal(?:Indent)?|dumps)|JSON\s*\.\s*stringify|jsonify|orjson\s*\.\s*dumps|"
    r"bytes\s*\.\s*New(?:Reader|Buffer(?:String)?)|strings\s*\.\s*NewReader|[\w.]*writeValueAs(?:String|Bytes)|"
    r"JsonSerializer\s*\.\s*Serialize|JsonConvert\s*\.\s*SerializeObject|str|String|string|\[\]byte)\s*\(\s*&?"
    r"([A-Za-z_]\w*)\s*[,)]"
)
# The same calls, for one pass over a file (`FileContext.lines_matching`): the lines `bindings` must read
# although no PHI word is on them.
SERIALIZE_LINE_PATTERN = (
    r"(?:json\s*\.\s*(?:Marshal|dumps)|JSON\s*\.\s*stringify|jsonify|orjson\s*\.\s*dumps|bytes\s*\.\s*New(?:Reader|Buffer)|"
    r"strings\s*\.\s*NewReader|writeValueAs|JsonSerializer\s*\.\s*Serialize|SerializeObject)\s*\(\s*&?[A-Za-z_]\w*\s*[,)]"
)


def serialized_name(value: str) -> str | None:
    """`x` when `value` is `json.Marshal(x)`, `JSON.stringify(x)`, `bytes.NewReader(x)`...; else None."""
    if "(" not in value:
        return None
    m = _SERIALIZED_RE.search(value)
    return m.group(1) if m is not None else None


# Line ends after which an assignment's value goes on: an opened bracket, or a call's argument list
# continued on the next line.
_CONTINUED = ("(", "[", "{", ",")


def _unclosed_at(text: str, start: int) -> int | None:
    """Column of the outermost bracket opened after `start` and not closed on this line (strings skipped)."""
    masked = mask(text).masked
    stack: list[int] = []
    for k in range(start, len(masked)):
        ch = masked[k]
        if ch in "([{":
            stack.append(k)
        elif ch in ")]}" and stack:
            stack.pop()
    return stack[0] if stack else None


def _assignment_shapes(post: list[DiffLine], i: int) -> tuple[str, list[str]] | None:
    """(name, value texts) of the assignment on post[i]: every value `_assignment` may take for it,
    whatever the record names (the widest first: the bracketed group where the right-hand side opens
    one at its end, then the right-hand side alone)."""
    parsed = _assignment_head(post[i].text)
    if parsed is None:
        return None
    var, rhs_start, rhs = parsed
    ln = post[i]
    if _opens_unclosed(rhs):
        col = ln.text.index(rhs[0], rhs_start)
        return var, [balanced_span(post, i, col, max_lines=8)[0]]
    if rhs.endswith(("(", "[", "{")):
        col = ln.text.rstrip().rindex(rhs[-1])
        head_col = ln.text.index(rhs, rhs_start)
        inner = balanced_span(post, i, col, max_lines=8)[0]
        widest = ln.text[head_col:col] + inner
        return var, [widest] if widest == rhs else [widest, rhs]
    if rhs.endswith(",") and (col := _unclosed_at(ln.text, rhs_start)) is not None:
        head_col = ln.text.index(rhs, rhs_start)
        return var, [ln.text[head_col:col] + balanced_span(post, i, col, max_lines=8)[0]]
    return var, [rhs]


def record_vars_of(
    hunk: Hunk,
    vocab: PhiVocabulary,
    post: list[DiffLine],
    hints: frozenset[int] | None,
    lo: int,
    hi: int,
    *,
    record_lines: frozenset[int] | None = None,
) -> set[str]:
    """The record names of post[lo:hi] and the header: a patient-typed parameter or declaration, a loop
    over patients (the first half of `bindings`; final, no assignment undoes them)."""
    return _record_vars_in(_record_texts(hunk, vocab, post, hints, lo, hi, record_lines), vocab)


def _record_texts(
    hunk: Hunk,
    vocab: PhiVocabulary,
    post: list[DiffLine],
    hints: frozenset[int] | None,
    lo: int,
    hi: int,
    record_lines: frozenset[int] | None,
) -> list[str]:
    """The header and the lines of post[lo:hi] that could bind a record name: in `hints` and
    `record_lines`, and holding a record word (every binding asks `is_record` of a piece of the line;
    `is_record` needs ASCII record words in an identifier, which the case-insensitive `record_lines`
    pattern finds too)."""
    candidates = [
        ln.text for ln in post[lo:hi]
        if (hints is None or ln.new_no in hints) and (record_lines is None or ln.new_no in record_lines)
    ]
    records = vocab.record_words
    out = []
    for text in [hunk.header, *candidates]:
        low = text.lower()
        if any(w in low for w in records):
            out.append(text)
    return out


def _record_vars_in(texts: list[str], vocab: PhiVocabulary) -> set[str]:
    out: set[str] = set()
    for text in texts:
        if (text != text.lower()) if text.isascii() else any(c.isupper() for c in text):
            for regex in (_TYPED_RE, _GO_PARAM_RE):
                for m in regex.finditer(text):
                    type_name, var = m.group(1), m.group(2)
                    if vocab.is_record(type_name):
                        out.add(var)
            if ":" in text:
                for m in _ANNOT_RE.finditer(text):
                    if vocab.is_record(m.group(2)):
                        out.add(m.group(1))
        if "for" in text:
            for regex in (_FOR_RE, _FOREACH_RE, _RANGE_RE):
                m = regex.search(text)
                if m and _mentions_record(m.group(2), vocab):
                    out.add(m.group(1))
    return out


def _record_var_tokens(texts: list[str], vocab: PhiVocabulary) -> set[str]:
    """A superset of `_record_vars_in(texts, vocab)` from tokens alone: a record binding needs an
    `is_record` identifier on its line (the type of `_TYPED_RE`/`_GO_PARAM_RE`/`_ANNOT_RE`, a record
    chain segment of a loop), and binds a whole identifier of the line, or for `_FOR_RE` (whose name
    may follow `for`/`const`/`let`/`var`/`final` with no space) the tail of one."""
    out: set[str] = set()
    for text in texts:
        tokens = IDENTIFIER_RE.findall(text)
        if not any(vocab.is_record(t) for t in tokens):
            continue
        out.update(tokens)
        if "for" in text:
            out.update(t[k:] for t in tokens for k in range(1, len(t)))
    return out


@dataclass
class BindIndex:
    """What post[lo:hi] could bind, indexed by name: "may `x` be bound here?" costs a dict lookup and,
    rarely, the analysis of the lines assigning `x` instead of the whole block's (`bindings`).

    `record_vars` is exact (`record_vars_of`). `assign_at` maps every name an assignment of the block
    could bind to the lines that could bind it: `bindings` binds an assignment only on a line in `hints`
    or ending with an opening bracket, holding `=`, and the name (`_ASSIGN_RE` group 1) is a whole
    token before the line's first `=` (nothing before the operator holds one). `names` is every name
    the block may bind.
    """

    record_texts: list[str]  # `_record_texts`: where `record_vars` are bound
    record_tokens: set[str]  # a superset of `record_vars`, from tokens alone
    assign_at: dict[str, list[int]]
    names: frozenset[str]
    candidates: list[tuple[int, list[str]]]  # (line index, names before its first `=`), in order
    record_lines: frozenset[int] | None
    vocab: PhiVocabulary
    checked: dict[str, bool] = field(default_factory=dict)
    _valued: dict[int, str | None] = field(default_factory=dict)
    _shape_memo: dict[int, tuple[str, list[str]] | None] = field(default_factory=dict)
    _record_vars: set[str] | None = None

    @property
    def record_vars(self) -> set[str]:
        """Exact (`record_vars_of`), computed on first use: most blocks are never asked about a name
        their record lines hold."""
        if self._record_vars is None:
            self._record_vars = _record_vars_in(self.record_texts, self.vocab) if self.record_tokens else set()
        return self._record_vars

    def _has_record_var(self, names: set[str] | frozenset[str]) -> bool:
        return not self.record_tokens.isdisjoint(names) and not self.record_vars.isdisjoint(names)

    def may_bind(self, name: str, post: list[DiffLine], vocab: PhiVocabulary) -> bool:
        """Whether `name` may be in `bindings(...).names` of this block (yes may be wrong, no is not)."""
        if name in self.record_tokens and name in self.record_vars:
            return True
        lines = self.assign_at.get(name)
        if not lines:
            return False
        found = self.checked.get(name)
        if found is None:
            self.checked[name] = False  # a cycle of serializations (`x = json.dumps(x)`) binds nothing new
            found = any(self._may_assign(name, i, post, vocab) for i in lines)
            self.checked[name] = found
        return found

    def _record_value(self, j: int, post: list[DiffLine], vocab: PhiVocabulary) -> str | None:
        # The name line j assigns, when its value may hold an `is_record` token: the value `bindings`
        # takes is the widest shape's text or its first line's (`_assignment`), whose tokens the widest
        # shape's include.
        if j in self._valued:
            return self._valued[j]
        var = None
        if self.record_lines is None or any(ln.new_no in self.record_lines for ln in post[j: j + 8]):
            found = self._shapes(j, post)
            if found is not None and any(vocab.is_record(t) for t in TOKEN_RE.findall(found[1][0])):
                var = found[0]
        self._valued[j] = var
        return var

    def _shapes(self, i: int, post: list[DiffLine]) -> tuple[str, list[str]] | None:
        if i not in self._shape_memo:
            self._shape_memo[i] = _assignment_shapes(post, i)
        return self._shape_memo[i]

    def _may_assign(self, name: str, i: int, post: list[DiffLine], vocab: PhiVocabulary) -> bool:
        # `bindings` takes line i's value in one of two shapes (`_assignment`: the widest, or the
        # right-hand side alone when the record names bound so far make its head hold PHI) and gates it
        # with `may_hold_phi` over those record names: `record_vars` and names that earlier lines assign
        # a value holding an `is_record` token. Names only count where the value holds them as tokens,
        # so only the earlier lines assigning one of its tokens are looked at.
        found = self._shapes(i, post)
        if found is None or found[0] != name:
            return False
        for text in found[1]:
            if may_hold_phi(text, vocab):
                return True
            arg = serialized_name(text)
            if arg is not None and arg != name and self.may_bind(arg, post, vocab):
                return True
            tokens = set(TOKEN_RE.findall(text)).union(IDENTIFIER_RE.findall(text))
            if self._has_record_var(tokens):
                return True
            for j, names in self.candidates:
                if j >= i:
                    break
                if not tokens.isdisjoint(names) and self._record_value(j, post, vocab) in tokens:
                    return True
        return False


def bind_index(
    hunk: Hunk,
    vocab: PhiVocabulary,
    post: list[DiffLine],
    hints: frozenset[int] | None,
    lo: int,
    hi: int,
    *,
    record_lines: frozenset[int] | None = None,
) -> BindIndex:
    """The `BindIndex` of post[lo:hi] (see `bindings` for the arguments)."""
    hi = min(hi, len(post))
    texts = _record_texts(hunk, vocab, post, hints, lo, hi, record_lines)
    record_tokens = _record_var_tokens(texts, vocab) if texts else set()
    assign_at: dict[str, list[int]] = {}
    candidates: list[tuple[int, list[str]]] = []
    for i in range(lo, hi):
        text = post[i].text
        eq = text.find("=")
        if eq < 0:
            continue
        if hints is not None and post[i].new_no not in hints and not text.rstrip().endswith(_CONTINUED):
            continue
        names = IDENTIFIER_RE.findall(text, 0, eq)
        candidates.append((i, names))
        for name in names:
            found = assign_at.setdefault(name, [])
            if not found or found[-1] != i:
                found.append(i)
    return BindIndex(texts, record_tokens, assign_at, frozenset(record_tokens) | frozenset(assign_at), candidates,
                     record_lines, vocab)


def flow_of(found: Bindings, vocab: PhiVocabulary, post: list[DiffLine]) -> HunkFlow:
    """The bindings that hold: which candidates bind a record, which a PHI value (the costly half)."""
    flow = HunkFlow(record_vars=set(found.record_vars))
    for i, var, span, starts in found.assignments:
        arg = serialized_name(span)
        if arg is not None and (arg in flow.phi_vars or arg in flow.record_vars):
            # `body, _ := json.Marshal(msg)`: the serialized text holds what `msg` held
            no = post[i].new_no
            flow.phi_vars[var] = list(flow.phi_vars.get(arg) or ([no] if no is not None else []))
            continue
        if not may_hold_phi(span, vocab, flow.record_vars):
            continue  # as `bindings` judged, with the record names actually bound so far
        rhs_m = mask(span)
        pre = (rhs_m, chains(rhs_m.masked))
        if _mentions_record(span, vocab, pre) and vocab.phi_in_chain([var], flow.record_vars) is None:
            # `p = encounter.patient`, but not `name = patient.name` (that is a PHI value, below)
            rhs_chains = pre[1]
            if rhs_chains and all(
                vocab.phi_in_chain(c.segments, flow.record_vars) in (None, "patient record") for c in rhs_chains
            ) and not _record_only_protected(rhs_m.masked, rhs_chains, vocab):
                flow.record_vars.add(var)
                continue
        lines = phi_lines_in(span, starts, post, i, vocab, flow.record_vars, pre=pre)
        if lines:
            flow.phi_vars[var] = lines
    return flow


def _record_only_protected(masked: str, rhs_chains: list[Chain], vocab: PhiVocabulary) -> bool:
    """Whether every chain naming a record sits inside a hashing/redacting/counting call: `mrn_hash =
    hashlib.sha256(patient.mrn.encode()).hexdigest()` holds a digest, not the patient."""
    from assistant.review.phiexpr import _SAFE_CALL_RE, _enclosing_call

    found = False
    for c in rhs_chains:
        if not any(vocab.is_record(x) for x in c.segments):
            continue
        call = _enclosing_call(masked, c.start)
        if not call or not _SAFE_CALL_RE.search(call.rsplit(".", 1)[-1]):
            return False
        found = True
    return found


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
    return flow_of(bindings(hunk, vocab, post, hints, lo, hi), vocab, post)


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
