"""PHI expressions inside a piece of code: which chains in a call's arguments carry PHI.

Shared by the log and output rules (and open to the audit and storage rules):
given the text of a call's arguments, find the identifier chains that
`PhiVocabulary` says carry PHI, skipping those that are only measured
(`len(patients)`), protected (`redact(p.ssn)`, `hash(mrn)`) or used as keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from assistant.review import re2fast as re2
from assistant.review.dataflow import TOKEN_RE, any_token_says
from assistant.review.lexing import Chain, Masked, chains, mask
from assistant.review.vocabulary import PhiVocabulary

# A chain inside one of these calls is measured, protected or only checked (`verify(...)`/`validate(...)` give a
# verdict, not the value), not disclosed (C#'s `nameof(Patient)` is the
# identifier's own name, a compile-time string).
_SAFE_CALL_RE = re2.compile(
    r"(?i)(redact|mask|anonymi|pseudonym|hash|token|encrypt|scrub|sanitiz|deident|obfuscat|"
    r"digest|hmac|len|count|size|bool|type|typeof|nameof|isinstance|hasattr|exists|is_?valid|last4|last_four|"
    r"truncat|initials|sha\d*|md5|fingerprint|verif|validat|^sum$|^any$|^all$)"
)
_IGNORED_HEADS = frozenset({"f", "$", "self", "this", "None", "null", "nil", "true", "false", "True", "False", "new", "return", "await"})


_KEY_ACCESS_RE = re2.compile(
    r"(?:\[|\.\s*(?:get|getString|getStr|get_str|getText|pop|getOrDefault|getValue|GetString|Get|value|field|attr|"
    r"getAttribute|getParameter|getHeader)\s*\()\s*$"
)
_KEY_GETTER_RE = re2.compile(r"(?:get|pop|value|field|attr|Get)\w*$")
_BASE_RE = re2.compile(r"([A-Za-z_$][\w$.]*)\s*(?:\[|\.\s*\w+\s*\()\s*$")


def _enclosing_call(masked: str, pos: int) -> str:
    """Name of the innermost call whose parentheses enclose `pos`, or ''."""
    depth = 0
    i = pos - 1
    floor = max(0, pos - 300)  # bounded look-back: a 1 MB line stays linear
    while i >= floor:
        ch = masked[i]
        if ch in ")]}":
            depth += 1
        elif ch in "([{":
            if depth == 0:
                if ch != "(":
                    return ""
                j = i - 1
                while j >= 0 and masked[j] == " ":
                    j -= 1
                k = j
                while k >= 0 and j - k < 200 and (masked[k].isalnum() or masked[k] in "_.$"):
                    k -= 1
                return masked[k + 1: j + 1]
            depth -= 1
        i -= 1
    return ""


def may_yield(m: Masked, vocab: PhiVocabulary, names: set[str], bound: Callable[[set[str]], bool]) -> bool:
    """A necessary condition for `phi_chains(m.text, vocab, record_vars, phi_vars, pre=(m, None))` to
    yield anything, from token and string tests alone (no chain, call or flow analysis).

    `names`: the identifiers of `m.masked` (`dataflow.IDENTIFIER_RE`); `bound(names)`: whether any of
    them may be in `record_vars` or `phi_vars` (a superset answer is fine). A chain yields only if a
    segment names a record or holds a PHI term, which its token then does too (`any_token_says`), or a
    segment is a bound name (bound names are plain identifiers, so whole `names` entries); a string key
    yields only if its content names a PHI term. It may say yes wrongly, never no.
    """
    says = any_token_says(TOKEN_RE.findall(m.masked), vocab)
    if says is None or says:
        return True
    for s in m.strings:
        if not s.formatted and s.content and len(s.content) <= 40 and vocab.phi_term(s.content) is not None:
            if _KEY_ACCESS_RE.search(m.masked[max(0, s.start - 40): s.start].rstrip()):
                return True
    return bool(names) and bound(names)


def phi_chains(
    text: str,
    vocab: PhiVocabulary,
    record_vars: set[str] | frozenset[str],
    phi_vars: dict[str, list[int]],
    skip_before: int = 0,
    pre: tuple[Masked, list[Chain] | None] | None = None,
) -> Iterator[tuple[int, str]]:
    """(offset, description) for each PHI-carrying chain in `text` at or after `skip_before`.

    `pre`: `mask(text)` and `chains()` of its masked text, when the caller already has them.
    """
    m, chain_list = pre if pre is not None else (mask(text), None)
    masked = m.masked
    # Lazily computed name sets (phi.py's windows) say which names may be bound at all.
    maybe = getattr(record_vars, "maybe", None)
    for ch in chain_list if chain_list is not None else chains(masked):
        if ch.start < skip_before:
            continue
        segs = [s for s in ch.segments]
        while segs and segs[0] in _IGNORED_HEADS:
            segs = segs[1:]
        if not segs:
            continue
        after = masked[ch.start + len(ch.text): ch.start + len(ch.text) + 3].lstrip()
        if after.startswith("(") and not ch.called:
            continue  # a function being called (`mask_ssn(...)`): its arguments are judged on their own
        if after.startswith(":") and not after.startswith("::") or (after.startswith("=") and not after.startswith("==")):
            continue  # an object key or keyword-argument name, not a value
        call_checked = False
        if maybe is not None and any(maybe(x) for x in segs):
            # The names may need the (costly, lazy) flow analysis: ask the free question first.
            call = _enclosing_call(masked, ch.start)
            if call and _SAFE_CALL_RE.search(call.rsplit(".", 1)[-1]):
                continue
            call_checked = True
        what = vocab.phi_in_chain(segs, record_vars)
        if what is None and len(segs) == 1 and segs[0] in phi_vars:
            what = f"{segs[0]} (holds PHI)"
        if what is None:
            continue
        if not call_checked:
            call = _enclosing_call(masked, ch.start)
            if call and _SAFE_CALL_RE.search(call.rsplit(".", 1)[-1]):
                continue
        yield ch.start, what
    # row["ssn"], data.get("dob"), payload['member_id'], rs.getString("last_name"): a string key names the field
    for s in m.strings:
        if s.start < skip_before or s.formatted or not s.content or len(s.content) > 40:
            continue
        before = masked[max(0, s.start - 40): s.start].rstrip()
        if not _KEY_ACCESS_RE.search(before):
            continue
        term = vocab.phi_term(s.content)
        if term is None:
            continue
        base = _BASE_RE.search(before)
        base_segs = [x for x in (base.group(1).split(".") if base else []) if x]
        if vocab.is_weak(term) and not any(vocab.is_record(b) or b in record_vars for b in base_segs):
            continue
        after = masked[s.end: s.end + 3].lstrip()
        if after.startswith(("=",)) and not after.startswith("=="):
            continue  # an assignment target: row["ssn"] = ... writes, it does not disclose
        call = _enclosing_call(masked, s.start)
        if call and _SAFE_CALL_RE.search(call.rsplit(".", 1)[-1]) and not _KEY_GETTER_RE.search(call):
            continue
        yield s.start, term
