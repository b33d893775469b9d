"""What a structural rule sees of one file: its hunks, their lines and their syntax trees.

A `FileContext` is built once per file by the engine and handed to every
structural rule's `check`. It answers the questions rules keep asking -- which
added lines mention a word, what was removed next to this line, which function
is this in, what does tree-sitter make of the hunk -- and caches the answers,
so ten rules asking about one hunk parse it once.
"""

from __future__ import annotations

import bisect
import re
from itertools import accumulate
from operator import itemgetter
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

import re2
from re2 import _re2

from assistant.diffs import DiffLine, FileDiff, Hunk
from assistant.review.vocabulary import PhiVocabulary

if TYPE_CHECKING:
    from tree_sitter import Node, Tree

T = TypeVar("T")

# Not "spec": OpenAPI and Kubernetes specs live in spec/ directories too.
_TEST_DIR_PARTS = ("test", "tests", "__tests__", "testdata", "fixtures", "fixture", "mocks", "__mocks__", "e2e")
_TEST_CLASS_RE = re.compile(r"[a-z0-9](?:Test|Tests|IT|Spec)$")


def is_test_path(path: str) -> bool:
    """Whether a path holds tests or test fixtures (`tests/`, `test_x.py`, `x_test.go`, `X.spec.ts`, `FooTest.java`)."""
    parts = path.lower().split("/")
    if any(p in _TEST_DIR_PARTS for p in parts[:-1]):
        return True
    name = parts[-1]
    stem = name.rsplit(".", 1)[0]
    original_stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return (
        name.startswith("test_")
        or stem.endswith(("_test", "_tests", ".test", ".spec", "_spec"))
        or _TEST_CLASS_RE.search(original_stem) is not None
        or name in {"conftest.py"}
    )


_LINE_REGEXPS: dict[str, object] = {}
_SCAN_REGEXPS: dict[bytes, object] = {}
_UNANCHORED = _re2.RE2.Anchor.UNANCHORED


def _scan_regexp(pattern: bytes):  # type: ignore[no-untyped-def]
    """RE2's own regexp object for a bytes `pattern` as `re2.compile` builds it, minus captures (only where
    matches start and end is asked: the overall match is the same with or without them)."""
    found = _SCAN_REGEXPS.get(pattern)
    if found is None:
        options = re2.Options()
        options.never_capture = True
        found = _re2.RE2(pattern, options)
        if not found.ok():
            raise re2.error(found.error())
        _SCAN_REGEXPS[pattern] = found
    return found


def _line_regexp(pattern: str):  # type: ignore[no-untyped-def]
    """RE2's own regexp object for `pattern` run line by line over a joined text (see `lines_matching`)."""
    found = _LINE_REGEXPS.get(pattern)
    if found is None:
        options = re2.Options()
        options.never_nl = True
        options.never_capture = True  # only whether and where: the DFA alone answers
        found = _re2.RE2(("(?m:" + pattern + ")").encode("utf-8"), options)
        if not found.ok():
            raise re2.error(found.error())
        _LINE_REGEXPS[pattern] = found
    return found


_NEW_NO = itemgetter(2)  # DiffLine.new_no
_TEXT = itemgetter(1)  # DiffLine.text


def _find_span(
    spans: tuple[list[int], list[tuple[int, Hunk, list[DiffLine]]]], number: int
) -> tuple[int, Hunk, list[DiffLine]] | None:
    starts, entries = spans
    k = bisect.bisect_right(starts, number) - 1
    if k < 0:
        return None
    entry = entries[k]
    return entry if number - entry[0] < len(entry[2]) else None


class FileContext:
    """One file of a diff, as structural rules see it."""

    def __init__(self, file: FileDiff, vocabulary: PhiVocabulary) -> None:
        self.file = file
        self.path = file.path
        self.language = file.language
        self.vocabulary = vocabulary
        self._trees: dict[int, Tree | None] = {}
        self._memo: dict[object, object] = {}

    def memo(self, key: object, factory: Callable[[], T]) -> T:
        """A per-file cache shared by rules: the first rule to ask computes, the rest reuse."""
        if key not in self._memo:
            self._memo[key] = factory()
        return self._memo[key]  # type: ignore[return-value]

    # -- lines ---------------------------------------------------------------

    @cached_property
    def is_test(self) -> bool:
        return is_test_path(self.file.path)

    @cached_property
    def added(self) -> list[DiffLine]:
        """Every added line of the file, in order."""
        return [ln for hunk in self.file.hunks for ln in hunk.lines if ln.kind == "+"]

    @cached_property
    def added_numbers(self) -> frozenset[int]:
        return frozenset(ln.new_no for ln in self.added if ln.new_no is not None)

    @cached_property
    def added_lower(self) -> list[str]:
        return [ln.text.lower() for ln in self.added]

    @cached_property
    def _line_index(self) -> dict[int, tuple[Hunk, int]]:
        index: dict[int, tuple[Hunk, int]] = {}
        for hunk in self.file.hunks:
            for i, ln in enumerate(hunk.lines):
                if ln.new_no is not None and ln.kind != "-":
                    index[ln.new_no] = (hunk, i)
        return index

    def lines_with(self, *keywords: str) -> Iterator[DiffLine]:
        """Added lines whose lowercase text contains one of `keywords` (lowercase)."""
        for ln, low in zip(self.added, self.added_lower, strict=True):
            if any(k in low for k in keywords):
                yield ln

    def added_in(self, numbers: frozenset[int] | set[int]) -> list[DiffLine]:
        """The added lines whose new-file numbers are in `numbers`, in order (as `added` holds them):
        found by number when the hunks allow it (`_spans`), without walking every added line."""
        if self._spans is None or len(numbers) * 4 > len(self.added):
            return [ln for ln in self.added if ln.new_no in numbers]
        out = []
        for number in sorted(numbers):
            ln = self.new_line(number)
            if ln is not None and ln.kind == "+":
                out.append(ln)
        return out

    def new_line(self, number: int) -> DiffLine | None:
        """The added or context line with this new-file number, when the diff shows it."""
        spans = self._spans
        if spans is None:
            found = self._line_index.get(number)
            return found[0].lines[found[1]] if found else None
        found_span = _find_span(spans, number)
        return found_span[2][number - found_span[0]] if found_span else None

    def hunk_of(self, number: int) -> Hunk | None:
        spans = self._spans
        if spans is None:
            found = self._line_index.get(number)
            return found[0] if found else None
        found_span = _find_span(spans, number)
        return found_span[1] if found_span else None

    @cached_property
    def _spans(self) -> tuple[list[int], list[tuple[int, Hunk, list[DiffLine]]]] | None:
        """Each hunk's post-image as (first new-file number, hunk, post lines), with the first numbers,
        when every post-image is numbered consecutively and the hunks follow each other (as `parse_diff`
        builds them): a line is then found by bisecting hunks, with no per-line index. None otherwise,
        and the per-line dicts answer."""
        starts: list[int] = []
        entries: list[tuple[int, Hunk, list[DiffLine]]] = []
        last = None
        for hunk in self.file.hunks:
            post = self.post_lines(hunk)
            if not post:
                continue
            first = post[0].new_no
            if first is None or (last is not None and first <= last):
                return None
            if list(map(_NEW_NO, post)) != list(range(first, first + len(post))):
                return None
            starts.append(first)
            entries.append((first, hunk, post))
            last = first + len(post) - 1
        return starts, entries

    @cached_property
    def _post_index(self) -> dict[int, tuple[list[DiffLine], int]]:
        index: dict[int, tuple[list[DiffLine], int]] = {}
        for hunk in self.file.hunks:
            post = self.post_lines(hunk)
            for j, ln in enumerate(post):
                if ln.new_no is not None:
                    index[ln.new_no] = (post, j)
        return index

    def position(self, number: int) -> tuple[list[DiffLine], int] | None:
        """(post-image lines of the hunk, index) of new-file line `number`, when the diff shows it."""
        spans = self._spans
        if spans is None:
            return self._post_index.get(number)
        found = _find_span(spans, number)
        return (found[2], number - found[0]) if found else None

    def neighbours(self, number: int, before: int = 3, after: int = 3) -> list[DiffLine]:
        """The post-image lines around `number` (context and added, no removed), within its hunk."""
        found = self.position(number)
        if not found:
            return []
        post, j = found
        return post[max(0, j - before): j + after + 1]

    @cached_property
    def _joined_post(self) -> tuple[list[DiffLine], bytes, list[int]]:
        """Post-image lines, their UTF-8 text joined by newlines, and each line's byte offset.

        Bytes, not str: RE2 works on UTF-8, and handing it bytes avoids a str<->byte offset
        conversion per match (which costs more than the match on long files).
        """
        lines = [ln for hunk in self.file.hunks for ln in self.post_lines(hunk)]
        texts = list(map(_TEXT, lines))
        joined = "\n".join(texts)
        if joined.isascii():  # nearly all code: one encode, and byte offsets are character offsets
            starts = [0, *accumulate(len(t) + 1 for t in texts)][: len(texts)]
            return lines, joined.encode("ascii"), starts
        encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
        starts = []
        pos = 0
        for e in encoded:
            starts.append(pos)
            pos += len(e) + 1
        return lines, b"\n".join(encoded), starts

    def scan(self, pattern: str, *, added_only: bool = True, lower: bool = True) -> list[DiffLine]:
        """Lines (in order) where an RE2 `pattern` matches, found with one linear pass over the file.

        This is how rules should find candidate lines: one regex call per file, not one per line.
        With `lower` the text is lowercased first (write the pattern in lowercase).
        """
        key = ("scan", pattern, added_only, lower)
        found = self._memo.get(key)
        if found is not None:
            return found  # type: ignore[return-value]
        if added_only:
            out = [ln for ln in self.scan(pattern, added_only=False, lower=lower) if ln.kind == "+"]
        else:
            lines, text, starts = self._joined_post
            out = self._lines_matching(pattern.encode("utf-8"), self._lower_text if lower else text)
        self._memo[key] = out
        return out

    @cached_property
    def _lower_text(self) -> bytes:
        return self._joined_post[1].lower()

    @cached_property
    def post_bytes_lower(self) -> bytes | None:
        """The post-image's lines joined by newlines, lowercased, as ASCII bytes; None when not ASCII."""
        joined = self._joined_post[1]
        return self._lower_text if joined.isascii() else None

    def _lines_matching(self, pattern: bytes, hay: bytes) -> list[DiffLine]:
        """The lines where the matches of `pattern` over `hay` start, in order: `finditer`'s matches
        exactly (same steps, empty matches included), without building a match object per match."""
        lines, _text, starts = self._joined_post
        regexp = _scan_regexp(pattern)
        out: list[DiffLine] = []
        last = -1
        pos, end = 0, len(hay)
        while True:
            spans = regexp.Match(_UNANCHORED, hay, pos, end)
            first, after = spans[0]
            if first < 0:
                break
            idx = bisect.bisect_right(starts, first) - 1
            if idx != last:
                last = idx
                out.append(lines[idx])
            if pos == end:
                break
            pos = pos + 1 if pos == after else after  # an empty match: step over one byte, as finditer does
        return out

    def lines_matching(self, pattern: str) -> frozenset[int]:
        """New-file numbers of the post-image lines whose own text an RE2 `pattern` searches successfully.

        The same answer as `compile(pattern).search(line.text)` asked of every line, from one pass over
        the file: the pattern runs multi-line (`^`/`$` at line ends) and with RE2's `never_nl`, so no
        match can hold a newline, and after a line's first match the search moves on to the next line.
        (Unlike `scan`, whose matches may run across lines and count for the line they start on.)
        """
        key = ("lines", pattern)
        found = self._memo.get(key)
        if found is not None:
            return found  # type: ignore[return-value]
        lines, text, starts = self._joined_post
        regexp = _line_regexp(pattern)
        out: set[int] = set()
        if not lines:
            self._memo[key] = frozenset()
            return frozenset()
        end = len(text)
        pos = 0
        n = len(starts)
        while pos <= end:
            spans = regexp.Match(_UNANCHORED, text, pos, end)
            if spans[0][0] < 0:
                break
            idx = bisect.bisect_right(starts, spans[0][0]) - 1
            no = lines[idx].new_no
            if no is not None:
                out.add(no)
            if idx + 1 >= n:
                break
            pos = starts[idx + 1]
        result = frozenset(out)
        self._memo[key] = result
        return result

    @cached_property
    def phi_hint_lines(self) -> frozenset[int]:
        """New-file numbers of post-image lines that contain a PHI term's word or a record word (a
        necessary condition for holding PHI): PHI rules skip everything else without looking.

        Each line is asked on its own (`lines_matching`): a short word at the start of a line counts
        for that line, not the one before it."""
        if not self._joined_post[0]:
            return frozenset()
        return self.lines_matching(self.vocabulary.hint_re.pattern)  # type: ignore[attr-defined]

    def change_block(self, number: int) -> tuple[list[DiffLine], list[DiffLine]]:
        """The (removed, added) run of changed lines that contains added line `number`."""
        hunk = self.hunk_of(number)
        if hunk is None:
            return [], []
        for removed, added in hunk.change_blocks():
            if any(ln.new_no == number for ln in added):
                return removed, added
        return [], []

    def removed_text(self, hunk: Hunk | None = None) -> str:
        """The text of removed lines, of one hunk or of the whole file."""
        hunks = [hunk] if hunk is not None else self.file.hunks
        return "\n".join(ln.text for h in hunks for ln in h.lines if ln.kind == "-")

    def enclosing_header(self, number: int) -> str:
        """The hunk header's section text (git's guess at the enclosing function) for this line."""
        hunk = self.hunk_of(number)
        return hunk.header if hunk else ""

    # -- syntax --------------------------------------------------------------

    def syntax(self, hunk: Hunk) -> Tree | None:
        """Tree-sitter tree of the hunk's post-image, parsed once on first request; None without a grammar."""
        key = id(hunk)
        if key not in self._trees:
            from assistant.review.syntax import parse

            self._trees[key] = parse(self.language, hunk.post_image())
        return self._trees[key]

    def post_lines(self, hunk: Hunk) -> list[DiffLine]:
        """The hunk's post-image lines; row r of `syntax(hunk)` is `post_lines(hunk)[r]` (computed once)."""
        key = ("post", id(hunk))
        found = self._memo.get(key)
        if found is None:
            found = [ln for ln in hunk.lines if ln.kind != "-"]
            self._memo[key] = found
        return found  # type: ignore[return-value]

    def line_of(self, hunk: Hunk, node: Node) -> int:
        """The new-file line number where a syntax node of `syntax(hunk)` starts."""
        post = self.post_lines(hunk)
        row = min(node.start_point[0], len(post) - 1)
        return post[row].new_no or hunk.new_start

    def nodes_on(self, hunk: Hunk, number: int, types: Iterable[str]) -> list[Node]:
        """Syntax nodes of the given types that start on new-file line `number` (outermost first)."""
        tree = self.syntax(hunk)
        if tree is None:
            return []
        post = self.post_lines(hunk)
        rows = [r for r, ln in enumerate(post) if ln.new_no == number]
        if not rows:
            return []
        row = rows[0]
        wanted = set(types)
        out: list[Node] = []
        stack = [tree.root_node]
        while stack:
            node = stack.pop()
            if node.start_point[0] > row or node.end_point[0] < row:
                continue
            if node.type in wanted and node.start_point[0] == row:
                out.append(node)
            stack.extend(reversed(node.children))
        return out
