"""`gitops-health evidence --rev A..B [--out DIR]`: review every commit of a range into an evidence bundle."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress

    from assistant.evidence import ChangeRecord
    from assistant.gitrepo import Commit

PROGRESS_MIN_COMMITS = 25  # below this, a bar only flickers (unless stderr is a terminal)


def run(rev: str, out: str | None) -> int:
    """Exit 0 with the bundle written; 2 for a bad revision range or a repository git cannot read."""
    from assistant.gitrepo import GitError, NotARepository, load_commits, rev_list

    out_dir = Path(out) if out else Path("evidence")
    try:
        shas = rev_list(rev)
    except NotARepository:
        print("error: not inside a git repository; run evidence from your repository's work tree", file=sys.stderr)
        return 2
    except GitError as exc:
        print(f"error: git cannot resolve the revision range {rev!r}: {_first_line(exc.stderr)}", file=sys.stderr)
        print("fix: name commits that exist (see `git log --oneline`), written as A..B, e.g. v1.2.0..HEAD", file=sys.stderr)
        return 2

    try:
        commits = load_commits(shas)
        records = _review_all(commits)
    except GitError as exc:
        print(f"error: git failed while reading the range: {_first_line(exc.stderr)}", file=sys.stderr)
        return 2
    except _ReviewFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from assistant.evidence import build_bundle, write_bundle

    bundle = build_bundle(rev, records, tool_version=_version())
    try:
        written = write_bundle(bundle, out_dir)
    except OSError as exc:
        print(f"error: cannot write the bundle to {out_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    controls = bundle["summary"]["controls"]
    print(
        f"wrote {', '.join(str(p) for p in written)}: {len(records)} commit(s), "
        f"{bundle['summary']['findings']} finding(s), {controls['gap']} control(s) with gaps, "
        f"{controls['satisfied']} satisfied, {controls['not-applicable']} not applicable"
    )
    return 0


class _ReviewFailed(Exception):
    pass


def _first_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else "(git gave no message)"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gitops-health")
    except PackageNotFoundError:
        return "0+unknown"


def _review_all(commits: list[Commit]) -> list[ChangeRecord]:
    from assistant.diffs import DiffError
    from assistant.evidence import ChangeRecord, file_entries
    from assistant.gitrepo import commit_diff, merged_commits
    from assistant.policy import PolicyError
    from graphs.review import run_review

    records: list[ChangeRecord] = []
    progress = _progress(len(commits))
    task = progress.add_task("reviewing commits", total=len(commits)) if progress else None
    try:
        if progress:
            progress.start()
        in_range = {c.sha for c in commits}
        for commit in commits:
            diff = commit_diff(commit)
            if len(commit.parents) > 1 and all(p in in_range for p in commit.parents[1:]):
                # A merge whose branch commits are in the range: they were reviewed one by one;
                # reviewing the merge's net change again would count every finding twice.
                records.append(_merge_record(commit, diff))
                if progress:
                    progress.advance(task)
                continue
            try:
                result = run_review(diff)
            except DiffError as exc:
                raise _ReviewFailed(f"commit {commit.sha[:12]}: cannot read its diff: {exc}") from None
            except PolicyError as exc:
                raise _ReviewFailed(f"policy: {exc}") from None
            records.append(
                ChangeRecord(
                    id=commit.sha,
                    files=file_entries(result.files),
                    findings=result.findings,
                    suppressions=result.suppressions,
                    clinical=result.clinical_safety,
                    risk=result.risk,
                    policy=result.policy,
                    commit=commit,
                )
            )
            if progress:
                progress.advance(task)
    finally:
        if progress:
            progress.stop()
    # A merge made by someone else is an independent approval of every commit it brought in.
    by_sha = {r.id: r for r in records}
    for record in records:
        if record.merge_of and record.commit is not None:
            merger = record.commit.committer_email
            for sha in merged_commits(record.commit):
                if sha in by_sha:
                    by_sha[sha].merged_by.append((record.id, merger))
    return records


def _merge_record(commit: Commit, diff: bytes) -> ChangeRecord:
    from assistant.diffs import parse_diff
    from assistant.domain import ClinicalSafety, PolicyResult, Risk
    from assistant.evidence import ChangeRecord, file_entries

    return ChangeRecord(
        id=commit.sha,
        files=file_entries(parse_diff(diff)),
        findings=[],
        suppressions=[],
        clinical=ClinicalSafety(),
        risk=Risk(score=0, level="low"),
        policy=PolicyResult(decision="allow"),
        commit=commit,
        merge_of=list(commit.parents[1:]),
    )


def _progress(total: int) -> Progress | None:
    """A progress bar on stderr for long ranges, or whenever stderr is a terminal; never on stdout."""
    if total == 0 or not (sys.stderr.isatty() or total >= PROGRESS_MIN_COMMITS):
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False,
    )
