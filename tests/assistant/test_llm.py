"""The LLM path: provider selection from GITOPS_HEALTH_LLM, and a draft that redacts and never fails.

Real parts: LangChain's fake chat models, and an OpenAI-compatible HTTP server
of our own on loopback that records every prompt it receives.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
    ParrotFakeChatModel,
)
from langchain_core.messages import AIMessage

from assistant.diffs import parse_diff
from assistant.domain import ClinicalSafety, Finding, Risk
from assistant.llm import LLMConfigError, chat_model_from_env, draft, parse_spec
from graphs.agents.commit_writer import write_commit_message


class OpenAIStub:
    """A loopback `/v1/chat/completions` that records prompts; `mode` is ok, slow or error."""

    def __init__(self) -> None:
        self.prompts: list[dict[str, Any]] = []
        self.mode = "ok"
        self.reply = "tighten dose limit checks\n\nThe dose calculator now rejects values above the ceiling."
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                stub.prompts.append({"path": self.path, "body": json.loads(body)})
                if stub.mode == "slow":
                    time.sleep(3)
                if stub.mode == "error":
                    payload = json.dumps({"error": {"message": "boom", "type": "server_error"}}).encode()
                    self.send_response(500)
                else:
                    payload = json.dumps(
                        {
                            "id": "chatcmpl-1",
                            "object": "chat.completion",
                            "created": 0,
                            "model": "stub",
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": stub.reply},
                                    "finish_reason": "stop",
                                }
                            ],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                        }
                    ).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def sent_text(self) -> str:
        return json.dumps(self.prompts)


@pytest.fixture
def openai_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIStub]:
    stub = OpenAIStub()
    stub.thread.start()
    monkeypatch.setenv("OPENAI_BASE_URL", stub.url)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


# --------------------------------------------------------------------------- provider selection


@pytest.mark.parametrize("spec", ["none", "", "  NONE "])
def test_none_means_no_model(spec: str) -> None:
    assert chat_model_from_env(spec) is None


def test_the_environment_variable_is_read_when_no_spec_is_given(
    monkeypatch: pytest.MonkeyPatch, openai_stub: OpenAIStub
) -> None:
    monkeypatch.setenv("GITOPS_HEALTH_LLM", "openai:stub-model")
    model = chat_model_from_env(None)
    assert model is not None and model.model_name == "stub-model"
    monkeypatch.setenv("GITOPS_HEALTH_LLM", "none")
    assert chat_model_from_env(None) is None


def test_an_unset_variable_means_no_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("GITOPS_HEALTH_LLM", raising=False)
    monkeypatch.chdir(tmp_path)
    assert chat_model_from_env(None) is None


def test_a_dotenv_file_is_read_when_the_variable_is_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, openai_stub: OpenAIStub
) -> None:
    monkeypatch.delenv("GITOPS_HEALTH_LLM", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("GITOPS_HEALTH_LLM=openai:from-dotenv\n")
    model = chat_model_from_env(None)
    assert model is not None and model.model_name == "from-dotenv"


def test_an_unknown_provider_is_a_clear_error() -> None:
    with pytest.raises(LLMConfigError, match=r"unknown provider 'mistral'.*openai:<model>"):
        chat_model_from_env("mistral:large")


def test_a_missing_model_name_is_a_clear_error() -> None:
    with pytest.raises(LLMConfigError, match=r"name the model.*openai:<model>"):
        parse_spec("openai")


@pytest.mark.parametrize(("provider", "extra"), [("ollama", "ollama"), ("anthropic", "anthropic"), ("google", "google")])
def test_a_provider_whose_extra_is_missing_names_the_pip_command(
    provider: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    monkeypatch.setenv("GOOGLE_API_KEY", "x")
    try:
        __import__({"ollama": "langchain_ollama", "anthropic": "langchain_anthropic", "google": "langchain_google_genai"}[provider])
    except ImportError:
        pass
    else:
        pytest.skip(f"the {extra} extra is installed here")
    with pytest.raises(LLMConfigError, match=rf"pip install 'gitops-health\[{extra}\]'"):
        chat_model_from_env(f"{provider}:some-model")


def test_openai_without_a_key_or_base_url_says_which_variable_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    with pytest.raises(LLMConfigError, match="OPENAI_API_KEY"):
        chat_model_from_env("openai:gpt-4o-mini")


def test_azure_without_its_endpoint_says_which_variables_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    monkeypatch.delenv("AZURE_OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMConfigError, match="AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_API_KEY"):
        chat_model_from_env("azure-openai:my-deployment")


# --------------------------------------------------------------------------- draft with fake models


def test_draft_without_a_model_returns_the_fallback() -> None:
    assert draft(None, "prompt", "fallback") == "fallback"


def test_draft_returns_the_models_answer() -> None:
    assert draft(FakeListChatModel(responses=["  a drafted line \n"]), "p", "fb") == "a drafted line"


def test_draft_redacts_the_prompt_before_the_model_sees_it() -> None:
    parrot = ParrotFakeChatModel()
    out = draft(parrot, "patient_name='Ana Silva' ssn 123-45-6789 DOB: 1980-02-03", "fb")
    assert "Ana Silva" not in out and "123-45-6789" not in out and "1980-02-03" not in out
    assert "[REDACTED:SSN]" in out


def test_draft_redacts_what_the_model_answers() -> None:
    model = FakeListChatModel(responses=["call 555-123-4567 about MRN: 88812345"])
    assert draft(model, "p", "fb") == "call [REDACTED:PHONE] about MRN: [REDACTED:MRN]"


def test_draft_falls_back_on_a_model_error() -> None:
    model = GenericFakeChatModel(messages=iter([]))  # exhausted: invoke raises
    assert draft(model, "p", "fallback") == "fallback"


def test_draft_falls_back_on_an_empty_answer() -> None:
    model = GenericFakeChatModel(messages=iter([AIMessage(content="   ")]))
    assert draft(model, "p", "fallback") == "fallback"


def test_draft_falls_back_on_a_timeout_without_waiting_for_the_model() -> None:
    model = FakeListChatModel(responses=["late"], sleep=2.0)
    started = time.perf_counter()
    assert draft(model, "p", "fallback", timeout_s=0.2) == "fallback"
    assert time.perf_counter() - started < 1.5


# --------------------------------------------------------------------------- draft over HTTP


def test_draft_over_a_real_openai_compatible_server(openai_stub: OpenAIStub) -> None:
    model = chat_model_from_env("openai:stub-model")
    out = draft(model, "summarise: MRN: 44556677 changed", "fallback", timeout_s=10, system="be brief")
    assert out.startswith("tighten dose limit checks")
    assert openai_stub.prompts and openai_stub.prompts[0]["path"] == "/v1/chat/completions"
    assert "44556677" not in openai_stub.sent_text()
    assert "[REDACTED:MRN]" in openai_stub.sent_text()


def test_a_500_from_the_server_falls_back(openai_stub: OpenAIStub) -> None:
    openai_stub.mode = "error"
    model = chat_model_from_env("openai:stub-model")
    assert draft(model, "p", "fallback", timeout_s=10) == "fallback"
    assert len(openai_stub.prompts) == 1  # no retries behind our back


def test_a_slow_server_falls_back_at_the_timeout(openai_stub: OpenAIStub) -> None:
    openai_stub.mode = "slow"
    model = chat_model_from_env("openai:stub-model", timeout_s=0.5)
    started = time.perf_counter()
    assert draft(model, "p", "fallback", timeout_s=0.5) == "fallback"
    assert time.perf_counter() - started < 2.5


PHI_DIFF = """\
diff --git a/svc/intake.py b/svc/intake.py
--- a/svc/intake.py
+++ b/svc/intake.py
@@ -1,3 +1,8 @@
 import logging
+# test fixture: patient_name = "Rosa Delgado", MRN: 90817263, DOB: 1961-07-14
+TEST_PATIENT = {"ssn": "321-54-9876", "name": "Rosa Delgado", "birthDate": "1961-07-14"}
+
+def admit(patient):
+    logging.info("admitting %s", patient.mrn)
 
 def discharge(patient):
     pass
"""


def test_no_ssn_mrn_name_or_dob_from_a_diff_reaches_the_model(openai_stub: OpenAIStub) -> None:
    files = parse_diff(PHI_DIFF)
    finding = Finding(
        category="phi-exposure-log", severity="high", file="svc/intake.py", line=6, rule="PHI-LOG-001",
        message="MRN logged", regulations=["HIPAA 164.312(b)"],
    )
    model = chat_model_from_env("openai:stub-model")
    message = write_commit_message(files, [finding], ClinicalSafety(), Risk(score=40, level="medium"), llm=model)
    sent = openai_stub.sent_text()
    assert openai_stub.prompts, "the model was never asked"
    for phi in ("321-54-9876", "90817263", "Rosa Delgado", "Rosa", "Delgado", "1961-07-14"):
        assert phi not in sent, phi
    # the model's prose is used, the trailers are ours
    assert message.splitlines()[0].endswith("tighten dose limit checks")
    assert "Risk: medium (40)" in message


def test_a_server_error_gives_the_deterministic_message(openai_stub: OpenAIStub) -> None:
    files = parse_diff(PHI_DIFF)
    args = (files, [], ClinicalSafety(), Risk(score=5, level="low"))
    openai_stub.mode = "error"
    with_llm = write_commit_message(*args, llm=chat_model_from_env("openai:stub-model"))
    assert with_llm == write_commit_message(*args)


def test_commit_msg_uses_the_configured_model_and_sends_it_no_phi(
    openai_stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import subprocess

    from assistant.commands.commit import commit_msg

    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GITOPS_HEALTH_LLM", "openai:stub-model")
    for args in (["init", "-q"], ["config", "user.email", "d@example.org"], ["config", "user.name", "D"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "intake.py").write_text(
        '# fixture: patient_name = "Rosa Delgado", MRN: 90817263, DOB: 1961-07-14, SSN 321-54-9876\n'
        "def admit(patient):\n    return patient\n"
    )
    subprocess.run(["git", "add", "svc/intake.py"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    assert commit_msg(staged=True) == 0
    message = capsys.readouterr().out
    assert message.startswith("feat(intake): tighten dose limit checks\n")
    assert message.rstrip().splitlines()[-1].startswith("Safety-Class: ")
    sent = openai_stub.sent_text()
    for phi in ("Rosa", "Delgado", "90817263", "1961-07-14", "321-54-9876"):
        assert phi not in sent, phi
    assert len(openai_stub.prompts) == 1  # only the commit message: commit-msg never shows a review summary


# --------------------------------------------------------------------------- the review summary over HTTP

PHI_HEAVY_DIFF = b"""\
diff --git a/svc/intake.py b/svc/intake.py
--- a/svc/intake.py
+++ b/svc/intake.py
@@ -1,3 +1,14 @@ def admit(patient):
 import logging
+# fixture for Rosa Delgado (MRN 90817263), born 07/14/1961, SSN 321-54-9876
+TEST_PATIENT = {"ssn": "321-54-9876", "name": "Rosa Delgado", "birthDate": "1961-07-14"}
+GREETING = "Welcome back, Rosa"
+SECOND = Patient(first="Amadou", last="Okonkwo-Baptiste", dob=date(1958, 3, 2), mrn=55512399)
+CONTACT = ("amadou.ob@example.org", "(617) 555-0199", "42 Larkspur Lane, Springfield")
+
+def admit(patient):
+    logging.info("admitting %s %s", patient.mrn, patient.ssn)  # Rosa Delgado 321-54-9876
+    notify(Ifeoma Chukwu, patient)
+    lookup(90817263)
+    return patient
 
 def discharge(patient):
     pass
diff --git a/config/seed.yaml b/config/seed.yaml
--- a/config/seed.yaml
+++ b/config/seed.yaml
@@ -1,1 +1,5 @@
 patients:
+  - name: Rosa Delgado
+    given: Amadou
+    dob: 1961-07-14
+    phone: 617-555-0199
diff --git a/db/seed.sql b/db/seed.sql
--- a/db/seed.sql
+++ b/db/seed.sql
@@ -1,1 +1,2 @@
 -- seed
+INSERT INTO patients (first, last, dob, ssn, mrn) VALUES ('Rosa', 'Delgado', '1961-07-14', '321549876', 'MRN-90817263');
diff --git a/data/patients.csv b/data/patients.csv
--- a/data/patients.csv
+++ b/data/patients.csv
@@ -1,1 +1,2 @@
 first,last,dob,mrn
+Marisol,Quintero,1975-11-30,44120987
diff --git a/tests/test_intake.py b/tests/test_intake.py
--- a/tests/test_intake.py
+++ b/tests/test_intake.py
@@ -1,1 +1,2 @@
 import intake
+PATIENT = {"name": "Marisol Quintero", "dob": "1975-11-30", "mrn": "44120987"}
"""

PHI_VALUES = (
    "Rosa", "Delgado", "321-54-9876", "321549876", "90817263", "1961-07-14", "07/14/1961", "Amadou", "Okonkwo",
    "Baptiste", "1958", "55512399", "amadou.ob@example.org", "555-0199", "Larkspur", "Ifeoma", "Chukwu", "Marisol",
    "Quintero", "1975-11-30", "44120987",
)

SUMMARY_SYSTEM = "You write the short summary"


def faithful_reply(result: Any) -> str:
    """What a well-behaved model would answer for `result`: the facts, in other words."""
    decision = {"allow": "Allowed", "review": "Review required", "deny": "Denied"}[result.policy.decision]
    roles = " and ".join(f"{a.count} {a.role}" for a in result.policy.required_approvals)
    needs = f"; it needs {roles}" if roles and result.policy.decision == "review" else ""
    return (
        f"This change touches {len(result.files)} files with {len(result.findings)} findings. "
        f"Risk is {result.risk.level} ({result.risk.score}/100). {decision}{needs}."
    )


def summary_prompts(stub: OpenAIStub) -> str:
    return json.dumps(
        [p for p in stub.prompts if any(SUMMARY_SYSTEM in str(m.get("content")) for m in p["body"]["messages"])]
    )


def test_no_phi_from_a_diff_full_of_it_reaches_the_model_for_the_summary(openai_stub: OpenAIStub) -> None:
    from graphs.agents.summary import summarize
    from graphs.review import run_review

    result = run_review(PHI_HEAVY_DIFF, runner="steps")
    openai_stub.reply = faithful_reply(result)
    drafted = summarize(
        result.files, result.findings, result.clinical_safety, result.risk, result.policy,
        sample=parse_diff(PHI_HEAVY_DIFF), llm=chat_model_from_env("openai:stub-model"), timeout_s=10,
    )
    sent = summary_prompts(openai_stub)
    assert len(openai_stub.prompts) == 1 and SUMMARY_SYSTEM in sent
    for phi in PHI_VALUES:
        assert phi not in sent, phi
    assert "svc/intake.py" in sent and "def admit(patient)" in sent  # the code's shape does get there
    assert (drafted.text, drafted.drafted_by) == (openai_stub.reply, "llm:openai")


def test_a_slow_server_gives_the_rules_summary_at_the_timeout(openai_stub: OpenAIStub) -> None:
    from graphs.agents.summary import deterministic_summary, summarize
    from graphs.review import run_review

    result = run_review(PHI_HEAVY_DIFF, runner="steps")
    openai_stub.mode = "slow"
    openai_stub.reply = faithful_reply(result)
    facts = (result.files, result.findings, result.clinical_safety, result.risk, result.policy)
    started = time.perf_counter()
    drafted = summarize(*facts, llm=chat_model_from_env("openai:stub-model"), timeout_s=0.5)
    assert time.perf_counter() - started < 2.5
    assert (drafted.text, drafted.drafted_by) == (deterministic_summary(*facts), "rules")
    assert openai_stub.prompts, "the model was asked"


def test_a_server_approving_a_denied_change_is_not_believed(openai_stub: OpenAIStub) -> None:
    from graphs.agents.summary import deterministic_summary, summarize
    from graphs.review import run_review

    denied = PHI_HEAVY_DIFF + b"""diff --git a/reminders/sms.py b/reminders/sms.py
--- a/reminders/sms.py
+++ b/reminders/sms.py
@@ -1,1 +1,2 @@
 import requests
+API_TOKEN = "tg_live_8f2c41d9a7e64b0b9c3e5a1d2f7b6c80"
"""
    result = run_review(denied, environment="production", runner="steps")
    assert result.policy.decision == "deny"
    openai_stub.reply = "approved, low risk"
    facts = (result.files, result.findings, result.clinical_safety, result.risk, result.policy)
    drafted = summarize(*facts, sample=parse_diff(denied), llm=chat_model_from_env("openai:stub-model"), timeout_s=10)
    assert openai_stub.prompts
    assert (drafted.text, drafted.drafted_by) == (deterministic_summary(*facts), "rules")


def test_review_cli_shows_the_models_summary_and_sends_it_no_phi(openai_stub: OpenAIStub, tmp_path: Any) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    from graphs.review import run_review

    result = run_review(PHI_HEAVY_DIFF, runner="steps")
    openai_stub.reply = faithful_reply(result)
    diff = tmp_path / "change.diff"
    diff.write_bytes(PHI_HEAVY_DIFF)
    env = {**os.environ, "GITOPS_HEALTH_LLM": "openai:stub-model", "OPENAI_BASE_URL": openai_stub.url, "OPENAI_API_KEY": "k"}
    cli = str(Path(sys.executable).parent / "gitops-health")
    proc = subprocess.run([cli, "review", "--format", "markdown", "--diff", str(diff)], capture_output=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.decode().splitlines()
    assert lines[4] == f"{openai_stub.reply} (drafted by llm:openai)"
    sent = summary_prompts(openai_stub)
    assert SUMMARY_SYSTEM in sent
    for phi in PHI_VALUES:
        assert phi not in sent, phi


def test_no_phi_reaches_the_model_in_any_prompt_of_a_review(openai_stub: OpenAIStub) -> None:
    from graphs.review import run_review

    run_review(PHI_HEAVY_DIFF, runner="steps", llm=chat_model_from_env("openai:stub-model"))
    assert len(openai_stub.prompts) == 2  # the commit writer's and the summary's
    sent = openai_stub.sent_text()
    for phi in PHI_VALUES:
        assert phi not in sent, phi


def test_the_provider_is_named_as_the_environment_named_it(openai_stub: OpenAIStub) -> None:
    from assistant.llm import provider_name

    assert provider_name(chat_model_from_env("openai:stub-model")) == "openai"
    assert provider_name(FakeListChatModel(responses=["x"])) == "fakelistchatmodel"
    odd = FakeListChatModel(responses=["x"], metadata={"gitops_health_provider": "my provider/v2"})
    assert provider_name(odd) == "my-provider-v2"  # always a valid `llm:<provider>` label
