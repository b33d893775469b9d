"""Rego policy evaluation: the policy decides, this module only gathers input and reads the answer.

Policies are Rego v1 files evaluated in-process by `regopy` (rego-cpp). Every
file of a directory is parsed and the whole set compiled when the engine is
loaded, so a broken policy stops start-up with its file and line instead of
failing the first deploy request. The compiled bundle is kept and each
evaluation only sets the input and runs the bundle's plan (about a millisecond).

The decision lives in package `gitops.review` (see policies/review.rego): other
files add to its partial sets `deny`, `review` and `approvals`, so a team
extends the defaults by dropping a file beside them, without editing ours.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Load google-re2's extension before rego-cpp's library, never after: with
# regopy 1.5.2 and google-re2 1.1, importing `re2` once regopy has loaded
# librego_shared.so (which exports its own operator new/delete) corrupts the
# heap: `free(): invalid size` on the first re2.compile. The reviewer,
# redaction and logging all use re2, and this is the only module that imports
# regopy, so importing re2 here first keeps every process safe.
import re2  # noqa: F401  (import order is the point)

from assistant.domain import ClinicalSafety, Finding, PolicyResult, Risk

if TYPE_CHECKING:
    from regopy import Bundle, Interpreter

PACKAGE = "gitops.review"
RESULT_QUERY = "result := data.gitops.review.result"

_ERROR_HEAD = re.compile(r"\(error (\d+):")
_ERROR_MSG = re.compile(r"\(errormsg (\d+):")
_PACKAGE_RE = re.compile(r"^package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
_TEST_RULE_RE = re.compile(r"^(test_\w+)\b", re.MULTILINE)
# Built-ins whose answer is not a function of the input (clock, randomness, network, runtime):
# policies that call one are evaluated every time, never answered from the memo.
_IMPURE_RE = re.compile(
    r"\b(?:time\.now_ns|http\.send|rand\.intn|uuid\.rfc4122|opa\.runtime|net\.lookup_ip_addr|io\.jwt\.decode_verify)\s*\("
)
MEMO_SIZE = 1024


class PolicyError(Exception):
    """A policy that cannot be loaded or evaluated; names the file and line so it can be fixed."""

    def __init__(self, file: str | None, line: int | None, message: str) -> None:
        where = file or "<policies>"
        if line:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line
        self.message = message


def default_directory() -> Path:
    """The bundled policies: the top-level `policies` package ships its .rego files in the wheel."""
    import policies

    return Path(policies.__file__).parent


def policy_files(directory: Path, *, tests: bool) -> list[Path]:
    """The .rego files of a directory tree in a fixed order; `tests` picks *_test.rego or the others."""
    return sorted(p for p in directory.rglob("*.rego") if p.name.endswith("_test.rego") == tests)


def new_interpreter() -> Interpreter:
    """An interpreter that reports errors only through exceptions.

    rego-cpp prints its diagnostics to the process's standard output at the
    default log level, which would corrupt a command's JSON output.
    """
    from regopy import Interpreter, LogLevel

    rego = Interpreter()
    rego.log_level = LogLevel.NONE
    return rego


def add_modules(rego: Interpreter, files: Iterable[Path]) -> dict[str, str]:
    """Parse each file into the interpreter; a syntax error becomes a PolicyError with its file and line."""
    from regopy import RegoError

    sources: dict[str, str] = {}
    for path in files:
        name = str(path)
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError(name, None, f"not valid UTF-8 ({exc.reason}); save the policy as UTF-8") from None
        except OSError as exc:
            raise PolicyError(name, None, f"cannot read the policy: {exc.strerror}") from None
        sources[name] = source
        try:
            rego.add_module(name, source)
        except RegoError as exc:
            raise error_from_rego(str(exc), sources) from None
    return sources


def error_from_rego(text: str, sources: dict[str, str]) -> PolicyError:
    """Turn rego-cpp's error S-expression into a PolicyError naming file and line.

    rego-cpp reports `(error <len>:<module name>|<byte offset>|<length> (errormsg <len>:<text>) ...)`;
    strings are length-prefixed, so they are read by length, not by delimiter.
    """
    file: str | None = None
    line: int | None = None
    message = "the policy is not valid Rego v1"
    head = _ERROR_HEAD.search(text)
    if head:
        start = head.end()
        name = text[start : start + int(head.group(1))]
        rest = text[start + int(head.group(1)) :]
        loc = re.match(r"\|(\d+)\|", rest)
        if name in sources:
            file = name
            if loc:
                offset = int(loc.group(1))
                line = sources[name].encode("utf-8")[:offset].count(b"\n") + 1
    msg = _ERROR_MSG.search(text)
    if msg:
        message = text[msg.end() : msg.end() + int(msg.group(1))]
    return PolicyError(file, line, message)


def query(rego: Interpreter, text: str) -> Any:
    """`Interpreter.query` that raises instead of crashing.

    regopy 1.5 checks the C call's result against 0 while ctypes returns None,
    so a query that fails to compile yields an Output around a null pointer and
    the next call on it segfaults the process. This calls the same C function
    and raises RegoError with the interpreter's message instead.
    """
    from regopy import RegoError
    from regopy.output import Output
    from regopy.rego_shared import rego_get_error, rego_query

    try:
        impl = rego_query(rego._impl, text)
    except RegoError:
        impl = None
    if not impl:
        message = rego_get_error(rego._impl) or "the query failed to compile"
        if "rego-with" in message or "rego-localref" in message:
            message += (
                " (a rego-cpp limitation: replace input key by key, `with input.findings as fs`,"
                " not `with input as {...}`, and give `with` a local, literal or function call,"
                " not a rule; see policies/review_test.rego)"
            )
        raise RegoError(message)
    return Output(impl)


def output_errors(output: Any) -> str:
    """The messages of a failed query (its result node is a sequence of errors)."""
    messages: list[str] = []
    node = output.node()
    for i in range(len(node._children)):
        text = node.at(i).json()
        msg = _ERROR_MSG.search(text)
        if msg:
            messages.append(text[msg.end() : msg.end() + int(msg.group(1))])
    return "; ".join(messages) or "the policy failed to evaluate"


def output_value(output: Any, binding: str | None = None) -> Any:
    """The query's value as Python data; `_UNDEFINED` when the query has no result.

    Calling `expressions()` on an undefined result aborts the process inside
    rego-cpp, so the printed form is checked first.
    """
    text = str(output)
    if text == "undefined":
        return _UNDEFINED
    data = json.loads(text)
    if binding is not None:
        return data.get("bindings", {}).get(binding, _UNDEFINED)
    expressions = data.get("expressions", [])
    return expressions[0] if expressions else _UNDEFINED


_UNREADABLE = (
    "the policy result is not valid JSON; rego-cpp quotes computed strings inside sprintf's %s "
    "(e.g. sprintf(\"%s\", [concat(...)])): build such strings with concat, or use %v"
)


class _Undefined:
    def __repr__(self) -> str:
        return "undefined"


_UNDEFINED: Any = _Undefined()


@dataclass(frozen=True, slots=True)
class PolicyEngine:
    """A loaded, compiled policy set; `evaluate` is safe to call from several threads."""

    directory: Path
    files: tuple[str, ...]
    _bundle: Bundle
    _rego: Interpreter
    _lock: threading.Lock
    # Answers by input, when every policy is a pure function of its input (see `_IMPURE_RE`); None otherwise.
    _memo: dict[str, Any] | None = None

    @classmethod
    def load(cls, directory: str | Path | None = None) -> PolicyEngine:
        """Parse and compile every non-test .rego file of `directory` (default: the bundled policies).

        Raises PolicyError naming the file and line of the first broken policy,
        or explaining what is missing (no files, no `gitops.review` result).
        """
        from regopy import RegoError

        root = Path(directory) if directory is not None else default_directory()
        if not root.is_dir():
            raise PolicyError(str(root), None, "no such policy directory; pass a directory of .rego files")
        files = policy_files(root, tests=False)
        if not files:
            raise PolicyError(str(root), None, "no .rego policy files here (only *_test.rego?); add a policy file")
        builder = new_interpreter()
        sources = add_modules(builder, files)
        try:
            bundle = builder.build(RESULT_QUERY, [])
        except RegoError as exc:
            raise error_from_rego(str(exc), sources) from None
        if not bundle.ok():
            raise PolicyError(str(root), None, "the policies did not compile")
        pure = not any(_IMPURE_RE.search(source) for source in sources.values())
        engine = cls(root, tuple(sources), bundle, new_interpreter(), threading.Lock(), {} if pure else None)
        engine.evaluate(policy_input([], ClinicalSafety(), Risk(score=0, level="low"), None, None))
        return engine

    def evaluate(self, input: dict[str, Any]) -> PolicyResult:
        """Run the policies on one input; the answer is validated, so a policy cannot return nonsense.

        Pure policies are evaluated once per distinct input (rego-cpp takes a
        millisecond or more per call; a server sees the same clean-change input
        again and again), up to MEMO_SIZE inputs.
        """
        from pydantic import ValidationError

        key = json.dumps(input, sort_keys=True, separators=(",", ":")) if self._memo is not None else ""
        with self._lock:
            value = self._memo.get(key, _UNDEFINED) if self._memo is not None else _UNDEFINED
            if value is _UNDEFINED:
                self._rego.set_input(input)
                try:
                    output = self._rego.query_bundle(self._bundle)
                except ValueError as exc:  # regopy parses the result as JSON and rego-cpp printed something else
                    raise PolicyError(str(self.directory), None, _UNREADABLE + f" ({exc})") from None
                if not output.ok():
                    raise PolicyError(str(self.directory), None, output_errors(output))
                value = output_value(output, "result")
                if self._memo is not None and value is not _UNDEFINED:
                    if len(self._memo) >= MEMO_SIZE:
                        del self._memo[next(iter(self._memo))]  # the oldest answer goes first
                    self._memo[key] = value
        if value is _UNDEFINED:
            raise PolicyError(
                str(self.directory),
                None,
                f"data.{PACKAGE}.result is undefined; a policy must define `result` in package {PACKAGE} "
                "(keep the bundled review.rego beside your own files)",
            )
        try:
            return PolicyResult.model_validate(value)
        except ValidationError as exc:
            raise PolicyError(
                str(self.directory), None, f"data.{PACKAGE}.result is not a valid decision: {exc.errors()[0]['msg']}"
            ) from None


_DEFAULT: PolicyEngine | None = None
_DEFAULT_LOCK = threading.Lock()


def default_engine() -> PolicyEngine:
    """The bundled policies, loaded once per process (the server and the review graph share it)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = PolicyEngine.load()
        return _DEFAULT


# rego-cpp holds an input finding in ~18 KB and evaluates in time linear in
# the findings; a 100 MB diff can carry tens of thousands. The policy sees the
# most severe MAX_POLICY_FINDINGS in full and exact counts of all of them.
MAX_POLICY_FINDINGS = 1000


def policy_input(
    findings: Sequence[Finding],
    clinical: ClinicalSafety,
    risk: Risk,
    environment: str | None,
    service: str | None,
) -> dict[str, Any]:
    """The one document the policies see: facts only, never LLM prose.

    `findings` lists at most MAX_POLICY_FINDINGS, most severe first;
    `finding_counts` ({category: {severity: n}}) and `findings_total` count
    every finding, so a rule that decides on "any X" stays exact on any diff.
    """
    from assistant.domain import SEVERITY_ORDER

    counts: dict[str, dict[str, int]] = {}
    for f in findings:
        by_severity = counts.setdefault(f.category, {})
        by_severity[f.severity] = by_severity.get(f.severity, 0) + 1
    listed = sorted(findings, key=lambda f: (-SEVERITY_ORDER[f.severity], f.file, f.line, f.rule))[:MAX_POLICY_FINDINGS]
    return {
        "findings": [
            {
                "category": f.category,
                "severity": f.severity,
                "file": f.file,
                "line": f.line,
                "rule": f.rule,
                "regulations": list(f.regulations),
            }
            for f in listed
        ],
        "finding_counts": counts,
        "findings_total": len(findings),
        "clinical_safety": {
            "safety_critical": clinical.safety_critical,
            "iec62304_class": clinical.iec62304_class,
            "tests_changed": clinical.tests_changed,
            "touched_units": list(clinical.touched_units),
        },
        "risk": {
            "score": risk.score,
            "level": risk.level,
            "factors": [{"name": f.name, "points": f.points} for f in risk.factors],
        },
        "environment": environment,
        "service": service,
    }


# --- Rego tests -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegoTest:
    file: str
    package: str
    name: str
    passed: bool
    detail: str = ""  # why it failed: undefined, false, or the evaluation error


def run_tests(directory: str | Path | None = None) -> list[RegoTest]:
    """Run every `test_*` rule of the *_test.rego files under `directory` against all its policies.

    A test passes when its rule is defined and not false, as with `opa test`.
    Raises PolicyError for a file that does not parse, naming file and line.
    """
    from regopy import RegoError

    root = Path(directory) if directory is not None else default_directory()
    if not root.is_dir():
        raise PolicyError(str(root), None, "no such policy directory; pass a directory of .rego files")
    tests = policy_files(root, tests=True)
    rego = new_interpreter()
    sources = add_modules(rego, [*policy_files(root, tests=False), *tests])
    results: list[RegoTest] = []
    for path in tests:
        source = sources[str(path)]
        package = _PACKAGE_RE.search(source)
        if package is None:
            raise PolicyError(str(path), 1, "no `package` declaration; start the file with `package <name>`")
        names = dict.fromkeys(_TEST_RULE_RE.findall(source))  # a test may have several bodies
        for name in names:
            try:
                output = query(rego, f"x := data.{package.group(1)}.{name}")
            except ValueError:
                results.append(RegoTest(str(path), package.group(1), name, False, _UNREADABLE))
                continue
            except RegoError as exc:
                text = str(exc)
                detail = str(error_from_rego(text, sources)) if text.startswith("(") else text
                results.append(RegoTest(str(path), package.group(1), name, False, detail))
                continue
            if not output.ok():
                results.append(RegoTest(str(path), package.group(1), name, False, output_errors(output)))
                continue
            value = output_value(output, "x")
            if value is _UNDEFINED:
                results.append(RegoTest(str(path), package.group(1), name, False, "undefined (a condition in its body failed)"))
            elif value is False:
                results.append(RegoTest(str(path), package.group(1), name, False, "false"))
            else:
                results.append(RegoTest(str(path), package.group(1), name, True))
    return results
