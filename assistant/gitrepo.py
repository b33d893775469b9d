"""Git, through its command line: the diffs, commits and hook paths our commands need.

We call `git` as a subprocess instead of a binding: it is what developers and
CI already have, it honours their configuration (core.hooksPath, worktrees,
SHA-256 repositories), and its error messages are the ones users know.
Every call passes `--no-color`/`--no-ext-diff` style switches so personal
settings never change the bytes we parse.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Commit",
    "GitError",
    "NotARepository",
    "commit_diff",
    "hooks_dir",
    "load_commits",
    "merged_commits",
    "repo_root",
    "rev_list",
    "run_git",
    "staged_diff",
    "worktree_diff",
]

_DIFF_FLAGS = ("--no-color", "--no-ext-diff", "--no-textconv", "-M", "--src-prefix=a/", "--dst-prefix=b/")
# Keep git's own text stable and free of pagers and prompts.
_ENV_OVERRIDES = {"GIT_PAGER": "cat", "PAGER": "cat", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANG": "C"}


class GitError(RuntimeError):
    """A git command failed; `stderr` is git's own explanation."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        self.args_ = list(args)
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"git {' '.join(args)} failed ({returncode}): {self.stderr}")


class NotARepository(GitError):
    """The directory is not inside a git work tree."""


def run_git(args: Sequence[str], cwd: str | os.PathLike[str] | None = None, *, input: bytes | None = None) -> bytes:
    """git's standard output; GitError (NotARepository) with git's message when it fails."""
    env = {**os.environ, **_ENV_OVERRIDES}
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, input=input, capture_output=True, env=env, check=False
        )
    except FileNotFoundError:
        raise GitError(args, 127, "git is not installed or not on PATH") from None
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace")
        if "not a git repository" in stderr.lower():
            raise NotARepository(args, proc.returncode, stderr)
        raise GitError(args, proc.returncode, stderr)
    return proc.stdout


def repo_root(cwd: str | os.PathLike[str] | None = None) -> Path:
    return Path(run_git(["rev-parse", "--show-toplevel"], cwd).decode().strip())


def hooks_dir(cwd: str | os.PathLike[str] | None = None) -> Path:
    """Where git looks for hooks: core.hooksPath when set, else .git/hooks (worktrees included)."""
    base = Path(cwd) if cwd is not None else Path.cwd()
    path = Path(run_git(["rev-parse", "--git-path", "hooks"], base).decode().strip())
    return path if path.is_absolute() else (base / path).resolve()


def _has_head(cwd: str | os.PathLike[str] | None) -> bool:
    try:
        run_git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], cwd)
    except GitError:
        return False
    return True


def _empty_tree(cwd: str | os.PathLike[str] | None) -> str:
    return run_git(["hash-object", "-t", "tree", "--stdin"], cwd, input=b"").decode().strip()


def _require_repository(cwd: str | os.PathLike[str] | None) -> None:
    # Outside a repository `git diff` silently becomes `git diff --no-index`; say what is wrong instead.
    run_git(["rev-parse", "--git-dir"], cwd)


def staged_diff(cwd: str | os.PathLike[str] | None = None) -> bytes:
    """`git diff --cached`: what the next commit will contain."""
    _require_repository(cwd)
    args = ["diff", "--cached", *_DIFF_FLAGS]
    if not _has_head(cwd):
        args.append(_empty_tree(cwd))  # the first commit: everything staged is new
    return run_git(args, cwd)


def worktree_diff(cwd: str | os.PathLike[str] | None = None) -> bytes:
    """`git diff HEAD`: staged and unstaged changes to tracked files together."""
    _require_repository(cwd)
    base = "HEAD" if _has_head(cwd) else _empty_tree(cwd)
    return run_git(["diff", *_DIFF_FLAGS, base], cwd)


def rev_list(rev: str, cwd: str | os.PathLike[str] | None = None) -> list[str]:
    """The commits of a range (`A..B`, `A...B`, or one rev meaning all its history), oldest first."""
    if rev.startswith("-"):
        raise GitError(["rev-list", rev], 128, f"{rev!r} looks like an option, not a revision range")
    out = run_git(["rev-list", "--reverse", "--topo-order", rev, "--"], cwd)
    return out.decode().split()


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    authored_at: str  # ISO 8601 with the author's offset, as recorded in the commit
    committer_name: str
    committer_email: str
    committed_at: str
    subject: str
    body: str
    signature: str  # git's %G?: G good, B bad, U/X/Y/R untrusted/expired, E cannot check, N none
    trailers: tuple[tuple[str, str], ...] = field(default=())

    def trailer_values(self, key: str) -> list[str]:
        key = key.lower()
        return [v for k, v in self.trailers if k.lower() == key]


_FIELDS = ("%H", "%P", "%an", "%ae", "%aI", "%cn", "%ce", "%cI", "%s", "%b", "%G?", "%(trailers:only,unfold)")
_RECORD_END = "\x1e"


def load_commits(shas: Sequence[str], cwd: str | os.PathLike[str] | None = None) -> list[Commit]:
    """Commit metadata for `shas`, in the order given, in one git call per batch."""
    commits: dict[str, Commit] = {}
    fmt = "%x1f".join(_FIELDS) + "%x1e"
    batch = 500
    for i in range(0, len(shas), batch):
        chunk = list(shas[i:i + batch])
        out = run_git(["show", "-s", "--no-color", f"--format={fmt}", *chunk, "--"], cwd).decode("utf-8", "replace")
        for record in out.split(_RECORD_END):
            record = record.lstrip("\n")
            if not record:
                continue
            parts = record.split("\x1f")
            if len(parts) != len(_FIELDS):
                continue
            trailers = []
            for line in parts[11].splitlines():
                key, sep, value = line.partition(":")
                if sep and key.strip():
                    trailers.append((key.strip(), value.strip()))
            commits[parts[0]] = Commit(
                sha=parts[0],
                parents=tuple(parts[1].split()),
                author_name=parts[2],
                author_email=parts[3],
                authored_at=parts[4],
                committer_name=parts[5],
                committer_email=parts[6],
                committed_at=parts[7],
                subject=parts[8],
                body=parts[9].strip(),
                signature=parts[10] or "N",
                trailers=tuple(trailers),
            )
    return [commits[s] for s in shas if s in commits]


def merged_commits(merge: Commit, cwd: str | os.PathLike[str] | None = None) -> list[str]:
    """The commits a merge brought in: reachable from its other parents but not from its first."""
    if len(merge.parents) < 2:
        return []
    args = ["rev-list", *merge.parents[1:], f"^{merge.parents[0]}", "--"]
    return run_git(args, cwd).decode().split()


def commit_diff(commit: Commit, cwd: str | os.PathLike[str] | None = None) -> bytes:
    """The change a commit made: against its first parent (a merge's net change), or the empty tree for a root."""
    base = commit.parents[0] if commit.parents else _empty_tree(cwd)
    return run_git(["diff", *_DIFF_FLAGS, base, commit.sha, "--"], cwd)
