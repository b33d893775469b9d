"""The evidence bundle: a control matrix over a real git history, byte-identical, with clear failures."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.commands.evidence import run
from assistant.domain import ClinicalSafety, Finding, PolicyResult, RequiredApproval, Risk, Suppression
from assistant.evidence import CONTROLS, ChangeRecord, FileEntry, build_bundle, control_matrix, write_bundle
from assistant.gitrepo import Commit

CLI = str(Path(sys.executable).parent / "gitops-health")

API_PY = '''\
import logging
import requests
logger = logging.getLogger(__name__)
DB_PASSWORD = "Sup3rS3cretValue!"
def show(patient):
    logger.info("patient ssn %s", patient.ssn)
    logger.info("patient dob %s", patient.dob)  # gitops-health: ignore[PHI-LOG-001] synthetic test data only
    return patient
'''


def git(cwd: Path, *args: str, date: str | None = None) -> str:
    env = {**os.environ}
    if date:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = date
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def commit(repo: Path, files: dict[str, str], message: str, when: str) -> str:
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
        git(repo, "add", path)
    git(repo, "commit", "-q", "-m", message, date=when)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """A small pump repository: docs, a safety-critical change without tests, its tests, a PHI/secret leak."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GITOPS_HEALTH_LLM", "none")
    repo = tmp_path / "pump"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "dev@example.org")
    git(repo, "config", "user.name", "Dev Eloper")
    shas = [
        commit(repo, {"README.md": "# pump\n"}, "docs: start\n\nSigned-off-by: Dev Eloper <dev@example.org>",
               "2026-01-05T09:00:00+00:00"),
        commit(repo, {"pump/dosing.py": "def infusion_rate_ml_per_h(dose_mg_per_kg_h, weight_kg, conc_mg_per_ml):\n"
                                        "    return dose_mg_per_kg_h * weight_kg / conc_mg_per_ml\n"},
               "feat(dosing): infusion rate\n\nPUMP-12", "2026-01-06T10:00:00+00:00"),
        commit(repo, {"tests/test_dosing.py": "from pump.dosing import infusion_rate_ml_per_h\n\n"
                                              "def test_rate():\n    assert infusion_rate_ml_per_h(1, 10, 2) == 5\n"},
               "test(dosing): cover the rate\n\nReviewed-by: Rev Iewer <rev@example.org>", "2026-01-07T11:00:00+00:00"),
        commit(repo, {"svc/api.py": API_PY}, "feat(api): show patient", "2026-01-08T12:00:00+00:00"),
    ]
    monkeypatch.chdir(repo)
    return repo, shas


def bundle_of(out: Path) -> dict:
    return json.loads((out / "evidence.json").read_text())


def control(bundle: dict, control_id: str) -> dict:
    return next(c for c in bundle["controls"] if c["id"] == control_id)


# --------------------------------------------------------------------------- over a real repository


def test_the_bundle_has_json_markdown_and_checksums_that_verify(history: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, shas = history
    out = tmp_path / "bundle"
    assert run(f"{shas[0]}..HEAD", str(out)) == 0
    assert sorted(p.name for p in out.iterdir()) == ["SHA256SUMS", "evidence.json", "evidence.md"]
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    sums = dict(reversed(line.split("  ")) for line in (out / "SHA256SUMS").read_text().splitlines())
    assert sums["evidence.json"] == hashlib.sha256((out / "evidence.json").read_bytes()).hexdigest()


def test_each_commit_of_the_range_is_reviewed_oldest_first(history: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, shas = history
    assert run(f"{shas[0]}..HEAD", str(tmp_path / "b")) == 0
    bundle = bundle_of(tmp_path / "b")
    assert [c["sha"] for c in bundle["commits"]] == shas[1:]
    assert bundle["range"] == {
        "rev": f"{shas[0]}..HEAD", "commits": 3, "first": shas[1], "last": shas[3],
        "from": "2026-01-06T10:00:00+00:00", "to": "2026-01-08T12:00:00+00:00",
    }


def test_findings_are_gaps_against_their_controls_with_commit_file_line_and_rule(
    history: tuple[Path, list[str]], tmp_path: Path
) -> None:
    repo, shas = history
    assert run("HEAD~3..HEAD", str(tmp_path / "b")) == 0
    bundle = bundle_of(tmp_path / "b")
    audit = control(bundle, "HIPAA-164.312(b)")
    assert audit["status"] == "gap"
    gap = next(g for g in audit["gaps"] if g.get("rule") == "PHI-LOG-001")
    assert (gap["commit"], gap["file"], gap["line"]) == (shas[3], "svc/api.py", 6)
    auth = control(bundle, "HIPAA-164.312(d)")
    assert any(g.get("category") == "hardcoded-secret" and g["line"] == 4 for g in auth["gaps"])


def test_suppressions_are_reported(history: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, shas = history
    assert run("HEAD~3..HEAD", str(tmp_path / "b")) == 0
    bundle = bundle_of(tmp_path / "b")
    expected = {"commit": shas[3], "rule": "PHI-LOG-001", "file": "svc/api.py", "line": 7,
                "reason": "synthetic test data only", "category": "phi-exposure-log"}
    assert expected in bundle["suppressions"]
    assert expected in control(bundle, "HIPAA-164.312(b)")["suppressions"]
    assert "synthetic test data only" in (tmp_path / "b" / "evidence.md").read_text()


def test_process_controls_use_sign_offs_approvals_and_tests(history: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, shas = history
    assert run("HEAD", str(tmp_path / "b")) == 0  # a single rev: all of its history
    bundle = bundle_of(tmp_path / "b")
    assert bundle["summary"]["commits"] == 4
    signatures = control(bundle, "21CFR11-11.50")
    assert {"kind": "signed-off", "commit": shas[0], "by": "Dev Eloper <dev@example.org>"} in signatures["evidence"]
    assert {g["commit"] for g in signatures["gaps"]} == set(shas[1:])
    sox = control(bundle, "SOX-ITGC-CM")
    assert {"kind": "approval", "commit": shas[2], "trailer": "Reviewed-by", "by": "Rev Iewer <rev@example.org>"} in sox["evidence"]
    assert shas[2] not in {g["commit"] for g in sox["gaps"]}
    dev = control(bundle, "IEC62304-5")
    assert {"kind": "tests-changed", "commit": shas[2], "files": ["tests/test_dosing.py"]} in dev["evidence"]
    change = control(bundle, "IEC62304-8")
    assert {"kind": "change-reference", "commit": shas[1], "refs": ["PUMP-12"]} in change["evidence"]


def test_the_same_range_gives_byte_identical_bundles(history: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, shas = history
    assert run("HEAD~3..HEAD", str(tmp_path / "one")) == 0
    assert run("HEAD~3..HEAD", str(tmp_path / "two")) == 0
    for name in ("evidence.json", "evidence.md", "SHA256SUMS"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


def test_the_json_is_canonical(history: tuple[Path, list[str]], tmp_path: Path) -> None:
    assert run("HEAD~1..HEAD", str(tmp_path / "b")) == 0
    raw = (tmp_path / "b" / "evidence.json").read_text()
    assert raw == json.dumps(json.loads(raw), sort_keys=True, ensure_ascii=False, indent=2) + "\n"


def test_out_defaults_to_evidence_in_the_current_directory(history: tuple[Path, list[str]]) -> None:
    repo, _ = history
    assert run("HEAD~1..HEAD", None) == 0
    assert (repo / "evidence" / "evidence.json").exists()


def test_an_empty_range_gives_a_bundle_with_nothing_applicable(history: tuple[Path, list[str]], tmp_path: Path) -> None:
    assert run("HEAD..HEAD", str(tmp_path / "b")) == 0
    bundle = bundle_of(tmp_path / "b")
    assert bundle["commits"] == []
    assert {c["status"] for c in bundle["controls"]} == {"not-applicable"}


def test_a_bad_rev_exits_2_with_gits_message_explained(history: tuple[Path, list[str]], tmp_path: Path) -> None:
    proc = subprocess.run([CLI, "evidence", "--rev", "v9.9.9..HEAD", "--out", str(tmp_path / "b")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "git cannot resolve the revision range 'v9.9.9..HEAD'" in proc.stderr
    assert "v9.9.9" in proc.stderr and "fix:" in proc.stderr
    assert not (tmp_path / "b").exists()


def test_outside_a_repository_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert run("HEAD~1..HEAD", str(tmp_path / "b")) == 2


def test_a_long_range_shows_progress_on_stderr_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    repo = tmp_path / "long"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "dev@example.org")
    git(repo, "config", "user.name", "Dev")
    for i in range(26):
        commit(repo, {f"notes/n{i}.md": f"note {i}\n"}, f"docs: note {i}", f"2026-02-01T00:{i:02d}:00+00:00")
    monkeypatch.chdir(repo)
    assert run("HEAD", str(tmp_path / "b")) == 0
    out = capsys.readouterr()
    assert "reviewing commits" in out.err and "26/26" in out.err
    assert out.out.startswith("wrote ") and "26 commit(s)" in out.out and "reviewing" not in out.out
    assert bundle_of(tmp_path / "b")["summary"]["commits"] == 26


# --------------------------------------------------------------------------- the matrix alone


def _commit(sha: str, *, trailers: tuple[tuple[str, str], ...] = (), committer: str = "dev@example.org",
            signature: str = "N") -> Commit:
    return Commit(sha=sha, parents=(), author_name="Dev", author_email="dev@example.org",
                  authored_at="2026-01-01T00:00:00+00:00", committer_name="C", committer_email=committer,
                  committed_at="2026-01-01T00:00:00+00:00", subject="change", body="", signature=signature,
                  trailers=trailers)


def _record(sha: str, findings: list[Finding] | None = None, **kw: object) -> ChangeRecord:
    return ChangeRecord(
        id=sha,
        files=kw.pop("files", [FileEntry("svc/api.py", "modified", 1, 1)]),  # type: ignore[arg-type]
        findings=findings or [],
        suppressions=kw.pop("suppressions", []),  # type: ignore[arg-type]
        clinical=kw.pop("clinical", ClinicalSafety()),  # type: ignore[arg-type]
        risk=Risk(score=10, level="low"),
        policy=kw.pop("policy", PolicyResult(decision="allow")),  # type: ignore[arg-type]
        commit=kw.pop("commit", _commit(sha)),  # type: ignore[arg-type]
    )


def test_every_control_of_the_brief_is_in_the_matrix() -> None:
    ids = [c["id"] for c in control_matrix([_record("a" * 40)])]
    assert ids == [c.id for c in CONTROLS]
    assert ids == ["HIPAA-164.312(a)", "HIPAA-164.312(b)", "HIPAA-164.312(c)", "HIPAA-164.312(d)", "HIPAA-164.312(e)",
                   "21CFR11-11.10(e)", "21CFR11-11.50", "IEC62304-5", "IEC62304-8", "SOC2-CC8.1", "SOX-ITGC-CM"]


def test_a_finding_maps_by_category_and_by_cited_regulation() -> None:
    weak = Finding(category="weak-crypto", severity="medium", file="svc/api.py", line=3, rule="CRY-001", message="md5",
                   regulations=["HIPAA 164.312(c)(1)"])
    rows = {r["id"]: r for r in control_matrix([_record("b" * 40, [weak])])}
    assert rows["HIPAA-164.312(e)"]["status"] == "gap"  # by category
    assert rows["HIPAA-164.312(c)"]["status"] == "gap"  # by citation
    assert rows["HIPAA-164.312(a)"]["status"] == "satisfied"


def test_a_docs_only_change_leaves_code_controls_not_applicable() -> None:
    rec = _record("c" * 40, files=[FileEntry("docs/guide.md", "modified", 3, 1)],
                  commit=_commit("c" * 40, trailers=(("Signed-off-by", "Dev <dev@example.org>"),)))
    rows = {r["id"]: r["status"] for r in control_matrix([rec])}
    assert rows["HIPAA-164.312(a)"] == "not-applicable"
    assert rows["21CFR11-11.50"] == "satisfied"
    assert rows["SOC2-CC8.1"] == "satisfied"


def test_self_approval_is_not_an_approval() -> None:
    rec = _record("d" * 40, commit=_commit("d" * 40, trailers=(("Approved-by", "Dev <dev@example.org>"),)))
    sox = next(r for r in control_matrix([rec]) if r["id"] == "SOX-ITGC-CM")
    assert sox["status"] == "gap"
    assert "no independent approval" in sox["gaps"][0]["reason"]


def test_a_denied_change_is_a_change_management_gap() -> None:
    from assistant.domain import Violation

    rec = _record("e" * 40, policy=PolicyResult(decision="deny", violations=[Violation(rule="no-secrets", reason="secret in code")]))
    cc = next(r for r in control_matrix([rec]) if r["id"] == "SOC2-CC8.1")
    assert cc["gaps"] == [{"commit": "e" * 40, "reason": "the policy denies this change: secret in code"}]


def test_required_approvals_need_that_many_independent_approvers() -> None:
    policy = PolicyResult(decision="review", required_approvals=[RequiredApproval(role="approver", count=1),
                                                                  RequiredApproval(role="clinical-safety-officer", count=1)])
    one = _record("f" * 40, policy=policy, commit=_commit("f" * 40, trailers=(("Approved-by", "A <a@example.org>"),)))
    two = _record("0" * 40, policy=policy, commit=_commit("0" * 40, trailers=(("Approved-by", "A <a@example.org>"),
                                                                              ("Reviewed-by", "B <b@example.org>"))))
    rows = {r["id"]: r for r in control_matrix([one, two])}
    assert [g["commit"] for g in rows["SOC2-CC8.1"]["gaps"]] == ["f" * 40]


def test_a_safety_critical_change_without_tests_is_an_iec62304_gap() -> None:
    clinical = ClinicalSafety(safety_critical=True, iec62304_class="C", notes=["infusion rate changed"])
    rec = _record("1" * 40, clinical=clinical)
    rows = {r["id"]: r for r in control_matrix([rec])}
    assert rows["IEC62304-5"]["status"] == "gap"
    assert "without a change to its tests" in rows["IEC62304-5"]["gaps"][0]["reason"]
    assert rows["IEC62304-8"]["status"] == "gap"  # class C without a change-request reference


def test_a_good_signature_satisfies_signature_manifestation() -> None:
    rec = _record("2" * 40, commit=_commit("2" * 40, signature="G"))
    row = next(r for r in control_matrix([rec]) if r["id"] == "21CFR11-11.50")
    assert row["status"] == "satisfied"
    assert {"kind": "signature", "commit": "2" * 40, "status": "good"} in row["evidence"]


def test_write_bundle_is_a_pure_function_of_its_records(tmp_path: Path) -> None:
    finding = Finding(category="injection", severity="critical", file="svc/q.py", line=9, rule="INJ-001", message="sql")
    sup = Suppression(rule="INJ-001", file="svc/q.py", line=12, reason="constant table name", finding=finding)
    records = [_record("3" * 40, [finding], suppressions=[sup]), _record("4" * 40)]
    write_bundle(build_bundle("A..B", records, tool_version="1.0"), tmp_path / "x")
    write_bundle(build_bundle("A..B", list(records), tool_version="1.0"), tmp_path / "y")
    for name in ("evidence.json", "evidence.md", "SHA256SUMS"):
        assert (tmp_path / "x" / name).read_bytes() == (tmp_path / "y" / name).read_bytes()
    md = (tmp_path / "x" / "evidence.md").read_text()
    assert "| 45 CFR 164.312(c) | Integrity | **gap** |" in md
    assert "svc/q.py:9 INJ-001 (critical, injection): sql" in md


def test_commit_subjects_are_redacted_in_the_bundle() -> None:
    c = _commit("5" * 40)
    c = Commit(**{**{f: getattr(c, f) for f in c.__slots__}, "subject": "fix lookup for MRN: 77812345"})
    bundle = build_bundle("A..B", [_record("5" * 40, commit=c)])
    assert bundle["commits"][0]["subject"] == "fix lookup for MRN: [REDACTED:MRN]"


def test_a_merge_does_not_count_its_branchs_findings_twice(history: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, shas = history
    git(repo, "checkout", "-q", "-b", "topic", shas[2])
    leak = commit(repo, {"svc/export.py": "import logging\ndef export(p):\n    logging.info('ssn %s', p.ssn)\n"},
                  "feat(export): export", "2026-01-09T09:00:00+00:00")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-ff", "-m", "Merge topic", "topic", date="2026-01-10T09:00:00+00:00")
    merge = git(repo, "rev-parse", "HEAD").strip()
    assert run(f"{shas[2]}..HEAD", str(tmp_path / "b")) == 0
    bundle = bundle_of(tmp_path / "b")
    order = [c["sha"] for c in bundle["commits"]]
    assert sorted(order[:2]) == sorted([shas[3], leak]) and order[2] == merge  # parents before the merge
    merged = next(c for c in bundle["commits"] if c["sha"] == merge)
    assert merged["merge_of"] == [leak] and merged["findings"] == []
    export_gaps = [g for g in control(bundle, "HIPAA-164.312(b)")["gaps"] if g.get("file") == "svc/export.py"]
    assert [g["commit"] for g in export_gaps] == [leak]


def test_a_merge_by_someone_else_is_independent_approval_of_the_branch(
    history: tuple[Path, list[str]], tmp_path: Path
) -> None:
    repo, shas = history
    git(repo, "checkout", "-q", "-b", "topic", shas[3])
    change = commit(repo, {"svc/util.py": "def util():\n    return 1\n"}, "feat(util): util", "2026-01-09T09:00:00+00:00")
    git(repo, "checkout", "-q", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "chore: keep main moving", date="2026-01-09T10:00:00+00:00")
    git(repo, "-c", "user.email=lead@example.org", "-c", "user.name=Lead", "merge", "-q", "--no-ff", "-m", "Merge topic",
        "topic", date="2026-01-10T09:00:00+00:00")
    merge = git(repo, "rev-parse", "HEAD").strip()
    assert run(f"{shas[3]}..HEAD", str(tmp_path / "b")) == 0
    sox = control(bundle_of(tmp_path / "b"), "SOX-ITGC-CM")
    assert {"kind": "merged-by", "commit": change, "merge": merge, "by": "lead@example.org"} in sox["evidence"]
    assert change not in {g["commit"] for g in sox["gaps"]}
