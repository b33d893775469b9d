"""The review workflow as one LangGraph graph; read top to bottom, it is the workflow.

    parse ─┬─▶ reviewer ────────┬─▶ risk ─▶ policy ─┬─▶ commit_writer ─▶ evidence
           └─▶ clinical_safety ─┘                   └─▶ summary

Memory is bounded by design: `parse` streams the diff one file at a time
(`iter_file_diffs`) and hands each file to the reviewer's and the
clinical-safety agent's per-file functions while it is in memory, keeping only
their answers (findings, suppressions, clinical scans) and a small summary of
the file. A 100 MB diff is therefore read once and never held whole; the only
lines kept are a bounded sample for the commit writer (`COMMIT_SAMPLE_LINES`),
which needs added and removed text to choose the commit type. The `reviewer`
and `clinical_safety` nodes then finish their agents' work side by side:
ordering the findings, and turning scans plus findings into the verdict.

Inputs that are not part of the state (the diff itself, environment, service,
PHI vocabulary, optional LLM, policy engine) travel in the run's context.

The topology is written once, in `WORKFLOW`. Two runners read it: the compiled
LangGraph graph (`build_review_graph`, what the server runs, with streaming
and debugging), and `run_steps`, a plain loop over the same nodes in the same
steps for the command line, because importing LangGraph alone costs 0.5-1 s
of a `gitops-health review` that otherwise takes a fraction of that.
"""

from __future__ import annotations

import inspect
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, TypedDict

from assistant.diffs import DiffError, FileDiff, Hunk, iter_file_diffs
from assistant.domain import ClinicalSafety, Finding, PolicyResult, Risk, Suppression
from assistant.policy import PolicyEngine
from assistant.review.engine import ReviewOutput
from assistant.review.vocabulary import PhiVocabulary
from graphs.agents import clinical_safety, commit_writer, evidence, policy, reviewer
from graphs.agents import risk as risk_agent
from graphs.agents import summary as summary_agent
from graphs.result import FileSummary, ReviewResult, ReviewSummary

if TYPE_CHECKING:
    from langgraph.runtime import Runtime

# Added+removed lines kept in full for the commit writer; files past it keep
# their headers (path, status, hunk headers) but not their lines.
COMMIT_SAMPLE_LINES = 100_000

Source = bytes | str | os.PathLike[str] | BinaryIO

_KIND = attrgetter("kind")


@dataclass(frozen=True)
class ReviewContext:
    source: Any  # bytes, a path, or a binary stream; read once, by `parse`
    environment: str | None = None
    service: str | None = None
    vocabulary: PhiVocabulary | None = None
    llm: Any = None  # a LangChain chat model, or None for the deterministic drafts
    policies: PolicyEngine | None = None
    commit_sample_lines: int = COMMIT_SAMPLE_LINES
    summary_llm: bool = True  # False: the summary keeps its rules draft (a caller that never shows it saves the model call)
    processes: int = 1  # 2: a large diff's second half is reviewed in a forked process (`_parse_in_two`)


class ReviewState(TypedDict, total=False):
    # parse
    files: list[FileSummary]
    sample: list[FileDiff]
    reviewed: ReviewOutput
    scans: list[Any]  # assistant.clinical.ClinicalFileScan
    # reviewer ∥ clinical_safety
    findings: list[Finding]
    suppressions: list[Suppression]
    clinical_safety: ClinicalSafety
    # then one after the other
    risk: Risk
    policy: PolicyResult
    commit_message: str
    evidence: dict[str, Any]
    review_summary: summary_agent.DraftedSummary  # beside the commit writer, while the sample is there


# --- nodes ------------------------------------------------------------------------------------


def parse(state: ReviewState, runtime: Runtime[ReviewContext]) -> dict[str, Any]:
    """Stream the diff once; each file is reviewed and scanned while it is in memory, then dropped."""
    ctx = runtime.context
    if ctx.processes > 1:
        split = _parse_in_two(ctx)
        if split is not None:
            return split
    kept = _Kept(ctx.commit_sample_lines)
    with _SourceStream(ctx.source) as stream:
        for file in iter_file_diffs(stream):
            kept.add(file, reviewer.review_file(file, ctx.vocabulary), clinical_safety.scan_file(file))
    return kept.update()


class _Kept:
    """What `parse` keeps of the files it has seen, in file order: their review, scan, summary and sample."""

    def __init__(self, budget: int) -> None:
        self.summaries: list[FileSummary] = []
        self.sample: list[FileDiff] = []
        self.reviewed = ReviewOutput()
        self.scans: list[Any] = []
        self.budget = budget

    def add(self, file: FileDiff, reviewed: ReviewOutput | None, scan: Any) -> None:
        """One more file; `reviewed` and `scan` are None when they come from elsewhere (`extend_answers`)."""
        if reviewed is not None:
            self.reviewed.extend(reviewed)
            self.scans.append(scan)
        added = removed = 0
        for hunk in file.hunks:
            kinds = list(map(_KIND, hunk.lines))  # counted in C: a big diff has millions of lines
            added += kinds.count("+")
            removed += kinds.count("-")
        self.summaries.append(
            FileSummary(
                path=file.path,
                old_path=file.old_path,
                status=file.status,
                language=file.language,
                binary=file.binary,
                added=added,
                removed=removed,
            )
        )
        if added + removed <= self.budget:
            self.budget -= added + removed
            self.sample.append(file)
        else:
            self.budget = 0
            self.sample.append(_headers_only(file))

    def update(self) -> dict[str, Any]:
        return {"files": self.summaries, "sample": self.sample, "reviewed": self.reviewed, "scans": self.scans}


def review_node(state: ReviewState) -> dict[str, Any]:
    out = reviewer.collect([state["reviewed"]])
    return {"findings": out.findings, "suppressions": out.suppressions}


def clinical_safety_node(state: ReviewState) -> dict[str, Any]:
    findings = state["reviewed"].findings
    if state["reviewed"].pending:  # findings waiting on another file's fact: as the reviewer node decides them
        findings = reviewer.collect([state["reviewed"]]).findings
    return {"clinical_safety": clinical_safety.assess(state["scans"], findings)}


def risk_node(state: ReviewState, runtime: Runtime[ReviewContext]) -> dict[str, Any]:
    ctx = runtime.context
    return {"risk": risk_agent.assess(state["findings"], state["clinical_safety"], ctx.environment, ctx.service)}


def policy_node(state: ReviewState, runtime: Runtime[ReviewContext]) -> dict[str, Any]:
    ctx = runtime.context
    decision = policy.decide(
        state["findings"], state["clinical_safety"], state["risk"], ctx.environment, ctx.service, engine=ctx.policies
    )
    return {"policy": decision}


def commit_writer_node(state: ReviewState, runtime: Runtime[ReviewContext]) -> dict[str, Any]:
    message = commit_writer.write_commit_message(
        state["sample"], state["findings"], state["clinical_safety"], state["risk"], llm=runtime.context.llm
    )
    return {"commit_message": message, "sample": []}  # the sample is not needed past this point


def evidence_node(state: ReviewState) -> dict[str, Any]:
    bundle = evidence.build_evidence(
        state["files"],
        state["findings"],
        state["suppressions"],
        state["clinical_safety"],
        state["risk"],
        state["policy"],
    )
    return {"evidence": bundle}


# --- the workflow: each node and the nodes whose results it waits for -------------------------

WORKFLOW: dict[str, tuple[Any, tuple[str, ...]]] = {
    "parse": (parse, ()),
    "reviewer": (review_node, ("parse",)),
    "clinical_safety": (clinical_safety_node, ("parse",)),
    "risk": (risk_node, ("reviewer", "clinical_safety")),
    "policy": (policy_node, ("risk",)),
    "commit_writer": (commit_writer_node, ("policy",)),
    "evidence": (evidence_node, ("commit_writer",)),
    "summary": (summary_agent.node, ("policy",)),
}


def _last_nodes() -> list[str]:
    waited_for = {dep for _, deps in WORKFLOW.values() for dep in deps}
    return [name for name in WORKFLOW if name not in waited_for]


def build_review_graph() -> Any:
    """The compiled LangGraph graph of `WORKFLOW`; `run_review` is the usual way in."""
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(ReviewState, context_schema=ReviewContext)
    for name, (node, _) in WORKFLOW.items():
        graph.add_node(name, node)
    for name, (_, deps) in WORKFLOW.items():
        if not deps:
            graph.add_edge(START, name)
        elif len(deps) == 1:
            graph.add_edge(deps[0], name)
        else:
            graph.add_edge(list(deps), name)  # waits for all of them
    for name in _last_nodes():
        graph.add_edge(name, END)
    return graph.compile(name="review")


_GRAPH: Any = None


def review_graph() -> Any:
    """The compiled graph, built once per process (compiling costs more than a small review)."""
    global _GRAPH
    if _GRAPH is None:
        _GRAPH = build_review_graph()
    return _GRAPH


@dataclass(frozen=True, slots=True)
class _Runtime:
    """What a node sees of its run when `run_steps` runs it: the same `.context` LangGraph gives."""

    context: ReviewContext


def steps() -> list[list[str]]:
    """`WORKFLOW` in supersteps, as LangGraph runs it: a node runs in the step after the last node it waits for."""
    level: dict[str, int] = {}
    for name, (_, deps) in WORKFLOW.items():  # written in dependency order
        level[name] = 1 + max((level[d] for d in deps), default=-1)
    out: list[list[str]] = [[] for _ in range(max(level.values()) + 1)]
    for name, n in level.items():
        out[n].append(name)
    return out


def run_steps(context: ReviewContext, upto: str | None = None) -> ReviewState:
    """Run `WORKFLOW` without LangGraph: the same nodes, the same steps, the same state.

    Nodes of one step see the state as it was when the step began and their
    updates are applied together after it, as in LangGraph's supersteps; they
    run one after the other (they are CPU-bound, so threads would not help).
    With `upto`, only that node and the nodes it waits for, directly or not, run.
    """
    state: dict[str, Any] = {}
    runtime = _Runtime(context)
    wanted = None if upto is None else _needed(upto)
    for step in _plan():
        updates: list[dict[str, Any]] = []
        for name, node, wants_runtime in step:
            if wanted is not None and name not in wanted:
                continue
            updates.append(node(state, runtime) if wants_runtime else node(state))
        for update in updates:
            state.update(update)
    return state  # type: ignore[return-value]


def _needed(upto: str) -> frozenset[str]:
    """`upto` and every node it waits for, directly or not."""
    if upto not in WORKFLOW:
        raise ValueError(f"upto must name a node of the workflow ({', '.join(WORKFLOW)}), not {upto!r}")
    wanted = {upto}
    todo = [upto]
    while todo:
        for dep in WORKFLOW[todo.pop()][1]:
            if dep not in wanted:
                wanted.add(dep)
                todo.append(dep)
    return frozenset(wanted)


_PLAN: tuple[Any, list[list[tuple[str, Any, bool]]]] | None = None


def _plan() -> list[list[tuple[str, Any, bool]]]:
    """`steps()` as (name, node, wants runtime), worked out once per WORKFLOW (the server runs a review per request)."""
    global _PLAN
    key = tuple((name, node, deps) for name, (node, deps) in WORKFLOW.items())
    if _PLAN is None or _PLAN[0] != key:
        plan = [[(name, WORKFLOW[name][0], "runtime" in inspect.signature(WORKFLOW[name][0]).parameters) for name in step]
                for step in steps()]
        _PLAN = (key, plan)
    return _PLAN[1]


Runner = Literal["langgraph", "steps"]


def run_review(
    source: Source,
    *,
    environment: str | None = None,
    service: str | None = None,
    llm: Any = None,
    vocabulary: PhiVocabulary | None = None,
    policies: PolicyEngine | None = None,
    runner: Runner = "langgraph",
    summary_llm: bool = True,
    processes: int = 1,
    upto: str | None = None,
) -> ReviewResult:
    """Review a unified diff end to end.

    `source` is the diff as bytes, a path to it, or a binary stream (read once,
    file by file). `runner` is "langgraph" (the compiled graph, as the server
    runs it) or "steps" (`run_steps`: the same workflow without importing
    LangGraph, for short-lived processes); both give the same result. Raises
    assistant.diffs.DiffError naming the input line for malformed or
    non-UTF-8 input, OSError when a path cannot be read, and
    assistant.policy.PolicyError when a policy fails. `summary_llm=False` keeps
    the review summary's rules draft even with `llm` set (`commit-msg` shows
    only the commit message, so it asks the model once, not twice).
    `processes=2` lets a short-lived caller (the CLI) review a large diff
    given as a path or bytes on two cores (`_parse_in_two`); the result is
    the same as with one. `upto="policy"` (steps runner only) runs just
    what the decision needs -- parse, reviewer, clinical safety, risk,
    policy -- for a caller that keeps nothing else (the deploy-approval
    server); the result's `commit_message` and `summary.text` are then
    empty and `evidence` is {}.
    """
    if upto is not None and runner != "steps":
        raise ValueError("upto needs runner='steps'")
    context = ReviewContext(
        source, environment, service, vocabulary, llm, policies, summary_llm=summary_llm, processes=processes
    )
    if runner == "steps":
        state = run_steps(context, upto)
    elif runner == "langgraph":
        state = review_graph().invoke({}, context=context)
    else:
        raise ValueError(f"runner must be 'langgraph' or 'steps', not {runner!r}")
    return result_from_state(state)


def result_from_state(state: ReviewState) -> ReviewResult:
    findings = state["findings"]
    files = state["files"]
    by_severity: dict[str, int] = {}
    for f in findings:
        by_severity[f.severity] = by_severity.get(f.severity, 0) + 1
    drafted = state.get("review_summary")
    return ReviewResult(
        findings=findings,
        suppressions=state["suppressions"],
        risk=state["risk"],
        commit_message=state.get("commit_message", ""),
        clinical_safety=state["clinical_safety"],
        policy=state["policy"],
        evidence=state.get("evidence", {}),
        files=files,
        summary=ReviewSummary(
            files=len(files),
            added_lines=sum(f.added for f in files),
            removed_lines=sum(f.removed for f in files),
            findings_by_severity=by_severity,
            text=drafted.text if drafted is not None else "",
            drafted_by=drafted.drafted_by if drafted is not None else "rules",
        ),
    )


# --- helpers ----------------------------------------------------------------------------------


class _SourceStream:
    """A context manager over any accepted source, closing only what it opened."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self._opened: BinaryIO | None = None

    def __enter__(self) -> Iterable[bytes]:
        src = self._source
        if isinstance(src, bytes | bytearray | memoryview):
            return io.BytesIO(bytes(src))
        if isinstance(src, str | os.PathLike):
            self._opened = Path(src).open("rb")
            return self._opened
        if isinstance(src, io.TextIOBase):
            raise TypeError("run_review needs a binary stream (open the diff with 'rb', or pass sys.stdin.buffer)")
        return src

    def __exit__(self, *exc: object) -> None:
        if self._opened is not None:
            self._opened.close()


def _headers_only(file: FileDiff) -> FileDiff:
    return FileDiff(
        path=file.path,
        old_path=file.old_path,
        status=file.status,
        binary=file.binary,
        old_mode=file.old_mode,
        new_mode=file.new_mode,
        hunks=[Hunk(h.old_start, h.old_length, h.new_start, h.new_length, h.header) for h in file.hunks],
    )


# --- two processes for a large diff (the command line) -----------------------------------------

# A diff of at least this many bytes is worth a fork (~10 ms, and the child's copy-on-write page faults);
# one of more than _FORK_MAX_BYTES is streamed in one process, so memory stays bounded however big it is.
_FORK_MIN_BYTES = 256 << 10
_FORK_MAX_BYTES = 64 << 20
_FILE_START = b"\ndiff --git "
# Before forking, the parent reviews the diff's first files (about this many bytes, and at most
# _WARM_SHARE of the diff): the first files pay for what is built lazily -- the rules' patterns and the
# states RE2 adds to its DFAs as it meets new text, ~0.15 s on the bench diff -- and a child forked after
# that inherits it all instead of building it again (measured on the bench diff: the second half takes
# 0.51 s cold, 0.35 s after the first 8 files, 0.33 s warm).
_WARM_BYTES = 96 << 10
_WARM_SHARE = 0.05
# Of what is left after that, the parent takes this share: it also reads the child's files for their
# summaries and sample and merges the answers, and the child pays copy-on-write faults (bench diff,
# per-process CPU: 0.40 evens them out).
_PARENT_SHARE = 0.40


def _fork_input(source: Source) -> bytes | None:
    """The whole diff when it is worth two processes (bytes or a file of the right size that starts like
    a git diff), else None (a stream, too small or big, or unreadable: the one-process path reports it)."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    elif isinstance(source, str | os.PathLike):
        try:
            size = os.path.getsize(source)
        except OSError:
            return None
        if not _FORK_MIN_BYTES <= size <= _FORK_MAX_BYTES:
            return None
        try:
            data = Path(source).read_bytes()
        except OSError:
            return None
    else:
        return None
    if not _FORK_MIN_BYTES <= len(data) <= _FORK_MAX_BYTES or not data.startswith(b"diff --git "):
        return None
    return data


def _cut_near(data: bytes, at: int) -> int:
    """The offset of the first `diff --git` line at or after `at` (else the last one before it), or 0."""
    cut = data.find(_FILE_START, at)
    if cut < 0:
        cut = data.rfind(_FILE_START, 0, at)
    return cut + 1 if cut > 0 else 0


def _parts(data: bytes) -> tuple[bytes, bytes, bytes] | None:
    """The diff cut in three at `diff --git` lines: the parent's warm-up files, the rest of the parent's
    share, the child's share; or None when there is no such cut. Each part is read the way one pass
    would read it: a cut is where a file starts."""
    warm = _cut_near(data, min(_WARM_BYTES, int(len(data) * _WARM_SHARE)))
    if warm <= 0:
        return None
    cut = _cut_near(data, warm + int((len(data) - warm) * _PARENT_SHARE))
    if cut <= warm:
        return None
    return data[:warm], data[warm:cut], data[cut:]


def _halves(source: Source) -> tuple[bytes, bytes] | None:
    """The parent's share and the child's share of a diff worth two processes, or None."""
    data = _fork_input(source)
    parts = None if data is None else _parts(data)
    if parts is None:
        return None
    return parts[0] + parts[1], parts[2]


def _parse_in_two(ctx: ReviewContext) -> dict[str, Any] | None:
    """`parse`, with the last files reviewed and scanned by a forked child meanwhile.

    The parent reviews the first files (`_WARM_BYTES`), so that what is built
    lazily is built once, then forks; the child reviews and scans the last
    files and sends back only their review and scans (small), while the
    parent does the files between and reads the child's files itself for
    their summaries and the commit writer's sample. Answers are merged in
    file order, so the state is exactly what one pass builds; if the child
    cannot be started or fails, the parent reviews its files itself. None
    (the caller then runs the one-process pass, which reports any error
    exactly as always) when the diff is not worth it, fork is unavailable,
    other threads run (a fork would copy their held locks), or a part does
    not parse.
    """
    import threading

    if not hasattr(os, "fork") or threading.active_count() > 1:
        return None
    data = _fork_input(ctx.source)
    parts = None if data is None else _parts(data)
    if parts is None:
        return None
    warm, mine, theirs_data = parts
    kept = _Kept(ctx.commit_sample_lines)
    child = None
    try:
        for part in (warm, mine):
            for file in iter_file_diffs(io.BytesIO(part)):
                kept.add(file, reviewer.review_file(file, ctx.vocabulary), clinical_safety.scan_file(file))
            if child is None and part is warm:
                child = _Child.start(theirs_data, ctx.vocabulary)
        theirs = list(iter_file_diffs(io.BytesIO(theirs_data)))
        answer = child.result() if child is not None else None
    except DiffError:
        return None
    finally:
        if child is not None:
            child.close()
    if answer is not None and answer[2] == len(theirs):
        for file in theirs:
            kept.add(file, None, None)
        kept.reviewed.extend(answer[0])
        kept.scans.extend(answer[1])
    else:  # no child, or no usable answer: the same work, here
        for file in theirs:
            kept.add(file, reviewer.review_file(file, ctx.vocabulary), clinical_safety.scan_file(file))
    return kept.update()


class _Child:
    """A forked process reviewing and scanning the files of one part of a diff; its answer comes back pickled."""

    def __init__(self, pid: int, reader: int) -> None:
        self._pid = pid
        self._reader = reader
        self._reaped = False

    @classmethod
    def start(cls, part: bytes, vocabulary: PhiVocabulary | None) -> _Child | None:
        import gc
        import sys

        reader, writer = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError:
            os.close(reader)
            os.close(writer)
            return None
        if pid:
            os.close(writer)
            return cls(pid, reader)
        # the child: never returns into the caller's code
        code = 0
        try:
            # Its collections leave the inherited objects alone, so their pages stay shared with the parent
            # (a full collection writes to every object it visits); a short-lived process frees nothing there.
            gc.freeze()
            os.close(reader)
            payload = _review_part(part, vocabulary)
            with os.fdopen(writer, "wb") as out:
                out.write(payload)
        except BaseException:  # noqa: BLE001 - any failure: the parent sees no answer and reviews alone
            code = 1
        finally:
            os._exit(code)

    def result(self) -> tuple[ReviewOutput, list[Any], int] | None:
        """The child's answer, or None if it failed."""
        import pickle

        chunks = []
        with os.fdopen(self._reader, "rb") as pipe:
            self._reader = -1
            while chunk := pipe.read(1 << 20):
                chunks.append(chunk)
        _, status = os.waitpid(self._pid, 0)
        self._reaped = True
        if os.waitstatus_to_exitcode(status) != 0 or not chunks:
            return None
        try:
            return pickle.loads(b"".join(chunks))  # type: ignore[no-any-return]
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError):
            return None

    def close(self) -> None:
        """Stop and reap the child if `result` did not (the parent failed first)."""
        import signal

        if self._reader >= 0:
            os.close(self._reader)
            self._reader = -1
        if not self._reaped:
            try:
                os.kill(self._pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self._pid, 0)
            self._reaped = True


def _review_part(part: bytes, vocabulary: PhiVocabulary | None) -> bytes:
    """In the child: review and scan every file of `part`, pickled as (review, scans, file count)."""
    import pickle

    reviewed = ReviewOutput()
    scans: list[Any] = []
    for file in iter_file_diffs(io.BytesIO(part)):
        reviewed.extend(reviewer.review_file(file, vocabulary))
        scans.append(clinical_safety.scan_file(file))
    return pickle.dumps((reviewed, scans, len(scans)), protocol=pickle.HIGHEST_PROTOCOL)
