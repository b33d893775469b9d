"""Shared structure helpers for the transport, auditing, access, at-rest and safety families.

These answer questions several structural rules ask of a hunk without a full
parse: is this line a comment, what YAML/HCL keys enclose it (by indentation),
which removed lines were replaced by which added ones, is a path documentation.
They work on the hunk's own lines, so a partial file (all a diff shows) is
enough. They would sit well in the engine's FileContext; they live here so the
families do not wait on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

from assistant.diffs import DiffLine, Hunk
from assistant.review import re2fast as re2
from assistant.review.context import FileContext

DOC_LANGUAGES = frozenset({"markdown", "text"})
CODE_LANGUAGES = frozenset({"python", "java", "kotlin", "javascript", "typescript", "go", "csharp", "ruby", "php", "shell"})
CONFIG_LANGUAGES = frozenset({"yaml", "terraform", "dotenv", "properties", "json", "toml", "ini", "xml", "dockerfile"})
SOURCE_LANGUAGES = CODE_LANGUAGES | CONFIG_LANGUAGES | {"sql"}
# Languages where nesting is shown by indentation (or braces that are indented like it).
NESTED_CONFIG = frozenset({"yaml", "terraform", "json", "toml"})

_COMMENT_RE = re2.compile(r"^\s*(?:#|//|/\*|\*|--|<!--|;|')")
_KEY_RE = re2.compile(r"""^\s*-?\s*["']?([A-Za-z0-9_.\-/]+)["']?\s*(?:[:=]|\{)""")
_BLOCK_RE = re2.compile(r"""^\s*([A-Za-z0-9_\-]+)(?:\s+"[^"]*")*\s*\{\s*$""")
_BLOCK_LABELS_RE = re2.compile(r'''^\s*([A-Za-z0-9_\-]+)\s+"([^"]*)"(?:\s+"([^"]*)")?\s*\{\s*$''')
_DOC_DIRS = ("docs/", "doc/", "documentation/")


_COMMENT_STARTS = ("#", "//", "/*", "*", "--", "<!--", ";", "'")


def is_comment(text: str) -> bool:
    """Whether a line is a comment in any of the languages we read (good enough for vetoes).

    `_COMMENT_RE` without the regex engine, as rules ask it of every added line (RE2's `\\s` is [\\t\\n\\f\\r ]).
    """
    return text.lstrip(" \t\n\f\r").startswith(_COMMENT_STARTS)


def is_doc_path(path: str, language: str | None) -> bool:
    low = path.lower()
    return language in DOC_LANGUAGES or low.startswith(_DOC_DIRS) or "/docs/" in low or low.endswith(("changelog", "readme"))


def indent_of(text: str) -> int:
    return len(text) - len(text.lstrip(" \t"))


def post_lines(hunk: Hunk) -> list[DiffLine]:
    return [ln for ln in hunk.lines if ln.kind != "-"]


def enclosing_keys(post: Sequence[DiffLine], index: int, header: str = "") -> list[str]:
    """The keys enclosing post-image line `index`, outermost first, judged by indentation.

    Works for YAML and for indented HCL/JSON/TOML; the hunk header (git's
    guess at the enclosing section) is taken as the outermost key when the
    hunk does not show it.
    """
    keys: list[str] = []
    current = indent_of(post[index].text)
    for j in range(index - 1, -1, -1):
        text = post[j].text
        if not text.strip() or is_comment(text):
            continue
        ind = indent_of(text)
        if ind < current:
            b = _BLOCK_LABELS_RE.search(text)
            m = _KEY_RE.search(text) or _BLOCK_RE.search(text)
            if b:
                keys.append(".".join(part for part in b.groups() if part))
            elif m:
                keys.append(m.group(1))
            current = ind
            if ind == 0:
                break
    if current > 0 and header:
        b = _BLOCK_LABELS_RE.search(header)
        m = _KEY_RE.search(header) or _BLOCK_RE.search(header)
        if b:
            keys.append(".".join(part for part in b.groups() if part))
        elif m:
            keys.append(m.group(1))
        else:
            keys.append(header)
    keys.reverse()
    return keys


def key_of(text: str) -> str | None:
    m = _KEY_RE.search(text)
    return m.group(1) if m else None


@dataclass(slots=True)
class Block:
    """A run of removed and added lines with no context between them."""

    hunk: Hunk
    removed: list[DiffLine]
    added: list[DiffLine]

    @property
    def first_added(self) -> int | None:
        for ln in self.added:
            if ln.new_no is not None and ln.text.strip():
                return ln.new_no
        return self.added[0].new_no if self.added else None


def blocks(ctx: FileContext) -> Iterator[Block]:
    for hunk in ctx.file.hunks:
        for removed, added in hunk.change_blocks():
            yield Block(hunk, removed, added)


def anchor_for_removal(block: Block) -> int | None:
    """Where a problem caused by removing lines is reported: the first added line of the block,
    else the nearest added line of the same hunk within three lines."""
    first = block.first_added
    if first is not None:
        return first
    if not block.removed:
        return None
    lines = block.hunk.lines
    pos = next((i for i, ln in enumerate(lines) if ln is block.removed[-1]), None)
    if pos is None:
        return None
    best: tuple[int, int] | None = None
    for i, ln in enumerate(lines):
        if ln.kind == "+" and ln.new_no is not None and ln.text.strip():
            dist = abs(i - pos)
            if dist <= 3 and (best is None or dist < best[0]):
                best = (dist, ln.new_no)
    return best[1] if best else None


def normalized(text: str) -> str:
    """A line without whitespace, for spotting moved lines."""
    return "".join(text.split())


def added_normalized(ctx: FileContext) -> set[str]:
    return {normalized(ln.text) for ln in ctx.added if ln.text.strip()}


def statement_text(post: Sequence[DiffLine], index: int, max_lines: int = 4) -> str:
    """The post-image line at `index` joined with the following lines until its brackets balance."""
    parts: list[str] = []
    depth = 0
    for j in range(index, min(len(post), index + max_lines)):
        text = post[j].text
        parts.append(text)
        depth += text.count("(") + text.count("[") + text.count("{")
        depth -= text.count(")") + text.count("]") + text.count("}")
        if depth <= 0:
            break
    return " ".join(p.strip() for p in parts)


def window(post: Sequence[DiffLine], index: int, before: int, after: int) -> list[DiffLine]:
    return list(post[max(0, index - before): index + after + 1])


def index_in(post: Sequence[DiffLine], number: int) -> int | None:
    """Index of the first non-removed line numbered `number` in `post`, or None.

    Rules call this once per candidate line on the same list, so the answer comes from an index of
    the last list asked about (rebuilt when another list, or a list of another length, is asked):
    a lookup instead of a scan, which made a 6,000-line hunk cost seconds.
    """
    if len(post) < 16:
        for i, ln in enumerate(post):
            if ln.new_no == number and ln.kind != "-":
                return i
        return None
    cached = _INDEX_CACHE[0]
    if cached is None or cached[0] is not post or cached[1] != len(post):
        index: dict[int | None, int] = {}
        for i, ln in enumerate(post):
            if ln.kind != "-" and ln.new_no not in index:
                index[ln.new_no] = i
        cached = (post, len(post), index)
        _INDEX_CACHE[0] = cached
    return cached[2].get(number)


# (list, its length, new number -> first index): one entry, holding the list so its id stays its own.
_INDEX_CACHE: list[tuple[Sequence[DiffLine], int, dict[int | None, int]] | None] = [None]


_FALSE_VALUE_RE = re2.compile(r"""(?i)^\s*-?\s*["']?[A-Za-z0-9_.\-]+["']?\s*[:=]\s*["']?(?:false|off|no|none|disabled?|0)["']?\s*(?:[,#;]|//|$)""")
_SWITCH_KEYS = frozenset({"enabled", "enable", "active", "on", "required", "require", "enforced", "enforce", "mode", "level", "log", "logging"})
_SWITCH_KEY_RE = re2.compile(r"^(?:enable|enabled|is_enabled|is_active)[_\-]\w+$|^\w+[_\-](?:enabled|logging)$")


def nested_switch_off(ctx: FileContext, topic: object) -> Iterator[tuple[DiffLine, list[str]]]:
    """Added `enabled: false`-style lines of nested config whose enclosing keys match `topic` (RE2).

    `topic` is searched in the lowercase dotted key path, so `audit:` /
    `enabled: false` is found wherever the hunk shows the parent key.
    """
    if ctx.language not in NESTED_CONFIG:
        return
    for hunk in ctx.file.hunks:
        post: list[DiffLine] | None = None
        for ln in hunk.lines:
            if ln.kind != "+" or _FALSE_VALUE_RE.search(ln.text) is None:
                continue
            key = (key_of(ln.text) or "").lower()
            if key not in _SWITCH_KEYS and _SWITCH_KEY_RE.search(key) is None:
                continue
            if post is None:
                post = post_lines(hunk)
            idx = next(i for i, p in enumerate(post) if p is ln)
            parents = enclosing_keys(post, idx, hunk.header)
            path = ".".join(parents).lower()
            if topic.search(path) is not None:  # type: ignore[attr-defined]
                yield ln, parents


_VALUE_OFF_RE = re2.compile(
    r"""(?i)(?:^|[\s{,])["']?value["']?\s*[:=]\s*["']?(?:false|off|no|none|disabled?|0)["']?\s*(?:[,#;}]|//|$)"""
)
_SETTING_NAME_RE = re2.compile(r"""(?i)(?:^|[\s{,-])["']?(?:name|parameter_?name|key)["']?\s*[:=]\s*["']?([^"'\s,}#]+)""")


def named_setting_off(ctx: FileContext, topic: object) -> Iterator[tuple[DiffLine, str]]:
    """Added `value = "off"` lines whose sibling `name = "..."` matches `topic` (RE2, lowercase name).

    Database flags, parameter groups, server configurations and container env
    vars spell a switch as a name/value pair (`name = "require_secure_transport"`
    / `value = "OFF"`, `- name: AUDIT_ENABLED` / `value: "false"`): the value
    line alone does not say what it turns off, the name a line or two away does.
    """
    if ctx.language not in NESTED_CONFIG:
        return
    for hunk in ctx.file.hunks:
        post: list[DiffLine] | None = None
        for ln in hunk.lines:
            if ln.kind != "+" or "value" not in ln.text.lower() or _VALUE_OFF_RE.search(ln.text) is None:
                continue
            if post is None:
                post = post_lines(hunk)
            idx = index_in(post, ln.new_no or 0)
            if idx is None:
                continue
            m = _SETTING_NAME_RE.search(ln.text)
            if m is None:
                indent = indent_of(ln.text)
                for j in (idx - 1, idx - 2, idx - 3, idx + 1, idx + 2):
                    if 0 <= j < len(post) and abs(indent_of(post[j].text) - indent) <= 2:
                        m = _SETTING_NAME_RE.search(post[j].text)
                        if m is not None:
                            break
            if m is not None and topic.search(m.group(1).lower()) is not None:  # type: ignore[attr-defined]
                yield ln, m.group(1)


def udiff(path: str, *lines: str, start: int = 1) -> str:
    """A one-hunk unified diff of `path` from marked lines (" ctx", "-old", "+new"), with correct counts.

    Structural rules carry whole diffs as examples; writing them through this
    keeps their hunk headers right.
    """
    old = sum(1 for ln in lines if ln[:1] in (" ", "-"))
    new = sum(1 for ln in lines if ln[:1] in (" ", "+"))
    old_start = start if old else 0
    new_start = start if new else 0
    body = "\n".join(lines)
    return (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
        f"@@ -{old_start},{old} +{new_start},{new} @@\n{body}\n"
    )


@cache
def _hint_re(hints: tuple[str, ...]) -> object:
    return re2.compile("|".join(re2.escape(h) for h in hints))


def any_hint(lines: Sequence[DiffLine], hints: Sequence[str], ctx: FileContext | None = None) -> bool:
    """Whether any of `hints` (lowercase substrings) occurs in these lines: one linear scan of their joined text.

    With `ctx` and `lines is ctx.added`, the joined lowercase text is built once per file and reused.
    """
    if ctx is not None and lines is ctx.added:
        joined = ctx.__dict__.get("_added_text_lower")
        if joined is None:
            joined = "\n".join(ctx.added_lower)
            ctx.__dict__["_added_text_lower"] = joined
    else:
        joined = "\n".join(ln.text for ln in lines).lower()
    return _hint_re(tuple(hints)).search(joined) is not None  # type: ignore[attr-defined]


# ASCII classes only and no nested repetition: the stdlib engine gives RE2's answers in linear time,
# and its findall runs ~20x faster than RE2's Python wrapper, which builds a match object per word.
_WORD_RE = re.compile(r"[A-Z]+(?:[a-z0-9]+)?|[a-z0-9]+")


def words_of(text: str) -> list[str]:
    """Lowercase identifier words of any length of text (camelCase, snake_case, dotted), in order.

    Like the vocabulary's `split_words`, which is capped for identifiers, but
    for whole lines and windows of lines.
    """
    return [w.lower() for w in _WORD_RE.findall(text)]
