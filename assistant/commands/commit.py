"""`gitops-health commit-msg [--staged]` and `gitops-health hook install [--force]`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langchain_core.language_models.chat_models import BaseChatModel


def _diff(staged: bool) -> bytes:
    from assistant.gitrepo import staged_diff, worktree_diff

    return staged_diff() if staged else worktree_diff()


def commit_msg(staged: bool) -> int:
    """Print a conventional commit message for the staged (or working-tree) diff.

    Exit 0 with the message on stdout; 1 when there is nothing to describe;
    2 outside a git repository or on a diff we cannot read.
    """
    code, message = draft_message(staged)
    if code == 0:
        sys.stdout.write(message)
        sys.stdout.flush()
    return code


def draft_message(staged: bool) -> tuple[int, str]:
    """(exit code, message); problems are explained on stderr."""
    from assistant.diffs import DiffError
    from assistant.gitrepo import GitError, NotARepository
    from assistant.policy import PolicyError

    try:
        diff = _diff(staged)
    except NotARepository:
        print("error: not inside a git repository; run this from your repository's work tree", file=sys.stderr)
        return 2, ""
    except GitError as exc:
        print(f"error: git could not produce the diff: {exc.stderr}", file=sys.stderr)
        return 2, ""
    if not diff.strip():
        where = "staged (git add the files first)" if staged else "in the working tree"
        print(f"nothing to describe: no changes {where}", file=sys.stderr)
        return 1, ""

    llm = _llm()
    from graphs.review import run_review

    try:
        result = run_review(diff, llm=llm, summary_llm=False)  # the summary is not shown here: one model call, not two
    except DiffError as exc:
        print(f"error: cannot read the diff git produced: {exc}", file=sys.stderr)
        return 2, ""
    except PolicyError as exc:
        print(f"error: policy: {exc}", file=sys.stderr)
        return 2, ""
    return 0, result.commit_message


def _llm() -> BaseChatModel | None:
    """The configured chat model, or None; a bad setting is reported but never stops a commit."""
    from assistant.llm import LLMConfigError, chat_model_from_env, parse_spec, spec_from_environment

    try:
        if parse_spec(spec_from_environment()) is None:
            return None  # skip importing LangChain at all on the default path
        return chat_model_from_env(None)
    except LLMConfigError as exc:
        print(f"warning: {exc}; using the deterministic draft", file=sys.stderr)
        return None


def hook_install(force: bool) -> int:
    """Install the prepare-commit-msg hook; exit 1 when a foreign hook is in the way without --force."""
    from assistant.gitrepo import GitError, NotARepository
    from assistant.hooks import ForeignHook, install_hook

    try:
        result = install_hook(force=force)
    except NotARepository:
        print("error: not inside a git repository; run hook install from your repository's work tree", file=sys.stderr)
        return 2
    except ForeignHook as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except GitError as exc:
        print(f"error: {exc.stderr}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write the hook: {exc}", file=sys.stderr)
        return 2
    print(f"{result.action} {result.path}")
    if result.backup is not None:
        print(f"the previous hook was kept as {result.backup}")
    return 0
