"""Review summary benchmark: CPU per deterministic summary, against the review it summarises.

Usage: .venv/bin/python bench/summary.py [--cases DIR] [--repeat 2000]

The server reviews every deploy request, and the summary node runs on every
review, so its deterministic draft must stay a rounding error of the review:
target (issue 4's summary role) <= 50 us CPU per summary of a small diff.
Anchor, measured in the same run on the same diffs: the CPU of the whole
review (`run_review`, steps runner, graph already loaded). Also printed: a
synthetic worst case, 20,000 findings over 200 files (the draft must not sort
them). CPU time (time.process_time), not wall clock: the machine is shared.
Exit 1 when the small-diff target is missed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

TARGET_US = 50.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=Path, default=Path("/work/shared/eval/cases"), help="directory of *.diff files")
    parser.add_argument("--repeat", type=int, default=2000, help="summaries per diff")
    parser.add_argument("--limit", type=int, default=30, help="diffs to use")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from assistant.domain import ClinicalSafety, Finding, PolicyResult, Risk
    from graphs.agents.summary import summarize
    from graphs.result import FileSummary
    from graphs.review import run_review

    diffs = sorted(args.cases.glob("*.diff"))[: args.limit]
    if not diffs:
        print(f"no *.diff under {args.cases}", file=sys.stderr)
        return 2
    run_review(diffs[0].read_bytes(), runner="steps")  # load rules, grammars, policies

    review_s = summary_s = 0.0
    for path in diffs:
        data = path.read_bytes()
        started = time.process_time()
        result = run_review(data, runner="steps", environment="production", service="infusion-pump-controller")
        review_s += time.process_time() - started
        facts = (result.files, result.findings, result.clinical_safety, result.risk, result.policy)
        started = time.process_time()
        for _ in range(args.repeat):
            summarize(*facts)
        summary_s += (time.process_time() - started) / args.repeat
    per_summary_us = summary_s / len(diffs) * 1e6
    per_review_us = review_s / len(diffs) * 1e6
    print(f"small diffs ({len(diffs)} eval cases): summary {per_summary_us:.1f} us CPU, "
          f"review (anchor) {per_review_us:.0f} us CPU, summary = {per_summary_us / per_review_us * 100:.2f}% of it")

    severities = ("low", "medium", "high", "critical")
    findings = [
        Finding(category="injection", severity=severities[i % 4], file=f"f{i % 200}.py", line=i + 1, rule="INJ-001", message="m")
        for i in range(20_000)
    ]
    files = [FileSummary(path=f"f{i}.py", status="modified", added=250) for i in range(200)]
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        summarize(files, findings, ClinicalSafety(), Risk(score=100, level="critical"), PolicyResult(decision="deny"))
        best = min(best, time.process_time() - started)
    print(f"20,000 findings over 200 files: summary {best * 1e3:.2f} ms CPU")

    ok = per_summary_us <= TARGET_US
    print(f"target <= {TARGET_US:.0f} us per small-diff summary: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
