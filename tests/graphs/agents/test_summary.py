"""The review summary: a deterministic draft from the structured result, and an LLM that may only re-word it.

Real parts: the review graph on real diffs, LangChain's fake chat models, and
the `gitops-health` console script in a subprocess. The loopback
OpenAI-compatible server tests live beside the other LLM tests, in
tests/assistant/test_llm.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel, GenericFakeChatModel

from assistant.diffs import parse_diff
from assistant.domain import (
    ClinicalSafety,
    Finding,
    PolicyResult,
    RequiredApproval,
    Risk,
    RiskFactor,
    Violation,
)
from assistant.llm import mask_code, masked_excerpt
from graphs.agents.summary import deterministic_summary, summarize
from graphs.agents.summary_llm import MAX_CHARS, accept_llm_summary
from graphs.result import FileSummary, ReviewResult
from graphs.review import run_review

CLI = str(Path(sys.executable).parent / "gitops-health")

CLEAN_DIFF = b"""diff --git a/docs/README.md b/docs/README.md
index 1111111..2222222 100644
--- a/docs/README.md
+++ b/docs/README.md
@@ -1,2 +1,3 @@
 # Scheduling
 
+Run `make dev` to start the scheduler locally.
"""

PHI_LOG_DIFF = b"""diff --git a/svc/views.py b/svc/views.py
index 1111111..2222222 100644
--- a/svc/views.py
+++ b/svc/views.py
@@ -10,3 +10,4 @@ def chart(request, patient_id):
     patient = Patient.objects.get(pk=patient_id)
     check_access(request.user, patient)
+    log.info("Viewing chart for %s, DOB %s", patient.full_name, patient.date_of_birth)
     return render(request, "chart.html", {"patient": patient})
"""

SECRET_DIFF = b"""diff --git a/reminders/sms.py b/reminders/sms.py
index 1111111..2222222 100644
--- a/reminders/sms.py
+++ b/reminders/sms.py
@@ -1,4 +1,5 @@
 import requests
 
+API_TOKEN = "tg_live_8f2c41d9a7e64b0b9c3e5a1d2f7b6c80"
 
 def send(number, text):
"""

DOSE_DIFF = b"""diff --git a/pump/dose.py b/pump/dose.py
index 1111111..2222222 100644
--- a/pump/dose.py
+++ b/pump/dose.py
@@ -1,6 +1,6 @@
 def infusion_rate_ml_per_hr(dose_mg_per_kg_per_hr, weight_kg, concentration_mg_per_ml):
     \"\"\"Rate the pump runs at for a weight-based continuous infusion.\"\"\"
-    dose_mg_per_hr = dose_mg_per_kg_per_hr * weight_kg
+    dose_mg_per_hr = dose_mg_per_kg_per_hr * weight_kg / 1000
     return dose_mg_per_hr / concentration_mg_per_ml
 
 
"""


def review(diff: bytes, environment: str | None = None, service: str | None = None) -> ReviewResult:
    return run_review(diff, environment=environment, service=service, runner="steps")


# --------------------------------------------------------------------------- the deterministic draft


def test_a_clean_change_says_so_in_five_sentences() -> None:
    result = review(CLEAN_DIFF)
    assert result.summary.drafted_by == "rules"
    assert result.summary.text == (
        "Modifies docs/README.md (+1 -0). The reviewer found no problems. "
        "Clinical safety: not safety-critical, IEC 62304 class A. Risk low (0/100), no risk factors. "
        "Policy decision: allow; no approvals required."
    )


def test_an_empty_diff_has_a_summary_too() -> None:
    result = review(b"")
    assert result.summary.text.startswith("An empty change: nothing to review. The reviewer found no problems.")
    assert result.summary.text.endswith("Policy decision: allow; no approvals required.")


def test_findings_are_named_with_rule_and_place_and_the_approvals_follow() -> None:
    result = review(PHI_LOG_DIFF)
    finding = result.findings[0]
    text = result.summary.text
    assert f"1 finding: {finding.rule} ({finding.category}, {finding.severity}) at svc/views.py:{finding.line}." in text
    assert f"Risk {result.risk.level} ({result.risk.score}/100), mainly {result.risk.factors[0].name}" in text
    assert result.policy.decision == "review"
    assert "Policy decision: review required; it needs approval from 1 approver." in text


def test_a_safety_critical_change_gives_verdict_class_tests_and_the_safety_officer() -> None:
    result = review(DOSE_DIFF)
    text = result.summary.text
    assert "Clinical safety: safety-critical, IEC 62304 class C, with no test changes for " in text
    assert "safety-critical-change (+25)" in text
    assert "1 clinical-safety-officer" in text


def test_a_deny_names_the_violations_and_not_the_approvals() -> None:
    result = review(SECRET_DIFF + DOSE_DIFF, environment="production", service="infusion-pump-controller")
    assert result.policy.decision == "deny"
    text = result.summary.text
    assert "Policy decision: deny (" in text and "it cannot be deployed as it is." in text
    assert result.policy.violations[0].rule in text
    assert "approval from" not in text
    assert "2 findings (" in text and "the most serious: " in text
    # the most serious finding comes first
    worst = max(result.findings, key=lambda f: ("low", "medium", "high", "critical").index(f.severity))
    assert text.index(worst.rule) < text.index("Clinical safety")


def test_many_files_are_counted_with_the_biggest_named() -> None:
    files = [
        FileSummary(path="a.py", status="modified", added=1, removed=0),
        FileSummary(path="big.py", status="added", added=90, removed=0),
        FileSummary(path="c.py", status="modified", added=5, removed=5),
        FileSummary(path="d.py", status="deleted", added=0, removed=3),
    ]
    text = deterministic_summary(files, [], ClinicalSafety(), Risk(score=0, level="low"), PolicyResult(decision="allow"))
    assert text.startswith("Changes 4 files (+96 -8), mostly big.py, c.py and 2 more. ")


def test_a_renamed_file_names_both_paths() -> None:
    files = [FileSummary(path="new/x.py", old_path="old/x.py", status="renamed", added=0, removed=0)]
    text = deterministic_summary(files, [], ClinicalSafety(), Risk(score=0, level="low"), PolicyResult(decision="allow"))
    assert text.startswith("Renames old/x.py to new/x.py (+0 -0).")


def test_the_markdown_and_text_outputs_show_the_summary(tmp_path: Path) -> None:
    path = tmp_path / "change.diff"
    path.write_bytes(PHI_LOG_DIFF)
    env = {**os.environ, "GITOPS_HEALTH_LLM": "none"}
    expected = review(PHI_LOG_DIFF).summary.text
    md = subprocess.run([CLI, "review", "--format", "markdown", "--diff", str(path)], capture_output=True, env=env, timeout=120)
    assert md.returncode == 0, md.stderr
    lines = md.stdout.decode().splitlines()
    assert lines[2].startswith("**Decision: REVIEW REQUIRED**")
    assert lines[4] == expected  # right under the decision line, before anything else
    text = subprocess.run([CLI, "review", "--format", "text", "--diff", str(path)], capture_output=True, env=env, timeout=120)
    assert text.stdout.decode().splitlines()[1] == f"Summary:  {expected}"


# --------------------------------------------------------------------------- the guard on a model's answer

FINDING = Finding(
    category="clinical-safety", severity="high", file="pump/dose.py", line=3, rule="SAFE-001",
    message="dose changed", regulations=["IEC 62304 §5"],
)
CLINICAL_C = ClinicalSafety(safety_critical=True, iec62304_class="C", touched_units=["dose"])
HIGH = Risk(score=55, level="high", factors=[RiskFactor(name="safety-critical-change", points=25, detail="dose")])
REVIEW = PolicyResult(
    decision="review",
    required_approvals=[RequiredApproval(role="approver", count=2), RequiredApproval(role="clinical-safety-officer", count=1)],
    violations=[Violation(rule="clinical-safety-review", reason="safety-critical change")],
)
DENY = PolicyResult(decision="deny", violations=[Violation(rule="hardcoded-secret", reason="a secret in code")])
GOOD = (
    "This change edits the weight-based dose calculation in pump/dose.py; the reviewer flagged SAFE-001 (high) at "
    "line 3. It is safety-critical, IEC 62304 class C, with no test changes. Risk is high (55/100), mostly because a "
    "safety-critical change ships without tests. Review required: it needs 2 approvers and 1 clinical safety officer."
)


def accept(text: str, policy: PolicyResult = REVIEW, risk: Risk = HIGH, clinical: ClinicalSafety = CLINICAL_C) -> str | None:
    return accept_llm_summary(text, [FINDING], clinical, risk, policy)


def test_a_faithful_rewording_is_accepted_as_it_is() -> None:
    assert accept(GOOD) == GOOD


@pytest.mark.parametrize(
    ("diff", "environment"),
    [(d, e) for d in (CLEAN_DIFF, PHI_LOG_DIFF, SECRET_DIFF, DOSE_DIFF, SECRET_DIFF + DOSE_DIFF, b"") for e in (None, "production")],
)
def test_the_guard_accepts_the_rules_draft_itself(diff: bytes, environment: str | None) -> None:
    """A model that echoes the deterministic draft must pass: the guard refuses contradictions, not the facts."""
    result = review(diff, environment=environment, service="infusion-pump-controller")
    summary = result.summary.text
    assert accept_llm_summary(summary, result.findings, result.clinical_safety, result.risk, result.policy) == summary


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param("Approved, low risk.", id="approved-low-risk"),
        pytest.param(GOOD.replace("Risk is high (55/100)", "Risk is medium (55/100)"), id="other-level"),
        pytest.param(GOOD.replace("Risk is high (55/100)", "Risk is high (30/100)"), id="other-score"),
        pytest.param(GOOD.replace("Risk is high (55/100)", "It is worth a look"), id="no-level-at-all"),
        pytest.param(GOOD + " It is a low-risk change otherwise.", id="a-second-level"),
        pytest.param(GOOD.replace("Review required", "Allowed"), id="allowed"),
        pytest.param(GOOD + " It is safe to deploy.", id="safe-to-deploy"),
        pytest.param(GOOD.replace("Review required", "Blocked"), id="blocked"),
        pytest.param(GOOD.replace("Review required: it", "It"), id="no-decision"),
        pytest.param(GOOD.replace("class C", "class B"), id="other-class"),
        pytest.param(GOOD.replace("It is safety-critical", "It is not safety-critical"), id="not-safety-critical"),
        pytest.param(GOOD.replace("the reviewer flagged SAFE-001 (high) at line 3", "there are no findings"), id="no-findings"),
        pytest.param(GOOD.replace("SAFE-001", "PHI-LOG-001"), id="invented-rule"),
        pytest.param(GOOD.replace("2 approvers", "1 approver"), id="other-count"),
        pytest.param(GOOD.replace(" and 1 clinical safety officer", ""), id="role-left-out"),
        pytest.param(GOOD + " " + "More words here. " * 60, id="too-long"),
        pytest.param("   \n ", id="empty"),
        pytest.param("<!channel>", id="only-a-mention"),
    ],
)
def test_an_answer_that_contradicts_the_facts_is_refused(answer: str) -> None:
    assert accept(answer) is None


@pytest.mark.parametrize(
    "answer",
    [
        "The policy decision is review: it needs approval from 2 approvers and 1 clinical safety officer. "
        "Risk is rated high (55/100); the dose change in pump/dose.py is safety-critical, class C.",
        "A high-risk, safety-critical dose change (SAFE-001, class C) that requires human review by two approvers "
        "and a clinical-safety-officer; the risk score is 55/100.",
    ],
)
def test_ordinary_paraphrases_pass(answer: str) -> None:
    assert accept(answer) == answer


def test_approved_low_risk_is_refused_for_a_deny() -> None:
    low = Risk(score=10, level="low")
    assert accept_llm_summary("approved, low risk", [FINDING], CLINICAL_C, low, DENY) is None
    assert accept_llm_summary("Denied: a secret in code, risk low (10/100).", [FINDING], CLINICAL_C, low, DENY)


def test_a_negated_claim_is_not_a_claim() -> None:
    text = GOOD + " It is not allowed to deploy before then."
    assert accept(text) == text


def test_mentions_markup_and_links_are_stripped() -> None:
    answer = (
        "<!channel> @here ## **Review required** for <@U024BE7LH>: `pump/dose.py` has SAFE-001; "
        "risk high (55/100), class C, safety-critical; needs 2 approvers and 1 clinical-safety-officer. "
        "[Details](https://evil.example/phish) @channel <at>Alice</at> &lt;!here&gt; @\u200beveryone"
    )
    out = accept(answer)
    assert out is not None
    for bad in ("<!", "<@", "@here", "@channel", "@everyone", "!here", "**", "`", "##", "](", "http", "<at>", "&lt;", "\u200b"):
        assert bad not in out, bad
    assert out.startswith("Review required for : pump/dose.py has SAFE-001;")
    assert "Details" in out


def test_phi_in_an_answer_is_redacted() -> None:
    out = accept(GOOD + " Patient: Rosa Delgado, SSN 321-54-9876.")
    assert out is not None and "Rosa" not in out and "321-54-9876" not in out and "[REDACTED:SSN]" in out


def test_the_cap_is_on_the_cleaned_text() -> None:
    assert len(GOOD) < MAX_CHARS
    assert accept(GOOD + " " + "x" * (MAX_CHARS - len(GOOD))) is None


# --------------------------------------------------------------------------- with a (fake) model


def test_a_models_faithful_answer_is_used_and_marked() -> None:
    drafted = summarize([], [FINDING], CLINICAL_C, HIGH, REVIEW, llm=FakeListChatModel(responses=[GOOD]))
    assert drafted.text == GOOD
    assert drafted.drafted_by == "llm:fakelistchatmodel"


def test_a_models_contradiction_gives_the_rules_draft() -> None:
    rules = deterministic_summary([], [FINDING], CLINICAL_C, HIGH, DENY)
    drafted = summarize([], [FINDING], CLINICAL_C, HIGH, DENY, llm=FakeListChatModel(responses=["approved, low risk"]))
    assert (drafted.text, drafted.drafted_by) == (rules, "rules")


def test_a_model_error_or_timeout_gives_the_rules_draft() -> None:
    rules = deterministic_summary([], [FINDING], CLINICAL_C, HIGH, REVIEW)
    broken = GenericFakeChatModel(messages=iter([]))
    assert summarize([], [FINDING], CLINICAL_C, HIGH, REVIEW, llm=broken).text == rules
    slow = FakeListChatModel(responses=[GOOD], sleep=2.0)
    started = time.perf_counter()
    drafted = summarize([], [FINDING], CLINICAL_C, HIGH, REVIEW, llm=slow, timeout_s=0.2)
    assert (drafted.text, drafted.drafted_by) == (rules, "rules")
    assert time.perf_counter() - started < 1.5


def test_the_graph_uses_the_models_summary_and_nothing_else_changes() -> None:
    without = review(DOSE_DIFF)
    answer = (
        "This change edits the infusion rate calculation in pump/dose.py. It is safety-critical, IEC 62304 class C, "
        f"with no test changes. Risk is {without.risk.level} ({without.risk.score}/100). Review required: it needs "
        "2 approvers and 1 clinical-safety-officer."
    )
    assert without.policy.decision == "review"
    for runner in ("steps", "langgraph"):
        model = FakeListChatModel(responses=[answer])
        with_llm = run_review(DOSE_DIFF, runner=runner, llm=model)  # type: ignore[arg-type]
        assert with_llm.summary.text == answer and with_llm.summary.drafted_by == "llm:fakelistchatmodel"
        same = with_llm.model_dump(exclude={"summary": {"text", "drafted_by"}, "commit_message": True})
        assert same == without.model_dump(exclude={"summary": {"text", "drafted_by"}, "commit_message": True})


# --------------------------------------------------------------------------- what a prompt may show


PHI_CODE = b"""diff --git a/svc/intake.py b/svc/intake.py
--- a/svc/intake.py
+++ b/svc/intake.py
@@ -1,1 +1,5 @@ def admit(patient):
 import logging
+GREETING = "Welcome back, Rosa"  # Rosa Delgado 321-54-9876
+SECOND = Patient(first="Amadou", last="Okonkwo", dob=date(1958, 3, 2), mrn=55512399)
+    notify(Ifeoma Chukwu, patient)
+    visit = '07/14/1961'
diff --git a/config/seed.yaml b/config/seed.yaml
--- a/config/seed.yaml
+++ b/config/seed.yaml
@@ -1,1 +1,2 @@
 patients:
+  - given: Amadou
diff --git a/tests/test_intake.py b/tests/test_intake.py
--- a/tests/test_intake.py
+++ b/tests/test_intake.py
@@ -1,1 +1,2 @@
 import intake
+PATIENT = {"name": "Marisol Quintero"}
"""


def test_the_excerpt_keeps_the_codes_shape_and_none_of_its_data() -> None:
    excerpt = masked_excerpt(parse_diff(PHI_CODE))
    for phi in ("Rosa", "Delgado", "321-54-9876", "Amadou", "Okonkwo", "1958", "55512399", "Ifeoma", "Chukwu",
                "07/14/1961", "Marisol", "Quintero"):
        assert phi not in excerpt, phi
    assert '+SECOND = Patient(first="…", last="…", dob=date(<n>, 3, 2), mrn=<n>)' in excerpt
    assert "+    notify(<name>, patient)" in excerpt
    assert "+  - given: …" in excerpt
    assert "(lines of this test file are not shown)" in excerpt


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ('x = "a # b"  # c', 'x = "…"'),
        ("q = 'it''s'", "q = '…''…'"),
        ("a = b // 2", "a = b"),
        ("-- Rosa", "# …"),
        ('s = "unterminated', 's = "…"'),
        (r'e = "a\"b" + c', 'e = "…" + c'),
    ],
)
def test_mask_code(line: str, masked: str) -> None:
    assert mask_code(line) == masked
