"""The reviewer engine: what it looks at, what it skips, how it merges and silences findings."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from assistant.diffs import parse_diff
from assistant.review.base import Hit, Rule
from assistant.review.context import FileContext
from assistant.review.engine import review
from assistant.review.examples import example_diff
from assistant.review.vocabulary import PhiVocabulary

SECRET_LINE = 'API_TOKEN = "tg_live_8f2c41d9a7e64b0b9c3e5a1d2f7b6c80"'


def diff_of(path: str, *added: str, removed: tuple[str, ...] = (), context: tuple[str, ...] = ()) -> str:
    body = [f" {c}" for c in context] + [f"-{r}" for r in removed] + [f"+{a}" for a in added]
    old = len(context) + len(removed)
    new = len(context) + len(added)
    return (
        f"diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n"
        f"@@ -1,{old} +1,{new} @@ def handler(request):\n" + "\n".join(body) + "\n"
    )


def test_empty_diff_gives_a_clean_result() -> None:
    out = review(parse_diff(b""))
    assert out.findings == [] and out.suppressions == []


def test_findings_are_on_added_lines_with_new_file_numbers() -> None:
    out = review(parse_diff(diff_of("svc/sms.py", "import os", SECRET_LINE, context=("# header", "# two"))))
    assert [(f.file, f.line, f.category) for f in out.findings] == [("svc/sms.py", 4, "hardcoded-secret")]
    f = out.findings[0]
    assert f.rule.startswith("SEC-") and f.regulations and "environment" in f.message


def test_removed_lines_are_never_reported() -> None:
    out = review(parse_diff(diff_of("svc/sms.py", "API_TOKEN = os.environ['API_TOKEN']", removed=(SECRET_LINE,))))
    assert out.findings == []


def test_deleted_and_binary_files_are_skipped() -> None:
    deleted = (
        "diff --git a/svc/old.py b/svc/old.py\ndeleted file mode 100644\n--- a/svc/old.py\n+++ /dev/null\n"
        f"@@ -1 +0,0 @@\n-{SECRET_LINE}\n"
    )
    binary = "diff --git a/web/logo.png b/web/logo.png\nindex 1..2 100644\nBinary files a/web/logo.png and b/web/logo.png differ\n"
    files = parse_diff(deleted + binary)
    assert [f.status for f in files] == ["deleted", "modified"] and files[1].binary
    assert review(files).findings == []


def test_findings_are_sorted_by_file_line_rule() -> None:
    text = diff_of("b/z.py", SECRET_LINE) + diff_of("a/y.py", "x = 1", SECRET_LINE)
    out = review(parse_diff(text))
    assert [(f.file, f.line) for f in out.findings] == [("a/y.py", 2), ("b/z.py", 1)]


def test_line_rules_skip_test_files_except_real_credential_rules() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----"
    out = review(parse_diff(diff_of("tests/fixtures/settings.py", SECRET_LINE, "x = 1", "y = 2", key)))
    assert [f.rule for f in out.findings] == ["SEC-001"]


def _counting_rule(calls: list[str], keywords: tuple[str, ...]) -> Rule:
    def check(ctx: FileContext):  # type: ignore[no-untyped-def]
        calls.append(ctx.path)
        for ln in ctx.added:
            if "boom" in ln.text:
                yield Hit(ln.new_no or 1)
            yield Hit(10_000)  # not an added line: dropped by the engine

    return Rule(
        id="TST-001", category="injection", severity="low", message="m", regulations=("r",),
        keywords=keywords, check=check,
    )


def test_structural_rules_run_only_where_their_keywords_appear() -> None:
    calls: list[str] = []
    rule = _counting_rule(calls, ("boom",))
    files = parse_diff(diff_of("a.py", "quiet = 1") + diff_of("b.py", "x = boom()"))
    out = review(files, rules=(rule,))
    assert calls == ["b.py"]
    assert [(f.file, f.line) for f in out.findings] == [("b.py", 1)]


def test_keywords_in_removed_lines_open_the_gate_for_structural_rules() -> None:
    calls: list[str] = []
    rule = _counting_rule(calls, ("@audited",))
    review(parse_diff(diff_of("a.py", "def f():", removed=("@audited",))), rules=(rule,))
    assert calls == ["a.py"]


def test_keywords_in_a_hunk_header_open_the_gate_for_structural_rules() -> None:
    # git's line of context above the hunk (here an import) is something rules read too
    calls: list[str] = []
    rule = _counting_rule(calls, ("audit_event",))
    diff = diff_of("a.py", "x = 1").replace("@@ def handler(request):", "@@ from ..audit import audit_event")
    review(parse_diff(diff), rules=(rule,))
    assert calls == ["a.py"]
    calls.clear()
    review(parse_diff(diff_of("a.py", "x = 1")), rules=(rule,))
    assert calls == []


def test_line_rule_prefilter_and_unless() -> None:
    rule = Rule(
        id="TST-002", category="weak-crypto", severity="medium", message="m", regulations=("r",),
        keywords=("md5",), pattern=r"md5\(", unless=(r"usedforsecurity",),
    )
    text = diff_of("c.py", "h = md5(x)", "h = md5(x, usedforsecurity=False)", "md5 = 1", "h = MD5(x)")
    out = review(parse_diff(text), rules=(rule,))
    assert [f.line for f in out.findings] == [1]


def test_one_statement_over_lines_is_one_finding_but_distant_lines_stay_apart() -> None:
    rule = Rule(id="TST-003", category="injection", severity="low", message="m", regulations=("r",),
                keywords=("bad",), pattern="bad")
    text = diff_of("d.py", "bad(", "  bad,", ")", "ok", "ok", "bad")
    out = review(parse_diff(text), rules=(rule,))
    assert [f.line for f in out.findings] == [1, 6]


def test_merge_keeps_the_most_severe_of_one_line() -> None:
    low = Rule(id="TST-004", category="injection", severity="low", message="low", regulations=("r",),
               keywords=("bad",), pattern="bad")
    high = Rule(id="TST-005", category="injection", severity="high", message="high", regulations=("r",),
                keywords=("bad",), pattern="bad")
    out = review(parse_diff(diff_of("e.py", "bad")), rules=(low, high))
    assert [(f.rule, f.severity) for f in out.findings] == [("TST-005", "high")]


def test_neighbouring_secrets_are_separate_findings() -> None:
    text = diff_of(
        "deploy/.env.production",
        "DATABASE_URL=postgres://portal_app:Qm7!vR2x9Lp@ehr-db.internal:5432/portal",
        "LOG_LEVEL=info",
        "STRIPE_SECRET_KEY=sk_live_51HqLmDJx8Yt2PkR4vW9nZc3aBfE7gT1uQ0sXyVbN6mKjH5d",
    )
    assert [f.line for f in review(parse_diff(text)).findings] == [1, 3]


def test_suppression_with_a_reason_silences_and_is_reported() -> None:
    text = diff_of("svc/sms.py", "# gitops-health: ignore[SEC-003] sandbox token, revoked", SECRET_LINE)
    out = review(parse_diff(text))
    assert out.findings == []
    [s] = out.suppressions
    assert (s.rule, s.file, s.line, s.reason) == ("SEC-003", "svc/sms.py", 2, "sandbox token, revoked")
    assert s.finding is not None and s.finding.category == "hardcoded-secret"


def test_suppression_on_the_same_line_in_other_comment_styles() -> None:
    js = 'const apiKey = "a8f5f167f44f4964e6c998dee827110c"; // gitops-health: ignore[SEC-003] test tenant key'
    sql = "SELECT 1; -- gitops-health: ignore[INJ-001] fixed text"
    out = review(parse_diff(diff_of("web/cfg.js", js) + diff_of("db/x.sql", sql)))
    assert out.findings == [] and [s.rule for s in out.suppressions] == ["SEC-003"]


def test_suppression_without_reason_does_not_silence_and_says_why() -> None:
    text = diff_of("svc/sms.py", SECRET_LINE + "  # gitops-health: ignore[SEC-003]")
    out = review(parse_diff(text))
    assert out.suppressions == []
    [f] = out.findings
    assert "gives no reason" in f.message


def test_suppression_of_another_rule_does_not_silence() -> None:
    text = diff_of("svc/sms.py", "# gitops-health: ignore[CRY-001] not this one", SECRET_LINE)
    out = review(parse_diff(text))
    assert [f.rule for f in out.findings] == ["SEC-003"] and out.suppressions == []


def test_file_context_helpers_and_syntax_tree() -> None:
    text = diff_of("svc/views.py", "    patient = load(pid)", "    return patient",
                   removed=("    @audited",), context=("def show(pid):",))
    [file] = parse_diff(text)
    ctx = FileContext(file, PhiVocabulary.default())
    hunk = file.hunks[0]
    tree = ctx.syntax(hunk)
    assert tree is not None and tree.root_node.type == "module"
    assert ctx.syntax(hunk) is tree  # parsed once
    removed, added = ctx.change_block(2)
    assert [r.text for r in removed] == ["    @audited"] and [a.new_no for a in added] == [2, 3]
    assert ctx.enclosing_header(2) == "def handler(request):"
    assert [ln.new_no for ln in ctx.neighbours(2, 1, 1)] == [1, 2, 3]
    assert [ln.new_no for ln in ctx.scan("patient")] == [2, 3]
    calls = ctx.nodes_on(hunk, 3, ("return_statement",))
    assert calls and ctx.line_of(hunk, calls[0]) == 3
    assert not ctx.is_test and FileContext(parse_diff(diff_of("pkg/x_test.go", "x"))[0], ctx.vocabulary).is_test


def test_test_paths() -> None:
    from assistant.review.context import is_test_path

    tests = ["tests/a.py", "pkg/x_test.go", "web/a.spec.ts", "src/FooTest.java", "src/FooIT.java",
             "app/__tests__/a.js", "test_views.py", "conftest.py", "spec/fixtures/key.pem"]
    not_tests = ["src/AuditService.java", "src/AUDIT.java", "api/spec/openapi.yaml", "latest.py", "contest/app.py"]
    assert all(is_test_path(p) for p in tests), [p for p in tests if not is_test_path(p)]
    assert not any(is_test_path(p) for p in not_tests), [p for p in not_tests if is_test_path(p)]


def test_examples_helper_builds_new_file_diffs() -> None:
    [f] = parse_diff(example_diff("src/a.py::x = 1\ny = 2"))
    assert f.status == "added" and [ln.new_no for ln in f.added_lines()] == [1, 2]


_BOUNDED = textwrap.dedent(
    """
    import io, resource, sys
    from assistant.diffs import iter_file_diffs
    from assistant.review.engine import review
    kind = sys.argv[1]
    if kind == "line":
        # 1 MB added lines made of what patterns and call-span scanners care about (minified code)
        lines = [
            "password = '" + "a(b'\\"{x}" * 120_000,
            "console.log(patient.name, " * 40_000,
            "q = \\"SELECT * FROM t WHERE a = '\\" + x + \\"' \\" + " * 20_000,
            "u = `https://x/?ssn=${p.ssn}&` + " * 30_000,
            "password = 'Xy7#kP9!qL2m' ; " * 40_000,
            "log.info(" + "(" * 999_000,
        ]
        out = None
        for n, line in enumerate(lines):
            line = line[:1_000_000]
            data = f"diff --git a/x{n}.js b/x{n}.js\\n--- a/x{n}.js\\n+++ b/x{n}.js\\n@@ -0,0 +1 @@\\n+{line}\\n".encode()
            out = review(iter_file_diffs(io.BytesIO(data)))
    else:
        # ~100 MB of diff (1000 files of 20 lines of 5 kB), generated while it is read: never held whole
        def chunks():
            body = "".join(f"+    value_{i} = [" + "compute(items[i], options) + offset, " * 125 + "]\\n" for i in range(20))
            for n in range(1000):
                yield f"diff --git a/m{n}.py b/m{n}.py\\n--- a/m{n}.py\\n+++ b/m{n}.py\\n@@ -0,0 +1,20 @@\\n".encode()
                for ln in body.encode().splitlines(keepends=True):
                    yield ln
        out = review(iter_file_diffs(chunks()))
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent (a big pytest process) across exec.
    hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(len(out.findings), hwm_kb // 1024)
    """
)


def _run_bounded(kind: str) -> tuple[int, int]:
    # A hang (catastrophic backtracking) fails the test instead of stalling the suite.
    proc = subprocess.run([sys.executable, "-c", _BOUNDED, kind], capture_output=True, text=True, timeout=600, check=True)
    findings, rss_mb = proc.stdout.split()
    return int(findings), int(rss_mb)


def test_a_single_one_megabyte_line_is_reviewed() -> None:
    findings, rss_mb = _run_bounded("line")
    assert findings >= 0 and rss_mb < 400


def test_a_hundred_megabyte_diff_streams_in_bounded_memory() -> None:
    findings, rss_mb = _run_bounded("big")
    assert findings == 0 and rss_mb < 300


def test_a_line_pattern_match_cannot_run_into_the_next_line_and_hide_it() -> None:
    # `[^;]*` may match a newline in the joined text: the match would start on the comment (vetoed) and
    # swallow the real statement below it. Each line is matched on its own.
    rule = Rule(id="TST-010", category="missing-audit", severity="low", message="m", regulations=("r",),
                keywords=("audit",), pattern=r"(?i)audit[^;]*state\s*=\s*off", unless=(r"^\s*--",))
    diff = (
        "diff --git a/m.sql b/m.sql\n--- a/m.sql\n+++ b/m.sql\n@@ -0,0 +1,2 @@\n"
        "+-- audit spec for the reindex window\n"
        "+ALTER DATABASE AUDIT SPECIFICATION spec WITH (STATE = OFF);\n"
    )
    assert [f.line for f in review(parse_diff(diff), rules=(rule,)).findings] == [2]


def test_lines_matching_equals_a_search_of_each_line() -> None:
    diff = (
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,2 +1,4 @@\n"
        " x = 1  # audit\n+y = [\n+  z]\n unrelated\n"
    )
    ctx = FileContext(parse_diff(diff)[0], PhiVocabulary.default())
    for pattern in (r"audit\s*\S", r"^\s*z\]$", r"\[\s*z", r"[^x]+$", r"^$"):
        import re2

        want = {ln.new_no for h in ctx.file.hunks for ln in h.lines if ln.kind != "-" and re2.search(pattern, ln.text)}
        assert ctx.lines_matching(pattern) == want, pattern


def _bucket_rule() -> Rule:
    """A rule reporting each `bucket NAME` line unless some file of the diff says `encrypt NAME`."""

    def check(ctx: FileContext):  # type: ignore[no-untyped-def]
        for ln in ctx.lines_with("bucket "):
            yield Hit(ln.new_no or 1, unless_fact="sse:" + ln.text.split()[-1])

    def facts(ctx: FileContext):  # type: ignore[no-untyped-def]
        return {"sse:" + ln.text.split()[-1] for ln in ctx.lines_with("encrypt ")}

    return Rule(
        id="TST-FACT", category="unencrypted-phi-storage", severity="high", message="unencrypted bucket",
        regulations=(), keywords=("bucket", "encrypt"), check=check, facts=facts,
    )


def test_a_finding_waiting_on_a_fact_is_withdrawn_when_another_file_of_the_diff_establishes_it() -> None:
    from graphs.agents.reviewer import collect
    from assistant.review.engine import review_file

    rule = _bucket_rule()
    buckets = diff_of("infra/buckets.tf", "bucket scans", "bucket images")
    encryption = diff_of("infra/encryption.tf", "encrypt scans")
    for diff in (buckets + encryption, encryption + buckets):
        out = review(parse_diff(diff), rules=(rule,))
        assert [(f.file, f.line) for f in out.findings] == [("infra/buckets.tf", 2)]
        # file by file, as the review graph streams them, then merged
        parts = [review_file(f, PhiVocabulary.default(), rules=(rule,)) for f in parse_diff(diff)]
        assert collect(parts).findings == out.findings
        assert (out.pending, collect(parts).pending) == ([], [])
    alone = review(parse_diff(buckets), rules=(rule,))  # both stand: one statement over two lines, one finding
    assert [(f.file, f.line) for f in alone.findings] == [("infra/buckets.tf", 1)]


def test_a_standing_finding_that_waited_is_merged_with_its_files_others() -> None:
    rule = _bucket_rule()
    other = Rule(
        id="TST-LOUD", category="unencrypted-phi-storage", severity="critical", message="loud",
        regulations=(), keywords=("bucket",), pattern="bucket",
    )
    out = review(parse_diff(diff_of("infra/buckets.tf", "bucket scans")), rules=(rule, other))
    assert [(f.line, f.rule, f.severity) for f in out.findings] == [(1, "TST-LOUD", "critical")]
