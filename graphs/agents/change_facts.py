"""What a change is, read from its files: the facts the commit writer names and classifies.

Kept apart from the writer because it is the part that must stay fast and
linear on a 100 MB diff (one pass per file, cached per message, possessive
patterns), while the writer is about wording.
"""

from __future__ import annotations

import posixpath
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import re2

from assistant.diffs import FileDiff
from assistant.filekinds import kind_of

__all__ = ["Facts", "all_unique", "definitions", "facts", "facts_cache", "infer_scope", "infer_type", "routes", "scope_word"]

_GENERIC_DIRS = {
    "src", "lib", "libs", "app", "apps", "pkg", "internal", "main", "java", "kotlin", "python", "com", "org", "net",
    "io", "code", "source", "sources", "packages", "modules", "cmd", "test", "tests", "spec", "specs", "__tests__",
    "resources", "scripts",
}

# Definitions on added lines: the names a feature or a fix is about.
# RE2 (linear time) behind cheap substring hints: a 1 MB added line must not stall a commit hook.
_DEF_HINTS = ("def ", "class ", "func", "function", "interface ", "struct ", "enum ", "type ", "public ", "private ",
              "protected ", "internal ", "=>", "resource ", "data ", "module ")
# Every _ROUTE_RE match shows one of these (lower-cased) on its own line, so only such lines are searched.
_ROUTE_HINTS = ("@", "handlefunc", "[http", ".get(", ".post(", ".put(", ".patch(", ".delete(")
# Definitions live on one line: no space class below may cross a newline, and every open-ended
# repetition is possessive (`*+`, `++`), so the stdlib engine (C speed per match, which RE2's
# Python wrapper is not) cannot backtrack: matching stays linear on a hostile 1 MB line.
_DEF_RE = re.compile(
    r"\n[ \t]*+(?=[a-z])(?:"  # searched in "\n" + text: a literal first character lets the engine skip to line starts
    r"(?:async[ \t]++def|def|class|func(?:[ \t]*+\([^)\n]*+\))?|function\*?|interface|struct|enum|type)[ \t]++"
    r"([A-Za-z_][A-Za-z0-9_]*+)"
    r"|(?:public|private|protected|internal)[ \t]([^(\n=;{]*+)\("
    r"|(?:export[ \t]++)?(?:const|let)[ \t]++([A-Za-z_$][\w$]*+)[ \t]*+=[ \t]*+(?:async[ \t]*+)?"
    r"(?:\([^)\n]*+\)|[A-Za-z_$][\w$]*+)[ \t]*+=>"
    r"|(?:resource|data|module)[ \t]++\"((?:[^\"\n]++\"[ \t]++\")?[^\"\n]++)\""
    r")"
)
_NOT_NAMES = frozenset({"if", "for", "while", "switch", "return", "new", "catch", "main"})
# New HTTP routes on added lines: Flask/FastAPI, Express, Spring, ASP.NET, Go net/http.
_ROUTE_RE = re.compile(
    r"""@(?:\w++\.)?(get|post|put|patch|delete|route)\([ \t]*+["']([^"'\n]++)["']"""
    r"""|\b(?:app|router|r|api)\.(get|post|put|patch|delete)\([ \t]*+["'`]([^"'`\n]++)["'`]"""
    r"""|@(Get|Post|Put|Patch|Delete|Request)Mapping\([ \t]*+(?:(?:value|path)[ \t]*+=[ \t]*+)?["']([^"'\n]++)["']"""
    r"""|\[Http(Get|Post|Put|Patch|Delete)\([ \t]*+"([^"\n]++)"[ \t]*+\)\]"""
    r'|\bHandleFunc\([ \t]*+"(?:(GET|POST|PUT|PATCH|DELETE) )?([^"\n]++)"',
    re.I,
)
_PERF_WORDS = re2.compile(r"(?i)\b(?:lru_cache|functools\.cache|memoi[sz]e|cache[sd]?|batch(?:ed|ing)?|prefetch|vectori[sz]ed?)\b")
_FIX_WORDS = re2.compile(r"(?i)\b(?:fix(?:e[sd])?|bug|wrong|incorrect|off-by-one|regression|workaround|typo)\b")


# --------------------------------------------------------------------------- classification


def definitions(lines: Iterable[str]) -> list[str]:
    """Names defined on the given lines, in order; one pass over the joined text."""
    blob = "\n".join(lines)
    found = list(_DEF_RE.finditer("\n" + blob))
    if not found or not _hinted(found, blob):
        return []
    names: list[str] = []
    for m in found:
        if m.group(2) is not None:  # `public static List<X> name(`: the last word before the parenthesis
            words = m.group(2).split()
            name = words[-1] if len(words) >= 2 and words[-1].isidentifier() else None
        else:
            name = next((g for g in m.groups() if g), None)
        if not name:
            continue
        if '"' in name:
            name = re.sub(r'"\s+"', ".", name)
        if name.startswith("__") or name in _NOT_NAMES:
            continue  # dunder methods and keywords say nothing about the change
        if name not in names:
            names.append(name)
    return names


def _hinted(found: list[re.Match[str]], blob: str) -> bool:
    """Whether `blob` holds one of _DEF_HINTS (the rule: no hint, no definitions); a match usually shows one itself."""
    text = found[0].group(0)
    return any(h in text for h in _DEF_HINTS) or any(h in blob for h in _DEF_HINTS)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the writer needs from one file, computed once per message (a big diff has 50k+ lines)."""

    added: list[str]
    removed: list[str]
    added_defs: list[str]
    removed_defs: list[str]
    added_routes: list[str]
    removed_routes: list[str]


_CACHE: ContextVar[dict[int, tuple[FileDiff, Facts]] | None] = ContextVar("commit_writer_facts", default=None)


@contextmanager
def facts_cache() -> Iterator[None]:
    token = _CACHE.set({})
    try:
        yield
    finally:
        _CACHE.reset(token)


def facts(f: FileDiff) -> Facts:
    cache = _CACHE.get()
    if cache is not None:
        hit = cache.get(id(f))
        if hit is not None and hit[0] is f:
            return hit[1]
    added = [ln.text for h in f.hunks for ln in h.lines if ln.kind == "+"]
    removed = [ln.text for h in f.hunks for ln in h.lines if ln.kind == "-"]
    found = Facts(added, removed, definitions(added), definitions(removed), routes(added), routes(removed))
    if cache is not None:
        cache[id(f)] = (f, found)
    return found


def _added_text(f: FileDiff) -> list[str]:
    return facts(f).added


def _removed_text(f: FileDiff) -> list[str]:
    return facts(f).removed


def all_unique(items: Iterable[list[str]]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for group in items:
        for item in group:
            if item not in seen:
                seen.add(item)
                out.append(item)
    return out


def infer_type(files: Sequence[FileDiff]) -> str:
    """feat/fix/refactor/test/docs/chore/ci/build/perf, from what the files are and how they changed."""
    if not files:
        return "chore"
    kinds = Counter(kind_of(f.path) for f in files)
    code = [f for f in files if kind_of(f.path) == "code"]
    if not code:
        # No source code changed: the most common non-code kind, ties broken by a fixed order.
        order = ("ci", "build", "test", "docs", "chore")
        return max(order, key=lambda k: (kinds.get(k, 0), -order.index(k)))
    added = [t for f in code for t in _added_text(f)]
    removed = [t for f in code for t in _removed_text(f)]
    if all(f.status == "renamed" for f in code) and len(added) <= 2 * max(1, len(removed)):
        return "refactor"
    per_file = [facts(f) for f in code]
    new_defs = set(all_unique(x.added_defs for x in per_file)) - set(all_unique(x.removed_defs for x in per_file))
    if any(f.status == "added" for f in code) or new_defs or any(x.added_routes for x in per_file):
        return "feat"
    if (removed and not added) or len(removed) >= 2 * len(added) + 3:
        return "refactor"  # mostly deletions: dead code removed
    stripped_added = sorted(t.strip() for t in added if t.strip())
    stripped_removed = sorted(t.strip() for t in removed if t.strip())
    if stripped_added == stripped_removed:
        return "refactor"  # the same lines moved or re-indented
    added_blob = "\n".join(added)
    if _PERF_WORDS.search(added_blob) and not _PERF_WORDS.search("\n".join(removed)):
        return "perf"
    if _FIX_WORDS.search(added_blob) or (removed and len(added) + len(removed) <= 16):
        return "fix"
    return "feat"


def routes(lines: Iterable[str]) -> list[str]:
    """`GET /patients/{id}` for each route declared on the given lines, in order.

    _ROUTE_RE runs only over the lines that show a route hint (every route
    does, on its own line), which is the same answer at a fraction of the cost.
    """
    blob = "\n".join(lines)
    lowered = blob.lower()
    if len(lowered) == len(blob):  # positions in `lowered` are positions in `blob`
        spans: set[tuple[int, int]] = set()
        for hint in _ROUTE_HINTS:
            at = lowered.find(hint)
            while at >= 0:
                start = blob.rfind("\n", 0, at) + 1
                end = blob.find("\n", at)
                if end < 0:
                    end = len(blob)
                spans.add((start, end))
                at = lowered.find(hint, end)  # the next line that shows it
        if not spans:
            return []
        blob = "\n".join(blob[start:end] for start, end in sorted(spans))
    elif not any(h in lowered for h in _ROUTE_HINTS):
        return []
    out: list[str] = []
    for m in _ROUTE_RE.finditer(blob):
        groups = m.groups()
        method, path = next(((groups[i], groups[i + 1]) for i in range(0, len(groups), 2) if groups[i + 1]), (None, None))
        if path is None:
            continue
        verb = (method or "").upper()
        verb = "" if verb in ("ROUTE", "REQUEST", "") else verb + " "
        route = f"{verb}{path}"
        if route not in out:
            out.append(route)
    return out


def scope_word(part: str) -> str:
    word = part.lower()
    for prefix in ("test_",):
        if word.startswith(prefix):
            word = word[len(prefix):]
    for suffix in ("_test", "_spec", "test", ".test", ".spec", "tests"):
        if word.endswith(suffix) and len(word) > len(suffix):
            word = word[: -len(suffix)]
    word = re.sub(r"[^a-z0-9]+", "-", word).strip("-")
    if len(word) > 24:
        cut = word[:25]
        word = cut[: cut.rfind("-")] if "-" in cut else word[:24]
    return word.strip("-")


def infer_scope(files: Sequence[FileDiff]) -> str | None:
    """The area the change is in: the deepest meaningful common directory, or the file for a single file."""
    paths = sorted({f.path for f in files if f.path})
    if not paths:
        return None
    if len(paths) == 1:
        stem = posixpath.basename(paths[0]).split(".")[0] or posixpath.basename(paths[0]).lstrip(".").split(".")[0]
        word = scope_word(stem)
        if (word and word not in _GENERIC_DIRS and word not in ("index", "init", "main", "mod", "readme")
                and not word[:1].isdigit()):  # `20240611_add_ids.sql` is a migration, scoped by its folder
            return word
    dirs = [p.split("/")[:-1] for p in paths]
    common: list[str] = []
    for parts in zip(*dirs):
        if all(part == parts[0] for part in parts):
            common.append(parts[0])
        else:
            break
    for part in reversed(common):
        word = scope_word(part)
        if word and word not in _GENERIC_DIRS and not word.startswith("."):
            return word
    return None


# --------------------------------------------------------------------------- the draft
