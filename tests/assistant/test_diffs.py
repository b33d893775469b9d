"""The unified-diff parser on what git and `diff -u` really print."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest

from assistant.diffs import DiffError, iter_file_diffs, language_for, parse_diff


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True).stdout.decode("utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "dev@example.org")
    git(tmp_path, "config", "user.name", "Dev")
    git(tmp_path, "config", "core.autocrlf", "false")
    return tmp_path


def commit_all(repo: Path, message: str = "c") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


def test_empty_input_is_an_empty_list() -> None:
    assert parse_diff(b"") == []
    assert parse_diff("\n\n") == []


def test_modified_file_hunks_and_new_file_numbers(repo: Path) -> None:
    (repo / "app.py").write_text("".join(f"line {i}\n" for i in range(1, 21)))
    commit_all(repo)
    lines = [f"line {i}\n" for i in range(1, 21)]
    lines[2] = "changed 3\n"
    lines.insert(15, "inserted\n")
    (repo / "app.py").write_text("".join(lines))
    [f] = parse_diff(git(repo, "diff"))
    assert (f.path, f.old_path, f.status, f.language) == ("app.py", "app.py", "modified", "python")
    assert len(f.hunks) == 2
    added = [(ln.new_no, ln.text) for ln in f.added_lines()]
    assert added == [(3, "changed 3"), (16, "inserted")]
    assert [(ln.old_no, ln.text) for ln in f.removed_lines()] == [(3, "line 3")]
    removed, new = f.hunks[0].change_blocks()[0]
    assert [r.text for r in removed] == ["line 3"] and [a.text for a in new] == ["changed 3"]
    assert "changed 3" in f.hunks[0].post_image() and "line 3\n" not in f.hunks[0].post_image()


def test_hunk_header_keeps_the_enclosing_function(repo: Path) -> None:
    body = "def show(pid):\n" + "".join(f"    x{i} = {i}\n" for i in range(10))
    (repo / "views.py").write_text(body)
    commit_all(repo)
    (repo / "views.py").write_text(body + "    return x9\n")
    [f] = parse_diff(git(repo, "diff"))
    assert f.hunks[0].header == "def show(pid):"


def test_added_deleted_renamed_and_mode_changes(repo: Path) -> None:
    (repo / "old.py").write_text("gone = 1\n")
    (repo / "keep.py").write_text("".join(f"k{i} = {i}\n" for i in range(10)))
    (repo / "run.sh").write_text("echo hi\n")
    commit_all(repo)
    (repo / "old.py").unlink()
    git(repo, "mv", "keep.py", "kept.py")
    (repo / "kept.py").write_text("".join(f"k{i} = {i}\n" for i in range(10)) + "k10 = 10\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "new.go").write_text("package main\n")
    git(repo, "add", "-A")
    files = {f.path: f for f in parse_diff(git(repo, "diff", "--cached", "-M"))}
    assert files["old.py"].status == "deleted" and files["old.py"].old_mode == "100644"
    assert files["kept.py"].status == "renamed" and files["kept.py"].old_path == "keep.py"
    assert [ln.new_no for ln in files["kept.py"].added_lines()] == [11]
    assert (files["run.sh"].old_mode, files["run.sh"].new_mode, files["run.sh"].hunks) == ("100644", "100755", [])
    assert files["new.go"].status == "added" and files["new.go"].new_mode == "100644"


def test_binary_files(repo: Path) -> None:
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x01")
    commit_all(repo)
    (repo / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x02\x03")
    [f] = parse_diff(git(repo, "diff"))
    assert f.binary and f.path == "logo.png" and f.hunks == []


def test_crlf_lines_lose_their_carriage_return(repo: Path) -> None:
    (repo / "win.cs").write_bytes(b"class A {\r\n}\r\n")
    commit_all(repo)
    (repo / "win.cs").write_bytes(b"class A {\r\n  int x;\r\n}\r\n")
    [f] = parse_diff(git(repo, "diff").encode("utf-8"))
    assert [ln.text for ln in f.added_lines()] == ["  int x;"]


def test_no_newline_at_end_of_file(repo: Path) -> None:
    (repo / "a.txt").write_text("one\ntwo")
    commit_all(repo)
    (repo / "a.txt").write_text("one\ntwo\nthree")
    text = git(repo, "diff")
    assert "\\ No newline at end of file" in text
    [f] = parse_diff(text)
    assert [(ln.new_no, ln.text) for ln in f.added_lines()] == [(2, "two"), (3, "three")]


def test_plain_diff_u_without_git_headers(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("x = 1\ny = 2\n")
    out = subprocess.run(["diff", "-u", "a.py", "b.py"], cwd=tmp_path, capture_output=True).stdout
    [f] = parse_diff(out)
    assert f.path == "b.py" and [ln.text for ln in f.added_lines()] == ["y = 2"]


def test_format_patch_preamble_is_skipped(repo: Path) -> None:
    (repo / "a.py").write_text("x = 1\n")
    commit_all(repo)
    (repo / "a.py").write_text("x = 2\n")
    commit_all(repo, "change x\n\nA body line that is not a diff.")
    patch = git(repo, "format-patch", "-1", "--stdout")
    [f] = parse_diff(patch)
    assert [ln.text for ln in f.added_lines()] == ["x = 2"]


def test_malformed_hunk_line_is_reported_with_its_line_number() -> None:
    text = "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,2 +1,2 @@\n x\n?oops\n"
    with pytest.raises(DiffError) as err:
        parse_diff(text)
    assert err.value.line == 6 and "line 6" in str(err.value)


def test_malformed_hunk_header_and_truncated_hunk() -> None:
    with pytest.raises(DiffError) as err:
        parse_diff("--- a/a.py\n+++ b/a.py\n@@ -1,2 +1 @@ oops\n")
    assert err.value.line == 3 or "truncated" in err.value.reason
    with pytest.raises(DiffError, match="ends inside a hunk"):
        parse_diff("--- a/a.py\n+++ b/a.py\n@@ -1,3 +1,3 @@\n x\n")
    with pytest.raises(DiffError, match="line 1"):
        parse_diff("@@ -1 +1 @@\n-x\n+y\n")


def test_non_utf8_input_names_the_line_and_byte() -> None:
    data = b"diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -0,0 +1 @@\n+caf\xe9\n"
    with pytest.raises(DiffError) as err:
        parse_diff(data)
    assert err.value.line == 5 and "0xe9" in err.value.reason


def test_text_that_is_not_a_diff() -> None:
    with pytest.raises(DiffError, match="not a unified diff"):
        parse_diff("hello\nworld\n")


def test_streaming_yields_files_one_at_a_time() -> None:
    chunk = "diff --git a/{n}.py b/{n}.py\n--- a/{n}.py\n+++ b/{n}.py\n@@ -0,0 +1 @@\n+x = {n}\n"
    data = "".join(chunk.format(n=n) for n in range(3)).encode()
    it = iter_file_diffs(io.BytesIO(data))
    first = next(it)
    assert first.path == "0.py"
    assert [f.path for f in it] == ["1.py", "2.py"]


@pytest.mark.parametrize(
    ("path", "language"),
    [("a/b.tsx", "typescript"), ("deploy/.env.production", "dotenv"), ("x/Dockerfile", "dockerfile"),
     ("infra/main.tf", "terraform"), ("k8s/a.yml", "yaml"), ("README", None), ("Svc.cs", "csharp")],
)
def test_language_for(path: str, language: str | None) -> None:
    assert language_for(path) == language


# Hunk bodies are read a batch at a time; the cases below take the other, line-at-a-time path for part of a hunk
# (blank context lines, CR, bad bytes, a line too many) and must read exactly as a line-at-a-time parser would.

MIXED = (
    "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n"
    "@@ -10,6 +20,7 @@ def f():\n"
    " a\n-b\n-c\n+B\n+C\n+D\n d\n\n e\n"
)


def test_every_line_of_a_mixed_hunk_has_its_kind_and_both_numbers() -> None:
    [f] = parse_diff(MIXED)
    got = [(ln.kind, ln.text, ln.new_no, ln.old_no) for ln in f.hunks[0].lines]
    assert got == [
        (" ", "a", 20, 10), ("-", "b", None, 11), ("-", "c", None, 12), ("+", "B", 21, None), ("+", "C", 22, None),
        ("+", "D", 23, None), (" ", "d", 24, 13), (" ", "", 25, 14), (" ", "e", 26, 15),
    ]


def test_the_same_hunk_with_crlf_endings_reads_the_same() -> None:
    [plain] = parse_diff(MIXED)
    [crlf] = parse_diff(MIXED.replace("\n", "\r\n"))
    assert crlf.hunks[0].lines == plain.hunks[0].lines


def test_a_line_too_many_names_its_line() -> None:
    [f] = parse_diff("--- a/a.py\n+++ b/a.py\n@@ -1,1 +1,2 @@\n+x\n y\n+z\n")  # '+z' is past the hunk
    assert [(ln.kind, ln.text) for ln in f.hunks[0].lines] == [("+", "x"), (" ", "y")]
    with pytest.raises(DiffError) as err:  # no old lines promised, and a context line uses one
        parse_diff("--- /dev/null\n+++ b/a.py\n@@ -0,0 +1,2 @@\n+x\n y\n")
    assert err.value.line == 5 and "longer than its @@ header" in err.value.reason


def test_bad_utf8_deep_in_a_long_hunk_names_its_own_line() -> None:
    body = b"".join(b"+line %d\n" % i for i in range(500))
    body = body.replace(b"+line 321\n", b"+line \xff321\n")
    data = b"--- /dev/null\n+++ b/big.py\n@@ -0,0 +1,500 @@\n" + body
    with pytest.raises(DiffError) as err:
        parse_diff(data)
    assert err.value.line == 3 + 322 and "0xff" in err.value.reason


# --- plain git headers are read directly; they must read exactly as unidiff reads them ---------------------

from assistant import diffs  # noqa: E402

_PLAIN_HEADERS = [
    ["diff --git a/svc/api.py b/svc/api.py\n", "index 1111111..2222222 100644\n", "--- a/svc/api.py\n", "+++ b/svc/api.py\n"],
    ["diff --git a/svc/api.py b/svc/api.py\n", "index 1111111..2222222\n", "--- a/svc/api.py\n", "+++ b/svc/api.py\n"],
    ["diff --git a/n.py b/n.py\n", "new file mode 100644\n", "index 0000000..1111111\n", "--- /dev/null\n", "+++ b/n.py\n"],
    ["diff --git a/d.py b/d.py\n", "deleted file mode 100755\n", "index 1111111..0000000\n", "--- a/d.py\n", "+++ /dev/null\n"],
    ["diff --git a/run.sh b/run.sh\n", "old mode 100644\n", "new mode 100755\n", "index 1..2\n", "--- a/run.sh\n", "+++ b/run.sh\n"],
]
_OTHER_HEADERS = [
    ["diff --git a/old.py b/new.py\n", "similarity index 90%\n", "rename from old.py\n", "rename to new.py\n",
     "index 1..2 100644\n", "--- a/old.py\n", "+++ b/new.py\n"],
    ["diff --git a/my file.py b/my file.py\n", "index 1..2 100644\n", "--- a/my file.py\n", "+++ b/my file.py\n"],
    ['diff --git "a/caf\\303\\251.py" "b/caf\\303\\251.py"\n', "index 1..2 100644\n", '--- "a/caf\\303\\251.py"\n',
     '+++ "b/caf\\303\\251.py"\n'],
    ["diff --git a/img.png b/img.png\n", "index 1..2 100644\n", "Binary files a/img.png and b/img.png differ\n"],
    ["diff --git a/x.py b/x.py\n", "index 1..2 100644\n", "--- /dev/null\n", "+++ b/x.py\n"],  # /dev/null, no mode line
    ["diff --git a/x.py b/x.py\n", "index 1..2 100644\n", "--- a/x.py\t2024-01-01\n", "+++ b/x.py\t2024-01-02\n"],
]


def _fields(f: diffs.FileDiff) -> tuple[object, ...]:
    return (f.path, f.old_path, f.status, f.binary, f.old_mode, f.new_mode, f.hunks)


@pytest.mark.parametrize("header", _PLAIN_HEADERS)
def test_a_plain_git_header_is_read_directly_and_as_unidiff_reads_it(header: list[str]) -> None:
    hunks = [diffs.Hunk(1, 1, 1, 1, "")]
    direct = diffs._plain(header, hunks)
    assert direct is not None
    (by_unidiff,) = diffs._build_with_unidiff(1, header, hunks)
    assert _fields(direct) == _fields(by_unidiff)
    assert direct.hunks is hunks


@pytest.mark.parametrize("header", _OTHER_HEADERS)
def test_any_other_header_is_left_to_unidiff(header: list[str]) -> None:
    assert diffs._plain(header, []) is None
    assert [_fields(f) for f in diffs._build(1, header, [])] == [_fields(f) for f in diffs._build_with_unidiff(1, header, [])]
