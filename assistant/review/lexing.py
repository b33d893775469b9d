"""Just enough lexing to read code lines without a full parse.

Rules ask "which identifiers does this call pass?", "is this string built by
interpolation?", "where does this call's argument list end?". Those questions
are the same across Python, Java, JS/TS, Go and C#: string literals (with
their interpolations), balanced brackets, dotted identifier chains. This module
answers them in one linear pass per text, so a 1 MB line costs a scan, never a
backtracking explosion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.diffs import DiffLine
from assistant.review import re2fast as re2


@dataclass(slots=True)
class StrLit:
    start: int  # offset of the opening quote
    end: int  # offset after the closing quote
    content: str  # the literal's text, interpolations included verbatim
    formatted: bool  # f-string, template literal or C# $"..."
    interpolations: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Masked:
    """`text` with string contents blanked out (quotes and interpolated expressions kept), same length."""

    text: str
    masked: str
    strings: list[StrLit]


# Python's re for these single character classes: no quantifier nesting, and
# called once per token boundary, where RE2's per-call overhead would dominate.
_INTERESTING_RE = re.compile(r"[\"'`#/]")
_STOPS = "\\{\n"
_STOPS_TRIPLE = "\\{"
_STOP_RES: dict[tuple[str, str], re.Pattern[str]] = {}


def stops_re(stops: str, quote: str) -> re.Pattern[str]:
    key = (stops, quote)
    found = _STOP_RES.get(key)
    if found is None:
        found = re.compile("[" + re.escape(stops + quote) + "]")
        _STOP_RES[key] = found
    return found


def mask(text: str, dollar_names: bool = False) -> Masked:
    """Blank string contents so code-level patterns cannot match inside literals.

    Interpolated expressions (`{x}` in f-strings and C# `$""`, `${x}` in JS
    templates) stay visible, because they are code. Comments (`#`, `//`) are
    blanked too, except inside strings. `dollar_names`: the language also
    interpolates a bare `$name` in double-quoted strings (Kotlin, PHP, Groovy),
    so that name stays visible too; elsewhere `"$x"` is plain text.
    """
    out = list(text)
    strings: list[StrLit] = []
    i = 0
    n = len(text)
    while i < n:
        nxt = _INTERESTING_RE.search(text, i)
        if nxt is None:
            break
        i = nxt.start()
        c = text[i]
        if c in "\"'`":
            # prefixes: f"", rf"", $"", @$"" -- look back over letters/$/@
            j = i - 1
            prefix = ""
            while j >= 0 and (text[j].isalpha() or text[j] in "$@") and len(prefix) < 3:
                prefix = text[j] + prefix
                j -= 1
            if j >= 0 and (text[j].isalnum() or text[j] == "_"):
                prefix = ""  # part of an identifier, e.g. it's a Rust lifetime or a word
            low = prefix.lower()
            formatted = c == "`" or "f" in low or "$" in low
            raw = "r" in low or "@" in low
            triple = text.startswith(c * 3, i)
            quote = c * 3 if triple else c
            k = i + len(quote)
            interps: list[str] = []
            content_start = k
            stops = _STOPS_TRIPLE if triple else _STOPS
            bare = dollar_names and c == '"' and not raw
            if bare:
                stops += "$"
            while k < n:
                if text[k] not in stops:
                    nk = stops_re(stops, c).search(text, k)
                    if nk is None:
                        out[k:n] = " " * (n - k)
                        k = n
                        break
                    out[k:nk.start()] = " " * (nk.start() - k)
                    k = nk.start()
                ch = text[k]
                if ch == "\\" and not raw:
                    out[k] = " "
                    if k + 1 < n:
                        out[k + 1] = " "
                    k += 2
                    continue
                if text.startswith(quote, k):
                    break
                if ch == "\n" and not triple and c != "`":
                    break
                if bare and ch == "$" and k + 1 < n and (text[k + 1].isalpha() or text[k + 1] == "_"):
                    m = k + 1
                    while m < n and (text[m].isalnum() or text[m] == "_"):
                        m += 1
                    interps.append(text[k + 1:m])
                    out[k] = " "  # the name itself stays visible
                    k = m
                    continue
                dollar = ch == "{" and k > 0 and text[k - 1] == "$" and c == '"' and not raw
                if (formatted or dollar) and ch == "{" and (c != "`" or (k > 0 and text[k - 1] == "$")):
                    if k + 1 < n and text[k + 1] == "{" and c != "`":
                        out[k] = out[k + 1] = " "
                        k += 2
                        continue
                    depth = 1
                    m = k + 1
                    while m < n and depth:
                        if text[m] == "{":
                            depth += 1
                        elif text[m] == "}":
                            depth -= 1
                        elif text[m] == "\n" and not triple and c != "`":
                            break
                        m += 1
                    expr_end = m - 1 if depth == 0 else m
                    interps.append(text[k + 1:expr_end])
                    out[k] = " "
                    if (c == "`" or dollar) and k > 0:
                        out[k - 1] = " "
                    if depth == 0:
                        out[m - 1] = " "
                    k = m
                    continue
                out[k] = " "
                k += 1
            content = text[content_start:min(k, n)]
            end = min(k + len(quote), n) if k < n and text.startswith(quote, k) else k
            strings.append(StrLit(i, end, content, bool(interps) and (formatted or bare or "${" in content), interps))
            i = end if end > i else i + 1
            continue
        if c == "#" and (i == 0 or text[i - 1] in " \t\n"):
            # python/yaml/shell comment (not C# preprocessor mid-expression); blank to end of line
            k = text.find("\n", i)
            k = n if k < 0 else k
            out[i:k] = " " * (k - i)
            i = k
            continue
        if c == "/" and i + 1 < n and text[i + 1] == "/" and (i == 0 or text[i - 1] != ":"):
            k = text.find("\n", i)
            k = n if k < 0 else k
            out[i:k] = " " * (k - i)
            i = k
            continue
        i += 1
    return Masked(text, "".join(out), strings)


_CHAIN_RE = re2.compile(
    r"[A-Za-z_$][\w$]*(?:\s*(?:\?\.|\.|->|::)\s*[A-Za-z_$][\w$]*(?:\s*\(\s*\))?)*"
)


_SEP_RE = re.compile(r"\?\.|\.|->|::")


@dataclass(slots=True)
class Chain:
    start: int
    text: str
    segments: list[str]  # identifier parts, call parens dropped: ['patient', 'getSsn']
    called: bool  # the last segment is a call, e.g. toString()


def chains(masked: str) -> list[Chain]:
    """Dotted identifier chains in masked code: `patient.getSsn()`, `p.full_name`, `req.params.mrn`."""
    out: list[Chain] = []
    for m in _CHAIN_RE.finditer(masked):
        text = m.group(0)
        start = m.start()
        if start > 0 and (masked[start - 1].isalnum() or masked[start - 1] in "_$"):
            continue
        segs = [s.strip().rstrip("()").strip() for s in _SEP_RE.split(text)]
        segs = [s for s in segs if s]
        out.append(Chain(start, text, segs, text.rstrip().endswith(")")))
    return out


def balanced_span(
    lines: list[DiffLine], index: int, col: int, max_lines: int = 12, max_chars: int = 4000
) -> tuple[str, list[int]]:
    """Text of the bracketed group opening at lines[index].text[col] (an opening bracket), across lines.

    Returns the joined text (lines separated by newlines) starting at `col`
    and, for each character offset, nothing -- instead a list of offsets where
    each following line starts, so callers can map an offset back to a line.
    Strings are skipped; unbalanced input ends after `max_lines` lines.
    Only quotes, brackets and backslashes change anything, so the scan jumps between them.
    """
    parts: list[str] = []
    starts: list[int] = []
    depth = 0
    pos = 0
    quote = ""
    for k in range(index, min(len(lines), index + max_lines)):
        text = lines[k].text if k > index else lines[k].text[col:]
        text = text[: max(0, max_chars - pos)]  # an argument list longer than this is generated code
        starts.append(pos)
        parts.append(text)
        skip = -1
        for m in _SPAN_EVENT_RE.finditer(text):
            i = m.start()
            if i < skip:
                continue
            ch = text[i]
            if quote:
                if ch == "\\":
                    skip = i + 2  # the escaped character
                elif ch == quote:
                    quote = ""
                continue
            if ch in "\"'`":
                quote = ch
            elif ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
                if depth <= 0:
                    parts[-1] = text[: i + 1]
                    return "\n".join(parts), starts
        if quote != "`":
            quote = ""  # ordinary strings do not cross lines
        pos += len(parts[-1]) + 1
    return "\n".join(parts), starts


# What `balanced_span` looks at (a single character class: linear, and found in C).
_SPAN_EVENT_RE = re.compile(r"[\"'`()\[\]{}\\]")


def line_at(starts: list[int], offset: int) -> int:
    """Index (0-based, relative to the span's first line) of the line holding `offset`."""
    idx = 0
    for i, s in enumerate(starts):
        if s <= offset:
            idx = i
        else:
            break
    return idx
