"""Unified diff parsing: real-world git and `diff -u` output into files, hunks and lines.

The input is split into one chunk per file by a small line scanner that keeps
hunk counts, so a 100 MB diff is parsed file by file in bounded memory and a
malformed line is reported with its line number; each chunk is then parsed by
`unidiff`, the maintained parser, which knows git's extended headers (renames,
modes, binary markers).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import groupby, islice, repeat
from operator import itemgetter
from typing import BinaryIO, Literal, NamedTuple

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

FileStatus = Literal["added", "deleted", "modified", "renamed"]

_HUNK_RE = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")

_EXTENSIONS: dict[str, str] = {
    ".py": "python",
    ".java": "java",
    ".kt": "kotlin",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".cjs": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".go": "go",
    ".cs": "csharp",
    ".sql": "sql",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".tf": "terraform",
    ".tfvars": "terraform",
    ".hcl": "terraform",
    ".env": "dotenv",
    ".properties": "properties",
    ".json": "json",
    ".xml": "xml",
    ".rb": "ruby",
    ".php": "php",
    ".sh": "shell",
    ".md": "markdown",
    ".rst": "markdown",
    ".txt": "text",
    ".toml": "toml",
    ".ini": "ini",
    ".cfg": "ini",
    ".conf": "ini",
}


def language_for(path: str) -> str | None:
    """The language a path is written in, judged by its name (`.env.prod` and `Dockerfile` included)."""
    name = path.rsplit("/", 1)[-1].lower()
    if name == ".env" or name.startswith(".env.") or name.endswith(".env"):
        return "dotenv"
    if name == "dockerfile" or name.startswith("dockerfile."):
        return "dockerfile"
    dot = name.rfind(".")
    if dot < 0:
        return None
    return _EXTENSIONS.get(name[dot:])


class DiffError(ValueError):
    """Input that is not a readable unified diff; `line` is 1-based in the input."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.reason = message


class DiffLine(NamedTuple):
    """One line of a hunk. A named tuple, not a dataclass: a big diff has millions, made in C (`_new_line`)."""

    kind: str  # "+", "-" or " "
    text: str  # without the marker and the line ending
    new_no: int | None  # line number in the new file (added and context lines)
    old_no: int | None  # line number in the old file (removed and context lines)


@dataclass(slots=True)
class Hunk:
    old_start: int
    old_length: int
    new_start: int
    new_length: int
    header: str  # the text after the second @@ (often the enclosing function)
    lines: list[DiffLine] = field(default_factory=list)

    @property
    def added(self) -> list[DiffLine]:
        return [ln for ln in self.lines if ln.kind == "+"]

    @property
    def removed(self) -> list[DiffLine]:
        return [ln for ln in self.lines if ln.kind == "-"]

    def post_image(self) -> str:
        """The new-file text this hunk shows (context and added lines), for structural parsing."""
        return "\n".join(ln.text for ln in self.lines if ln.kind != "-")

    def change_blocks(self) -> list[tuple[list[DiffLine], list[DiffLine]]]:
        """Runs of adjacent removed/added lines, as (removed, added) pairs, in order."""
        blocks: list[tuple[list[DiffLine], list[DiffLine]]] = []
        removed: list[DiffLine] = []
        added: list[DiffLine] = []
        for ln in self.lines:
            if ln.kind == " ":
                if removed or added:
                    blocks.append((removed, added))
                    removed, added = [], []
            elif ln.kind == "-":
                removed.append(ln)
            else:
                added.append(ln)
        if removed or added:
            blocks.append((removed, added))
        return blocks


@dataclass(slots=True)
class FileDiff:
    path: str  # the new path (the old one for a deleted file), without a/ or b/
    old_path: str | None
    status: FileStatus
    binary: bool = False
    old_mode: str | None = None
    new_mode: str | None = None
    hunks: list[Hunk] = field(default_factory=list)

    @property
    def language(self) -> str | None:
        return language_for(self.path)

    def added_lines(self) -> Iterator[DiffLine]:
        for hunk in self.hunks:
            for ln in hunk.lines:
                if ln.kind == "+":
                    yield ln

    def removed_lines(self) -> Iterator[DiffLine]:
        for hunk in self.hunks:
            for ln in hunk.lines:
                if ln.kind == "-":
                    yield ln


def parse_diff(text: str | bytes) -> list[FileDiff]:
    """Parse a whole diff held in memory."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return list(iter_file_diffs(io.BytesIO(data)))


def iter_file_diffs(stream: BinaryIO | Iterable[bytes]) -> Iterator[FileDiff]:
    """Yield one FileDiff at a time, holding only the current file's text in memory.

    Raises DiffError naming the input line for non-UTF-8 bytes, a hunk line
    that is neither context, addition nor removal, or text that is not a diff.
    Hunk bodies are read here (they are most of the bytes and unidiff's
    per-line objects would halve the throughput), a batch of lines at a time
    (`_hunk_lines`); each file's headers, where git's extended syntax lives,
    go to unidiff.
    """
    header: list[str] = []
    header_start = 1
    hunks: list[Hunk] = []
    saw_header = False
    lineno = 0
    lines = iter(stream)
    for raw in lines:
        lineno += 1
        if raw.startswith(b"\\"):
            continue
        if raw.startswith(b"diff --git ") or (raw.startswith(b"--- ") and hunks):
            if header or hunks:
                yield from _build(header_start, header, hunks)
            header, hunks, header_start = [], [], lineno
        if raw.startswith(b"@@"):
            m = _HUNK_RE.match(raw)
            if not m:
                raise DiffError(lineno, f"malformed hunk header {_show(raw)}; expected '@@ -a,b +c,d @@'")
            if not header:
                raise DiffError(lineno, "hunk without a file header; expected '--- a/path' and '+++ b/path' before it")
            old_no = int(m.group(1))
            new_no = int(m.group(3))
            old_left = int(m.group(2)) if m.group(2) is not None else 1
            new_left = int(m.group(4)) if m.group(4) is not None else 1
            if old_left == 0:
                old_no += 1  # "@@ -0,0" means the old side is empty; keep numbers 1-based
            if new_left == 0:
                new_no += 1
            section = raw[m.end():].decode("utf-8", "replace").strip()
            hunk = Hunk(int(m.group(1)), old_left, int(m.group(3)), new_left, section)
            lineno = _hunk_lines(lines, lineno, hunk.lines, old_left, new_left, old_no, new_no)
            hunks.append(hunk)
            saw_header = True
            continue
        if raw.startswith((b"diff --git ", b"--- ", b"+++ ")):
            saw_header = True
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(lineno, raw, exc) from None
        header.append(text.replace("\r\n", "\n"))
    if not saw_header:
        if any(line.strip() for line in header):
            raise DiffError(1, "this is not a unified diff: no 'diff --git', '---'/'+++' or '@@' header found")
        return
    if header or hunks:
        yield from _build(header_start, header, hunks)


_SMALL_BATCH = 24
_new_line = partial(tuple.__new__, DiffLine)  # DiffLine from a 4-tuple, without a Python-level __new__
_marker = itemgetter(0)
_after_marker = itemgetter(slice(1, None))


def _hunk_lines(
    lines: Iterator[bytes], lineno: int, out: list[DiffLine], old_left: int, new_left: int, old_no: int, new_no: int
) -> int:
    """Read one hunk's body from `lines` into `out`; returns the number of the last input line read.

    The body is read in batches of max(old_left, new_left) lines: every body
    line but `\\ No newline` uses up at least one of the two counts, so a batch
    never reaches past the hunk. A batch of plain '+', '-' and ' ' lines is
    counted, decoded and split as one string (the common case, C speed per
    line); any other batch (empty, CR or '\\' lines, bad UTF-8, a line that does
    not belong) goes through `_hunk_lines_slowly`, which reads it line by line
    and names the first bad line exactly as a line-at-a-time parser would.
    """
    while old_left > 0 or new_left > 0:
        batch = list(islice(lines, max(old_left, new_left)))
        if not batch:
            raise DiffError(lineno, "the diff ends inside a hunk (truncated input?)")
        if len(batch) < _SMALL_BATCH:  # a few lines cost less one by one than the batch's fixed work
            lineno, old_left, new_left, old_no, new_no = _hunk_lines_slowly(
                batch, lineno, out, old_left, new_left, old_no, new_no
            )
            continue
        joined = b"".join(batch)
        marked = b"\n" + joined
        added = marked.count(b"\n+")
        removed = marked.count(b"\n-")
        context = marked.count(b"\n ")
        if (
            added + removed + context != len(batch)
            or old_left - removed - context < 0
            or new_left - added - context < 0
            or b"\r" in joined
        ):
            lineno, old_left, new_left, old_no, new_no = _hunk_lines_slowly(
                batch, lineno, out, old_left, new_left, old_no, new_no
            )
            continue
        try:
            text = joined.decode("utf-8")
        except UnicodeDecodeError:
            lineno, old_left, new_left, old_no, new_no = _hunk_lines_slowly(
                batch, lineno, out, old_left, new_left, old_no, new_no
            )
            continue
        body = text.split("\n")
        if len(body) > len(batch):
            body.pop()  # the empty string after the last line's newline
        lineno += len(batch)
        old_left -= removed + context
        new_left -= added + context
        for kind, group in groupby(body, _marker):  # runs of one kind: each made in C
            run = list(map(_after_marker, group))
            n = len(run)
            if kind == "+":
                out.extend(map(_new_line, zip(repeat("+"), run, range(new_no, new_no + n), repeat(None))))
                new_no += n
            elif kind == "-":
                out.extend(map(_new_line, zip(repeat("-"), run, repeat(None), range(old_no, old_no + n))))
                old_no += n
            else:
                out.extend(map(_new_line, zip(repeat(" "), run, range(new_no, new_no + n), range(old_no, old_no + n))))
                new_no += n
                old_no += n
    return lineno


def _hunk_lines_slowly(
    batch: list[bytes], lineno: int, out: list[DiffLine], old_left: int, new_left: int, old_no: int, new_no: int
) -> tuple[int, int, int, int, int]:
    """`_hunk_lines` for one batch, a line at a time: what it does with any batch it cannot take whole."""
    for raw in batch:
        lineno += 1
        marker = raw[:1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_utf8(lineno, raw, exc) from None
        if text.endswith("\n"):
            text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
        if marker == b" " or not text:
            out.append(DiffLine(" ", text[1:], new_no, old_no))
            old_no += 1
            new_no += 1
            old_left -= 1
            new_left -= 1
        elif marker == b"+":
            out.append(DiffLine("+", text[1:], new_no, None))
            new_no += 1
            new_left -= 1
        elif marker == b"-":
            out.append(DiffLine("-", text[1:], None, old_no))
            old_no += 1
            old_left -= 1
        elif marker == b"\\":
            pass  # "\ No newline at end of file"
        else:
            raise DiffError(
                lineno,
                f"expected a hunk line starting with ' ', '+', '-' or '\\' but found {_show(raw)}; "
                "the hunk header's line counts do not match its body (was the diff edited by hand?)",
            )
        if old_left < 0 or new_left < 0:
            raise DiffError(lineno, "hunk is longer than its @@ header says; regenerate the diff with git diff")
    return lineno, old_left, new_left, old_no, new_no


def _not_utf8(lineno: int, raw: bytes, exc: UnicodeDecodeError) -> DiffError:
    return DiffError(
        lineno, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); re-encode the diff as UTF-8"
    )


def _show(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").rstrip("\n")
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


def _strip_prefix(path: str | None) -> str | None:
    if path is None or path == "/dev/null":
        return None
    if path.startswith(("a/", "b/")):
        return path[2:]
    return path


# The header git writes for an ordinary added, deleted or modified file (no rename, copy, binary or
# quoted path): read here directly, since unidiff would cost a third of parsing a diff of many files.
# Any other header goes to unidiff, which stays the authority; the two agree on every header of this shape.
_PLAIN_GIT_HEADER = re.compile(
    r"diff --git a/([^\s\"\\]+) b/\1\n"
    r"(?:(new file mode|deleted file mode) (\d+)\n|old mode (\d+)\nnew mode (\d+)\n)?"
    r"(?:index [0-9a-f]+\.\.[0-9a-f]+(?: \d+)?\n)?"
    r"--- (?:a/\1|(/dev/null))\n"
    r"\+\+\+ (?:b/\1|(/dev/null))\n\Z"
)


def _plain(header: list[str], hunks: list[Hunk]) -> FileDiff | None:
    """The FileDiff of a plain git header (see `_PLAIN_GIT_HEADER`), or None for unidiff to read."""
    if len(header) > 7 or not header[0].startswith("diff --git a/"):
        return None
    m = _PLAIN_GIT_HEADER.match("".join(header))
    if m is None:
        return None
    path, kind, mode, old_mode, new_mode, no_source, no_target = m.groups()
    if kind == "new file mode" and no_source and not no_target:
        return FileDiff(path=path, old_path=None, status="added", new_mode=mode, hunks=hunks)
    if kind == "deleted file mode" and no_target and not no_source:
        return FileDiff(path=path, old_path=path, status="deleted", old_mode=mode, hunks=hunks)
    if kind is None and not no_source and not no_target:
        return FileDiff(path=path, old_path=path, status="modified", old_mode=old_mode, new_mode=new_mode, hunks=hunks)
    return None  # a /dev/null side without its mode line (or the reverse): unusual, so unidiff decides


def _build(start: int, header: list[str], hunks: list[Hunk]) -> Iterator[FileDiff]:
    if not any(line.startswith(("diff --git ", "--- ")) for line in header):
        return  # preamble such as the commit message of `git format-patch`
    plain = _plain(header, hunks)
    if plain is not None:
        yield plain
        return
    yield from _build_with_unidiff(start, header, hunks)


def _build_with_unidiff(start: int, header: list[str], hunks: list[Hunk]) -> Iterator[FileDiff]:
    lines = header
    if hunks and not any(line.startswith("+++ ") for line in header):
        raise DiffError(start, "file header without a '+++ b/path' line before its first hunk")
    try:
        patch = PatchSet(lines)
    except UnidiffParseError as exc:
        raise DiffError(start, f"cannot parse the file header starting here: {exc}") from None
    files = list(patch)
    if not files:
        return
    for i, pf in enumerate(files):
        source = _strip_prefix(pf.source_file)
        target = _strip_prefix(pf.target_file)
        if pf.is_added_file:
            status: FileStatus = "added"
        elif pf.is_removed_file:
            status = "deleted"
        elif pf.is_rename or (source and target and source != target):
            status = "renamed"
        else:
            status = "modified"
        old_mode, new_mode = _modes(pf.patch_info)
        yield FileDiff(
            path=target or source or "",
            old_path=source,
            status=status,
            binary=pf.is_binary_file,
            old_mode=old_mode,
            new_mode=new_mode,
            hunks=hunks if i == len(files) - 1 else [],
        )


def _modes(info: object) -> tuple[str | None, str | None]:
    old_mode = new_mode = None
    for line in info or []:  # type: ignore[union-attr]
        if line.startswith("old mode "):
            old_mode = line[9:].strip()
        elif line.startswith("new mode "):
            new_mode = line[9:].strip()
        elif line.startswith("new file mode "):
            new_mode = line[14:].strip()
        elif line.startswith("deleted file mode "):
            old_mode = line[18:].strip()
    return old_mode, new_mode
