"""The commit writer: conventional type and scope, a subject within 72 characters, a body, our trailers."""

from __future__ import annotations

import re

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel

from assistant.diffs import parse_diff
from assistant.domain import ClinicalSafety, Finding, Risk
from graphs.agents.commit_writer import infer_scope, infer_type, write_commit_message

LOW = Risk(score=8, level="low")
NO_CLINICAL = ClinicalSafety()


def diff_of(*files: tuple[str, str, list[str], list[str]]) -> str:
    """A git diff of files given as (path, status, removed lines, added lines)."""
    out = []
    for path, status, removed, added in files:
        out.append(f"diff --git a/{path} b/{path}")
        if status == "added":
            out += ["new file mode 100644", "--- /dev/null", f"+++ b/{path}", f"@@ -0,0 +1,{len(added)} @@"]
        elif status == "deleted":
            out += ["deleted file mode 100644", f"--- a/{path}", "+++ /dev/null", f"@@ -1,{len(removed)} +0,0 @@"]
        else:
            out += [f"--- a/{path}", f"+++ b/{path}", f"@@ -1,{len(removed) + 1} +1,{len(added) + 1} @@ def compute_dose(weight):"]
            out.append(" # context")
        out += [f"-{line}" for line in removed] + [f"+{line}" for line in added]
    return "\n".join(out) + "\n"


def message(diff: str, findings: list[Finding] | None = None, clinical: ClinicalSafety = NO_CLINICAL, risk: Risk = LOW) -> str:
    return write_commit_message(parse_diff(diff), findings or [], clinical, risk)


def first_line(msg: str) -> str:
    return msg.splitlines()[0]


def test_a_new_source_file_is_a_feat_scoped_to_the_file() -> None:
    msg = message(diff_of(("svc/api.py", "added", [], ["def list_patients():", "    return []"])))
    assert first_line(msg) == "feat(api): add list_patients"


def test_a_small_change_inside_a_function_is_a_fix() -> None:
    msg = message(diff_of(("pump/dosing.py", "modified", ["    return weight * 10"], ["    return weight * 0.1"])))
    assert first_line(msg) == "fix(dosing): correct compute_dose"


def test_several_files_in_one_package_take_the_package_as_scope() -> None:
    diff = diff_of(
        ("src/billing/invoice.py", "added", [], ["class Invoice:", "    pass"]),
        ("src/billing/tax.py", "added", [], ["def vat(x):", "    return x"]),
    )
    msg = message(diff)
    assert first_line(msg) == "feat(billing): add Invoice and vat"


@pytest.mark.parametrize(
    ("path", "expected_type"),
    [
        ("tests/test_dosing.py", "test"),
        ("docs/architecture.md", "docs"),
        ("README.md", "docs"),
        (".github/workflows/ci.yml", "ci"),
        ("pyproject.toml", "build"),
        ("Dockerfile", "build"),
        (".gitignore", "chore"),
    ],
)
def test_non_code_changes_get_their_own_type(path: str, expected_type: str) -> None:
    msg = message(diff_of((path, "modified", ["old"], ["new"])))
    assert re.match(rf"^{expected_type}(\([a-z0-9-]+\))?: ", first_line(msg)), first_line(msg)


def test_moved_lines_are_a_refactor() -> None:
    msg = message(diff_of(("svc/util.py", "modified", ["a = 1", "b = 2"], ["b = 2", "a = 1"])))
    assert first_line(msg).startswith("refactor(util): ")


def test_deleting_code_only_is_a_refactor() -> None:
    msg = message(diff_of(("svc/legacy.py", "deleted", ["def old():", "    pass"], [])))
    assert first_line(msg) == "refactor(legacy): remove legacy.py"


def test_adding_a_cache_is_perf() -> None:
    msg = message(diff_of(("svc/lookup.py", "modified", ["def find(x):"], ["@functools.lru_cache(maxsize=256)", "def find(x):"])))
    assert first_line(msg).startswith("perf(lookup): ")


def test_the_first_line_never_passes_72_characters() -> None:
    long_names = [f"def handle_an_extraordinarily_long_function_name_number_{i}():" for i in range(6)]
    msg = message(diff_of(("services/patient_administration_and_scheduling.py", "added", [], long_names)))
    assert len(first_line(msg)) <= 72
    assert first_line(msg) == "feat(patient-administration): add 6 definitions"


def test_the_body_lists_each_file_and_the_trailers_come_last() -> None:
    diff = diff_of(
        ("svc/api.py", "modified", ["x = 1"], ["x = 2"]),
        ("svc/models.py", "added", [], ["class Patient:", "    pass"]),
    )
    finding = Finding(
        category="phi-exposure-log", severity="high", file="svc/api.py", line=2, rule="PHI-LOG-001",
        message="m", regulations=["HIPAA 164.312(b)", "HIPAA 164.502(b)"],
    )
    clinical = ClinicalSafety(safety_critical=True, iec62304_class="C", notes=["dose calculation changed"])
    msg = message(diff, [finding], clinical, Risk(score=72, level="high"))
    lines = msg.splitlines()
    assert lines[1] == ""
    assert "- svc/api.py: modified (+1 -1)" in lines
    assert "- svc/models.py: added (+2 -0); adds Patient" in lines
    assert "Review: 1 finding (1 high)." in lines
    assert "- PHI-LOG-001 svc/api.py:2 (high, phi-exposure-log)" in lines
    assert "Clinical safety: safety-critical, IEC 62304 class C, no tests changed." in lines
    assert lines[-3:] == [
        "Risk: high (72)",
        "Regulations: HIPAA 164.312(b), HIPAA 164.502(b), IEC 62304",
        "Safety-Class: C",
    ]
    assert lines[-4] == ""  # trailers are their own paragraph, as git interpret-trailers wants
    assert msg.endswith("\n")


def test_without_findings_the_regulations_trailer_says_none() -> None:
    msg = message(diff_of(("svc/api.py", "modified", ["x = 1"], ["x = 2"])))
    assert msg.splitlines()[-3:] == ["Risk: low (8)", "Regulations: none", "Safety-Class: A"]


def test_the_same_input_gives_the_same_bytes() -> None:
    diff = diff_of(
        ("b/z.py", "added", [], ["def z():", "  pass"]),
        ("a/y.py", "modified", ["1"], ["2"]),
    )
    findings = [
        Finding(category="injection", severity="critical", file="a/y.py", line=2, rule="INJ-SQL-001", message="m",
                regulations=["OWASP A03"]),
        Finding(category="weak-crypto", severity="medium", file="b/z.py", line=1, rule="CRYPTO-001", message="m",
                regulations=["HIPAA 164.312(e)"]),
    ]
    first = message(diff, findings)
    assert all(message(diff, list(reversed(findings))) == first for _ in range(3))


def test_many_files_are_summarised_by_area() -> None:
    files = [(f"svc/mod{i}.py", "modified", ["a"], ["b"]) for i in range(10)]
    files += [(f"web/page{i}.ts", "modified", ["a"], ["b"]) for i in range(5)]
    msg = message(diff_of(*files))
    assert "15 files changed:" in msg
    assert "- svc/: 10 files (10 modified; +10 -10)" in msg
    assert "- web/: 5 files (5 modified; +5 -5)" in msg


def test_an_empty_diff_still_gives_a_valid_message() -> None:
    msg = write_commit_message([], [], NO_CLINICAL, LOW)
    assert first_line(msg) == "chore: record an empty change"
    assert msg.splitlines()[-1] == "Safety-Class: A"


def test_type_and_scope_helpers_agree_with_the_message() -> None:
    files = parse_diff(diff_of(("svc/api.py", "added", [], ["def f():", "  pass"])))
    assert infer_type(files) == "feat"
    assert infer_scope(files) == "api"


# --------------------------------------------------------------------------- with an LLM

DIFF = diff_of(("pump/dosing.py", "modified", ["    return weight * 10"], ["    return weight * 0.1"]))


def test_the_llm_drafts_subject_and_body_but_type_scope_and_trailers_stay_ours() -> None:
    model = FakeListChatModel(
        responses=["feat(wrong): Scale the dose by body weight correctly.\n\nUse 0.1 mg/kg.\nRisk: low (0)\nSigned-off-by: bot"]
    )
    msg = write_commit_message(parse_diff(DIFF), [], NO_CLINICAL, Risk(score=55, level="high"), llm=model)
    lines = msg.splitlines()
    assert lines[0] == "fix(dosing): Scale the dose by body weight correctly"
    assert "Use 0.1 mg/kg." in lines
    assert "Risk: low (0)" not in lines and "Signed-off-by: bot" not in lines
    assert lines[-3:] == ["Risk: high (55)", "Regulations: none", "Safety-Class: A"]


@pytest.mark.parametrize(
    "answer",
    ["x" * 80, "Risk: low (0)", "", "   \n  "],
    ids=["too-long", "a-trailer-as-subject", "empty", "blank"],
)
def test_a_bad_llm_subject_falls_back_to_the_deterministic_message(answer: str) -> None:
    deterministic = write_commit_message(parse_diff(DIFF), [], NO_CLINICAL, LOW)
    model = FakeListChatModel(responses=[answer])
    assert write_commit_message(parse_diff(DIFF), [], NO_CLINICAL, LOW, llm=model) == deterministic


def test_an_llm_error_falls_back_to_the_deterministic_message() -> None:
    deterministic = write_commit_message(parse_diff(DIFF), [], NO_CLINICAL, LOW)
    model = GenericFakeChatModel(messages=iter([]))
    assert write_commit_message(parse_diff(DIFF), [], NO_CLINICAL, LOW, llm=model) == deterministic


def test_an_llm_timeout_falls_back_to_the_deterministic_message() -> None:
    deterministic = write_commit_message(parse_diff(DIFF), [], NO_CLINICAL, LOW)
    model = FakeListChatModel(responses=["a fine subject"], sleep=2.0)
    assert write_commit_message(parse_diff(DIFF), [], NO_CLINICAL, LOW, llm=model, timeout_s=0.2) == deterministic


def test_a_new_route_is_named_in_the_subject() -> None:
    msg = message(diff_of(("api/routes.py", "modified", ["x = 1"], ["x = 1", "@app.get('/patients/{pid}/problems')",
                                                                    "def problems(pid):", "    return []"])))
    assert first_line(msg) == "feat(routes): add GET /patients/{pid}/problems"


def test_removing_a_class_names_what_was_removed() -> None:
    diff = diff_of(
        ("ehr/integrations/fax.py", "deleted", ["class FaxGateway:", "    def __init__(self):", "        pass",
                                                "    def send(self):", "        pass"], []),
        ("ehr/integrations/__init__.py", "modified", ["from .fax import FaxGateway"], []),
    )
    assert first_line(message(diff)) == "refactor(integrations): remove FaxGateway and send"


def test_a_migration_file_is_scoped_by_its_folder() -> None:
    msg = message(diff_of(("db/migrations/20240611_add_ids.sql", "added", [], ["ALTER TABLE patients ADD ssn text;"])))
    assert first_line(msg).startswith("feat(migrations): ")


def test_an_image_is_a_chore() -> None:
    assert first_line(message(diff_of(("web/static/logo.png", "modified", ["a"], ["b"])))) == "chore(logo): update logo.png"


@pytest.mark.parametrize(
    "line",
    ["public " + "a " * 300_000, "@app.get('" + "/a" * 300_000, "func (" + "x" * 600_000, "const x = (" + "a" * 600_000],
    ids=["method-words", "unterminated-route", "unterminated-receiver", "unterminated-arrow"],
)
def test_a_hostile_long_line_is_handled_in_linear_time(line: str) -> None:
    import time

    diff = f"diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n-x\n+{line}\n"
    started = time.perf_counter()
    msg = message(diff)
    assert time.perf_counter() - started < 10  # a backtracking pattern takes hours here
    assert len(first_line(msg)) <= 72


def test_definitions_are_found_across_languages() -> None:
    diff = diff_of(
        ("src/Repo.java", "modified", ["x"], ["    public static List<Map<String, X>> findPatients(String q) {", "x"]),
        ("svc/handler.go", "modified", ["x"], ["func (s *Server) Handle(w http.ResponseWriter) {", "x"]),
    )
    body = message(diff)
    assert "- src/Repo.java: modified (+2 -1); adds findPatients" in body
    assert "- svc/handler.go: modified (+2 -1); adds Handle" in body
