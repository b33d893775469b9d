"""The `prepare-commit-msg` hook: fill an empty commit message with gitops-health's draft.

The hook must never get in a developer's way: it leaves `-m`, merge, squash
and amend messages alone, writes only into an empty message, and a failure
of ours lets the commit go on with git's usual editor. Installing must never
destroy someone else's hook, so ours carries a marker line and a foreign hook
is replaced only with `--force` (and kept as a backup).
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from assistant.gitrepo import hooks_dir

__all__ = ["HOOK_NAME", "MARKER", "ForeignHook", "InstallResult", "hook_script", "install_hook"]

HOOK_NAME = "prepare-commit-msg"
MARKER = "# gitops-health-managed-hook: prepare-commit-msg"
BACKUP_SUFFIX = ".gitops-health-backup"


class ForeignHook(Exception):
    """A prepare-commit-msg hook we did not write is in the way."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"{path} already exists and was not installed by gitops-health; "
            f"re-run with --force to replace it (the old hook is kept as {path.name}{BACKUP_SUFFIX})"
        )


@dataclass(frozen=True)
class InstallResult:
    path: Path
    action: str  # "installed", "updated" or "replaced"
    backup: Path | None = None


def _command() -> str:
    """How the hook should call us: this installation's console script, else this Python with -m."""
    script = shutil.which("gitops-health")
    here = Path(sys.executable).parent / "gitops-health"
    if here.exists():
        script = str(here)
    if script:
        return shlex.quote(script)
    return f"{shlex.quote(sys.executable)} -m assistant.cli"


def hook_script(command: str | None = None) -> str:
    cmd = command or _command()
    return f"""#!/bin/sh
{MARKER}
# Installed by `gitops-health hook install`; re-running it updates this file.
# Fills an empty commit message with a conventional message and compliance
# trailers drafted from the staged diff. It never blocks a commit.
msg_file="$1"
source="$2"
case "$source" in
  message|merge|squash|commit) exit 0 ;;  # -m/-F, merges, squashes, --amend/-c/-C keep their message
esac
# Only an empty message (comments and blank lines do not count) is filled in.
if grep -v '^#' "$msg_file" 2>/dev/null | grep -q '[^[:space:]]'; then
  exit 0
fi
GITOPS_HEALTH_CMD="${{GITOPS_HEALTH_CMD:-{cmd}}}"
draft=$(eval "$GITOPS_HEALTH_CMD commit-msg --staged" 2>/dev/null) || exit 0
[ -n "$draft" ] || exit 0
tmp="$msg_file.gitops-health.$$"
{{ printf '%s\\n' "$draft"; cat "$msg_file"; }} > "$tmp" && mv "$tmp" "$msg_file"
exit 0
"""


def install_hook(cwd: str | os.PathLike[str] | None = None, *, force: bool = False, command: str | None = None) -> InstallResult:
    """Write the hook where git looks for it (core.hooksPath respected).

    Raises ForeignHook when another hook is there and `force` is false;
    assistant.gitrepo.NotARepository outside a repository.
    """
    directory = hooks_dir(cwd)
    path = directory / HOOK_NAME
    action = "installed"
    backup: Path | None = None
    if path.exists() or path.is_symlink():
        try:
            current = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            current = ""
        if MARKER in current:
            action = "updated"
        elif not force:
            raise ForeignHook(path)
        else:
            backup = path.with_name(path.name + BACKUP_SUFFIX)
            os.replace(path, backup)
            action = "replaced"
    directory.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(hook_script(command), encoding="utf-8")
    tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH | stat.S_IRUSR)
    os.replace(tmp, path)
    return InstallResult(path=path, action=action, backup=backup)


# --------------------------------------------------------------------------- pre-commit framework entry points

_SKIP_SOURCES = {"message", "merge", "squash", "commit"}


def _message_is_empty(text: str) -> bool:
    return not any(line.strip() for line in text.splitlines() if not line.startswith("#"))


def prepare_commit_msg(message_file: str, source: str | None = None) -> int:
    """The same job as the shell hook, for `pre-commit`'s prepare-commit-msg stage; never fails a commit."""
    source = source if source is not None else os.environ.get("PRE_COMMIT_COMMIT_MSG_SOURCE", "")
    if source in _SKIP_SOURCES:
        return 0
    path = Path(message_file)
    try:
        current = path.read_text(encoding="utf-8")
    except OSError:
        return 0
    if not _message_is_empty(current):
        return 0
    from assistant.commands.commit import draft_message

    try:
        code, message = draft_message(staged=True)
    except Exception as exc:  # noqa: BLE001 - a hook of ours must never block a commit
        print(f"gitops-health: no draft ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 0
    if code == 0 and message:
        path.write_text(message + current, encoding="utf-8")
    return 0


def review_staged() -> int:
    """`pre-commit` review hook: print the review of the staged diff; fail the commit when policy denies it."""
    from assistant.commands.commit import _diff
    from assistant.diffs import DiffError
    from assistant.gitrepo import GitError
    from assistant.policy import PolicyError
    from assistant.render import render
    from graphs.review import run_review

    try:
        diff = _diff(staged=True)
        if not diff.strip():
            return 0
        result = run_review(diff)
    except (GitError, DiffError, PolicyError) as exc:
        print(f"gitops-health review: {exc}", file=sys.stderr)
        return 2
    if result.findings:
        sys.stdout.write(render(result, "text"))
    if result.policy.decision == "deny":
        print("gitops-health review: the policy denies this change; fix the findings above or suppress one with "
              "'# gitops-health: ignore[RULE] reason'", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m assistant.hooks prepare-commit-msg FILE [SOURCE]` | `python -m assistant.hooks review-staged`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["prepare-commit-msg"] and len(args) >= 2:
        return prepare_commit_msg(args[1], args[2] if len(args) > 2 else None)
    if args[:1] == ["review-staged"]:
        return review_staged()
    print("usage: python -m assistant.hooks prepare-commit-msg MESSAGE_FILE [SOURCE] | review-staged", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
