"""Git helpers against real repositories: diffs, ranges, commit metadata, hook paths."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from assistant.diffs import parse_diff
from assistant.gitrepo import (
    GitError,
    NotARepository,
    commit_diff,
    hooks_dir,
    load_commits,
    rev_list,
    staged_diff,
    worktree_diff,
)


def git(cwd: Path, *args: str, date: str = "2026-03-01T10:00:00+00:00") -> str:
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = tmp_path / "r"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.org")
    git(root, "config", "user.name", "Dev")
    git(root, "config", "color.ui", "always")  # personal settings must not change what we parse
    git(root, "config", "diff.noprefix", "true")
    return root


def test_the_first_commits_staged_diff_is_against_the_empty_tree(repo: Path) -> None:
    (repo / "a.py").write_text("x = 1\n")
    git(repo, "add", "a.py")
    files = parse_diff(staged_diff(repo))
    assert [(f.path, f.status) for f in files] == [("a.py", "added")]
    assert worktree_diff(repo) == staged_diff(repo)


def test_staged_and_working_tree_diffs_differ_as_git_says(repo: Path) -> None:
    (repo / "a.py").write_text("x = 1\n")
    git(repo, "add", "a.py")
    git(repo, "commit", "-q", "-m", "one")
    (repo / "a.py").write_text("x = 2\n")
    assert staged_diff(repo) == b""
    files = parse_diff(worktree_diff(repo))
    assert [ln.text for ln in files[0].added_lines()] == ["x = 2"]
    assert b"\x1b[" not in worktree_diff(repo)  # no colour codes despite color.ui=always


def test_rev_list_is_oldest_first_and_bad_revs_carry_gits_message(repo: Path) -> None:
    shas = []
    for i in range(3):
        (repo / "f.txt").write_text(f"{i}\n")
        git(repo, "add", "f.txt")
        git(repo, "commit", "-q", "-m", f"c{i}", date=f"2026-03-0{i + 1}T10:00:00+00:00")
        shas.append(git(repo, "rev-parse", "HEAD").strip())
    assert rev_list("HEAD", repo) == shas
    assert rev_list(f"{shas[0]}..HEAD", repo) == shas[1:]
    with pytest.raises(GitError) as err:
        rev_list("nope..HEAD", repo)
    assert "nope" in err.value.stderr
    with pytest.raises(GitError, match="looks like an option"):
        rev_list("--all", repo)


def test_commits_carry_authors_dates_trailers_and_signature_state(repo: Path) -> None:
    (repo / "f.txt").write_text("1\n")
    git(repo, "add", "f.txt")
    git(repo, "commit", "-q", "-m", "feat: one\n\nBody line.\n\nSigned-off-by: Dev <dev@example.org>\nReviewed-by: R <r@example.org>")
    sha = git(repo, "rev-parse", "HEAD").strip()
    (commit,) = load_commits([sha], repo)
    assert commit.subject == "feat: one"
    assert commit.author_email == "dev@example.org"
    assert commit.authored_at == "2026-03-01T10:00:00+00:00"
    assert commit.parents == ()
    assert commit.signature == "N"
    assert commit.trailer_values("signed-off-by") == ["Dev <dev@example.org>"]
    assert ("Reviewed-by", "R <r@example.org>") in commit.trailers


def test_commit_diff_handles_root_commits_and_merges(repo: Path) -> None:
    (repo / "base.txt").write_text("base\n")
    git(repo, "add", "base.txt")
    git(repo, "commit", "-q", "-m", "root")
    git(repo, "checkout", "-q", "-b", "topic")
    (repo / "topic.txt").write_text("topic\n")
    git(repo, "add", "topic.txt")
    git(repo, "commit", "-q", "-m", "topic")
    git(repo, "checkout", "-q", "main")
    (repo / "main.txt").write_text("main\n")
    git(repo, "add", "main.txt")
    git(repo, "commit", "-q", "-m", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "merge topic", "topic")
    commits = load_commits(rev_list("HEAD", repo), repo)
    root = next(c for c in commits if not c.parents)
    merge = next(c for c in commits if len(c.parents) == 2)
    assert [f.path for f in parse_diff(commit_diff(root, repo))] == ["base.txt"]
    assert [f.path for f in parse_diff(commit_diff(merge, repo))] == ["topic.txt"]  # the net change onto main


def test_hooks_dir_follows_core_hooks_path(repo: Path) -> None:
    assert hooks_dir(repo) == (repo / ".git" / "hooks").resolve()
    git(repo, "config", "core.hooksPath", "ci/hooks")
    assert hooks_dir(repo) == (repo / "ci" / "hooks").resolve()
    (repo / "sub").mkdir()
    assert hooks_dir(repo / "sub") == (repo / "ci" / "hooks").resolve()


def test_outside_a_repository_every_helper_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for call in (staged_diff, worktree_diff, hooks_dir):
        with pytest.raises(NotARepository):
            call(tmp_path)
