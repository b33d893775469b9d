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
from typing import BinaryIO, Literal

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


@dataclass(slots=True)
class DiffLine:
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
    """
    for start, chunk in _file_chunks(stream):
        yield from _parse_chunk(start, chunk)


def _file_chunks(stream: BinaryIO | Iterable[bytes]) -> Iterator[tuple[int, list[str]]]:
    chunk: list[str] = []
    chunk_start = 1
    chunk_has_hunk = False
    old_left = new_left = 0
    saw_header = False
    lineno = 0
    for raw in stream:
        lineno += 1
        if raw.endswith(b"\r\n"):
            raw = raw[:-2] + b"\n"
        in_hunk = old_left > 0 or new_left > 0
        if in_hunk:
            marker = raw[:1]
            if marker in (b"\n", b""):
                raw, marker = b" \n", b" "  # some tools strip the space of empty context lines
            if marker == b" ":
                old_left -= 1
                new_left -= 1
            elif marker == b"-":
                old_left -= 1
            elif marker == b"+":
                new_left -= 1
            elif marker == b"\\":
                pass
            else:
                raise DiffError(
                    lineno,
                    f"expected a hunk line starting with ' ', '+', '-' or '\\' but found {_show(raw)}; "
                    "the hunk header's line counts do not match its body (was the diff edited by hand?)",
                )
            if old_left < 0 or new_left < 0:
                raise DiffError(lineno, "hunk is longer than its @@ header says; regenerate the diff with git diff")
            chunk.append(_decode(raw, lineno))
            continue
        if raw.startswith(b"\\"):
            chunk.append(_decode(raw, lineno))
            continue
        starts_file = raw.startswith(b"diff --git ") or (
            raw.startswith(b"--- ") and chunk_has_hunk
        )
        if starts_file and chunk:
            yield chunk_start, chunk
            chunk, chunk_start, chunk_has_hunk = [], lineno, False
        if raw.startswith(b"@@"):
            m = _HUNK_RE.match(raw)
            if not m:
                raise DiffError(lineno, f"malformed hunk header {_show(raw)}; expected '@@ -a,b +c,d @@'")
            old_left = int(m.group(2)) if m.group(2) is not None else 1
            new_left = int(m.group(4)) if m.group(4) is not None else 1
            chunk_has_hunk = True
        if raw.startswith((b"diff --git ", b"--- ", b"+++ ", b"@@")):
            saw_header = True
        chunk.append(_decode(raw, lineno))
    if old_left > 0 or new_left > 0:
        raise DiffError(lineno, "the diff ends inside a hunk (truncated input?)")
    if chunk:
        if not saw_header and any(line.strip() for line in chunk):
            raise DiffError(1, "this is not a unified diff: no 'diff --git', '---'/'+++' or '@@' header found")
        yield chunk_start, chunk


def _decode(raw: bytes, lineno: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DiffError(
            lineno, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); re-encode the diff as UTF-8"
        ) from None


def _show(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").rstrip("\n")
    return repr(text[:60] + ("..." if len(text) > 60 else ""))


def _strip_prefix(path: str | None) -> str | None:
    if path is None or path == "/dev/null":
        return None
    if path.startswith(("a/", "b/")):
        return path[2:]
    return path


def _parse_chunk(start: int, chunk: list[str]) -> Iterator[FileDiff]:
    if not any(line.startswith(("diff --git ", "--- ", "@@", "Binary files ")) for line in chunk):
        return  # preamble such as a commit message from `git format-patch`
    try:
        patch = PatchSet(chunk)
    except UnidiffParseError as exc:
        raise DiffError(start, f"cannot parse the file diff starting here: {exc}") from None
    for pf in patch:
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
        path = target or source or ""
        old_mode, new_mode = _modes(pf.patch_info)
        fd = FileDiff(
            path=path,
            old_path=source,
            status=status,
            binary=pf.is_binary_file,
            old_mode=old_mode,
            new_mode=new_mode,
        )
        for h in pf:
            hunk = Hunk(h.source_start, h.source_length, h.target_start, h.target_length, h.section_header or "")
            append = hunk.lines.append
            for ln in h:
                kind = ln.line_type
                if kind not in ("+", "-", " "):
                    continue  # "\ No newline at end of file"
                text = ln.value
                if text.endswith("\n"):
                    text = text[:-1]
                if text.endswith("\r"):
                    text = text[:-1]
                append(DiffLine(kind, text, ln.target_line_no, ln.source_line_no))
            fd.hunks.append(hunk)
        yield fd


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
