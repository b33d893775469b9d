"""`gitops-health review` as a pipeline runs it: a real subprocess, real files, real stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).parent / "gitops-health")

DIFF = b"""diff --git a/svc/views.py b/svc/views.py
index 1111111..2222222 100644
--- a/svc/views.py
+++ b/svc/views.py
@@ -10,3 +10,5 @@ def chart(request, patient_id):
     patient = Patient.objects.get(pk=patient_id)
     check_access(request.user, patient)
+    log.info("Viewing chart for %s, DOB %s", patient.full_name, patient.date_of_birth)
+    API_TOKEN = "tg_live_8f2c41d9a7e64b0b9c3e5a1d2f7b6c80"
     return render(request, "chart.html", {"patient": patient})
"""


def review(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "GITOPS_HEALTH_LLM": "none"}
    return subprocess.run([CLI, "review", *args], input=stdin, capture_output=True, timeout=120, env=env)


def write(tmp_path: Path, data: bytes, name: str = "change.diff") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_json_has_the_contract_shape(tmp_path: Path) -> None:
    proc = review("--diff", write(tmp_path, DIFF), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"findings", "risk", "commit_message", "clinical_safety", "policy", "evidence"} <= set(data)
    by_category = {f["category"]: f for f in data["findings"]}
    assert by_category["phi-exposure-log"]["line"] == 12
    assert by_category["hardcoded-secret"]["line"] == 13
    for f in data["findings"]:
        assert {"category", "severity", "file", "line", "rule", "message", "regulations"} <= set(f)
        assert f["file"] == "svc/views.py"
    assert data["risk"]["level"] in ("low", "medium", "high", "critical") and 0 <= data["risk"]["score"] <= 100
    assert data["policy"]["decision"] == "deny"
    assert {"safety_critical", "iec62304_class", "notes"} <= set(data["clinical_safety"])
    assert isinstance(data["commit_message"], str) and data["commit_message"]


def test_markdown_and_text(tmp_path: Path) -> None:
    path = write(tmp_path, DIFF)
    md = review("--diff", path, "--format", "markdown")
    assert md.returncode == 0 and md.stdout.startswith(b"## gitops-health review")
    assert b"| Severity | Rule |" in md.stdout
    text = review("--diff", path, "--format", "text")
    assert text.returncode == 0 and text.stdout.startswith(b"Decision: DENY")


def test_stdin_dash(tmp_path: Path) -> None:
    proc = review("--diff", "-", "--format", "json", stdin=DIFF)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["policy"]["decision"] == "deny"


def test_malformed_input_exits_2_naming_the_line_with_nothing_on_stdout(tmp_path: Path) -> None:
    bad = DIFF.replace(b"     check_access", b"?    check_access")
    proc = review("--diff", write(tmp_path, bad), "--format", "json")
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert b"line 7" in proc.stderr


def test_non_utf8_input_exits_2_naming_the_line(tmp_path: Path) -> None:
    bad = DIFF.replace(b"DOB %s", b"DOB \xe9%s")
    proc = review("--diff", "-", "--format", "json", stdin=bad)
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert b"line 8" in proc.stderr and b"UTF-8" in proc.stderr


def test_binary_garbage_exits_2(tmp_path: Path) -> None:
    garbage = bytes((i * 7919 + 13) % 256 for i in range(4096))
    proc = review("--diff", write(tmp_path, garbage, "garbage.bin"), "--format", "json")
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert b"line " in proc.stderr


def test_an_empty_diff_is_a_clean_result(tmp_path: Path) -> None:
    proc = review("--diff", write(tmp_path, b""), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["findings"] == [] and data["policy"]["decision"] == "allow" and data["risk"]["level"] == "low"


def test_a_missing_file_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    proc = review("--diff", str(tmp_path / "nope.diff"))
    assert proc.returncode == 2
    assert proc.stdout == b""
    assert b"does not exist" in proc.stderr


def test_review_imports_no_heavy_or_chat_sdk(tmp_path: Path) -> None:
    path = write(tmp_path, DIFF)
    code = (
        "import sys\n"
        "from assistant.commands import review\n"
        f"code = review.run({path!r}, 'json')\n"
        "heavy = {'torch', 'chromadb', 'langgraph', 'langchain_core', 'langsmith', 'slack_bolt', 'slack_sdk', 'botbuilder', 'langchain_openai', 'langchain_anthropic',"
        " 'langchain_ollama', 'langchain_google_genai', 'fastapi', 'sentence_transformers', 'sqlalchemy'}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print(code, loaded, file=sys.stderr)\n"
    )
    env = {**os.environ, "GITOPS_HEALTH_LLM": "none"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, env=env)
    assert proc.stderr.decode().strip().splitlines()[-1] == "0 []"


def _large_diff(files: int = 40, lines: int = 220) -> bytes:
    """A multi-file diff past the two-process threshold (256 KB), with findings in its first and last files."""
    parts = []
    for i in range(files):
        body = "".join(f"+def row_{i}_{n}(item):\n+    return build_row(item, page={n}, total=sum(item.rows))\n"
                       for n in range(lines // 2))
        parts.append(f"diff --git a/pkg/m{i}.py b/pkg/m{i}.py\nnew file mode 100644\nindex 0000000..1111111\n"
                     f"--- /dev/null\n+++ b/pkg/m{i}.py\n@@ -0,0 +1,{lines} @@\n{body}".encode())
    data = DIFF + b"".join(parts) + DIFF.replace(b"svc/views.py", b"svc/late_views.py")
    assert len(data) > 256 << 10
    return data


def test_a_large_diff_on_two_cores_prints_exactly_what_one_core_prints(tmp_path: Path) -> None:
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        import pytest

        pytest.skip("needs two CPUs and sched_setaffinity")
    path = write(tmp_path, _large_diff())
    one_cpu = {min(os.sched_getaffinity(0))}
    env = {**os.environ, "GITOPS_HEALTH_LLM": "none"}
    for fmt in ("json", "markdown"):
        argv = [CLI, "review", "--diff", path, "--format", fmt]
        two = subprocess.run(argv, capture_output=True, timeout=120, env=env)
        one = subprocess.run(argv, capture_output=True, timeout=120, env=env,
                             preexec_fn=lambda: os.sched_setaffinity(0, one_cpu))
        assert two.returncode == one.returncode == 0, (two.stderr, one.stderr)
        assert two.stdout == one.stdout
        if fmt == "json":
            assert {f["file"] for f in json.loads(two.stdout)["findings"]} == {"svc/views.py", "svc/late_views.py"}


def test_a_review_writes_nothing_to_stderr(tmp_path: Path) -> None:
    # (objects still alive at exit, such as the policy engine, must not print tracebacks from their finalisers)
    proc = review("--diff", write(tmp_path, DIFF), "--format", "json")
    assert proc.returncode == 0
    assert proc.stderr == b""
