"""`gitops-health hook install` and the prepare-commit-msg hook, in real git repositories, through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.commands.commit import commit_msg
from assistant.hooks import MARKER, main, prepare_commit_msg

CLI = str(Path(sys.executable).parent / "gitops-health")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GITOPS_HEALTH_LLM", "none")
    monkeypatch.delenv("GITOPS_HEALTH_CMD", raising=False)
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.org")
    git(root, "config", "user.name", "Dev Eloper")
    (root / "README.md").write_text("# pump\n")
    git(root, "add", "README.md")
    git(root, "commit", "-q", "-m", "docs: start")
    monkeypatch.chdir(root)
    return root


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True)


def stage_dosing_change(repo: Path) -> None:
    (repo / "pump").mkdir(exist_ok=True)
    (repo / "pump" / "dosing.py").write_text("def infusion_rate(weight_kg, mg_per_kg):\n    return weight_kg * mg_per_kg\n")
    git(repo, "add", "pump/dosing.py")


def last_message(repo: Path) -> str:
    return git(repo, "log", "-1", "--format=%B")


def test_install_writes_an_executable_hook_with_our_marker(repo: Path) -> None:
    proc = cli(repo, "hook", "install")
    assert proc.returncode == 0, proc.stderr
    hook = repo / ".git" / "hooks" / "prepare-commit-msg"
    assert f"installed {hook}" in proc.stdout
    assert MARKER in hook.read_text()
    assert os.access(hook, os.X_OK)


def test_a_commit_without_a_message_gets_the_drafted_one(repo: Path) -> None:
    assert cli(repo, "hook", "install").returncode == 0
    stage_dosing_change(repo)
    git(repo, "commit", "-q", env={**os.environ, "GIT_EDITOR": "true"})
    message = last_message(repo)
    assert message.startswith("feat(dosing): add infusion_rate"), message
    assert "Risk: " in message and "Regulations: " in message and "Safety-Class: " in message


def test_the_hook_leaves_a_message_given_with_dash_m_alone(repo: Path) -> None:
    assert cli(repo, "hook", "install").returncode == 0
    stage_dosing_change(repo)
    git(repo, "commit", "-q", "-m", "my own words")
    assert last_message(repo).strip() == "my own words"


def test_the_hook_leaves_an_amended_message_alone(repo: Path) -> None:
    assert cli(repo, "hook", "install").returncode == 0
    stage_dosing_change(repo)
    git(repo, "commit", "-q", "-m", "first words")
    (repo / "pump" / "dosing.py").write_text("def infusion_rate(w, r):\n    return w * r\n")
    git(repo, "add", "pump/dosing.py")
    git(repo, "commit", "-q", "--amend", env={**os.environ, "GIT_EDITOR": "true"})
    assert last_message(repo).strip() == "first words"


def test_a_foreign_hook_is_not_overwritten_without_force(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "prepare-commit-msg"
    hook.write_text("#!/bin/sh\necho theirs\n")
    proc = cli(repo, "hook", "install")
    assert proc.returncode == 1
    assert "--force" in proc.stderr and str(hook) in proc.stderr
    assert hook.read_text() == "#!/bin/sh\necho theirs\n"


def test_force_replaces_a_foreign_hook_and_keeps_a_backup(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "prepare-commit-msg"
    hook.write_text("#!/bin/sh\necho theirs\n")
    proc = cli(repo, "hook", "install", "--force")
    assert proc.returncode == 0, proc.stderr
    assert MARKER in hook.read_text()
    backup = hook.with_name("prepare-commit-msg.gitops-health-backup")
    assert backup.read_text() == "#!/bin/sh\necho theirs\n"
    assert str(backup) in proc.stdout


def test_our_own_hook_is_recognised_and_updated(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "prepare-commit-msg"
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(f"#!/bin/sh\n{MARKER}\n# an older version\n")
    proc = cli(repo, "hook", "install")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("updated ")
    assert "an older version" not in hook.read_text()


def test_core_hooks_path_is_respected(repo: Path) -> None:
    git(repo, "config", "core.hooksPath", ".githooks")
    proc = cli(repo, "hook", "install")
    assert proc.returncode == 0, proc.stderr
    assert (repo / ".githooks" / "prepare-commit-msg").exists()
    assert not (repo / ".git" / "hooks" / "prepare-commit-msg").exists()


def test_install_outside_a_repository_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    proc = subprocess.run([CLI, "hook", "install"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "not inside a git repository" in proc.stderr


# --------------------------------------------------------------------------- commit-msg


def test_commit_msg_staged_prints_the_message_for_the_index(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stage_dosing_change(repo)
    assert commit_msg(staged=True) == 0
    out = capsys.readouterr().out
    assert out.startswith("feat(dosing): add infusion_rate\n")
    assert out.rstrip("\n").splitlines()[-1].startswith("Safety-Class: ")


def test_commit_msg_without_staged_describes_the_working_tree(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "README.md").write_text("# pump\n\nThe infusion pump controller.\n")
    assert commit_msg(staged=False) == 0
    assert capsys.readouterr().out.startswith("docs: update README.md\n")
    assert commit_msg(staged=True) == 1  # nothing staged


def test_commit_msg_with_nothing_staged_says_so(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert commit_msg(staged=True) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert "git add" in out.err


def test_commit_msg_in_a_repository_without_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    git(tmp_path, "init", "-q")
    stage_dosing_change(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert commit_msg(staged=True) == 0
    assert capsys.readouterr().out.startswith("feat(dosing): ")


def test_commit_msg_outside_a_repository_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert commit_msg(staged=True) == 2
    assert "not inside a git repository" in capsys.readouterr().err


def test_a_bad_llm_setting_warns_and_still_prints_the_deterministic_message(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stage_dosing_change(repo)
    assert commit_msg(staged=True) == 0
    expected = capsys.readouterr().out
    monkeypatch.setenv("GITOPS_HEALTH_LLM", "nosuch:model")
    assert commit_msg(staged=True) == 0
    out = capsys.readouterr()
    assert out.out == expected
    assert "unknown provider 'nosuch'" in out.err


# --------------------------------------------------------------------------- the pre-commit framework entry


def test_pre_commit_entry_fills_an_empty_message_file(repo: Path) -> None:
    stage_dosing_change(repo)
    msg = repo / ".git" / "COMMIT_EDITMSG"
    msg.write_text("\n# Please enter the commit message\n")
    assert main(["prepare-commit-msg", str(msg), ""]) == 0
    text = msg.read_text()
    assert text.startswith("feat(dosing): add infusion_rate")
    assert text.endswith("# Please enter the commit message\n")


@pytest.mark.parametrize("source", ["message", "merge", "squash", "commit"])
def test_pre_commit_entry_skips_messages_git_already_has(repo: Path, source: str) -> None:
    msg = repo / "MSG"
    msg.write_text("")
    assert prepare_commit_msg(str(msg), source) == 0
    assert msg.read_text() == ""


def test_pre_commit_entry_keeps_a_non_empty_message(repo: Path) -> None:
    stage_dosing_change(repo)
    msg = repo / "MSG"
    msg.write_text("already written\n")
    assert prepare_commit_msg(str(msg), "") == 0
    assert msg.read_text() == "already written\n"


def test_the_pre_commit_hooks_file_declares_both_hooks() -> None:
    import yaml

    root = Path(__file__).resolve().parents[2]
    hooks = {h["id"]: h for h in yaml.safe_load((root / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["gitops-health-commit-msg"]["stages"] == ["prepare-commit-msg"]
    assert hooks["gitops-health-review"]["stages"] == ["pre-commit"]
    for hook in hooks.values():
        module = hook["entry"].split()[2]
        assert module == "assistant.hooks"
