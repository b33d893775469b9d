"""Benchmark `assistant.redact.redact`: throughput on log-like text, and time on hostile 1 MB lines.

Prints MB/s and lines/s for RE2 (what we ship) and, as the anchor, the same
patterns compiled with Python's backtracking `re` over the same input in the
same run. The hostile lines show why RE2: its time stays linear.

    .venv/bin/python bench/redact.py [--lines 200000]
"""

from __future__ import annotations

import argparse
import random
import re
import time

import assistant.redact as redact_module
from assistant.redact import redact

TEMPLATES = [
    "2026-11-25T09:{m:02d}:{s:02d}Z INFO request_id={rid} GET /api/deployments/dep_{rid} 200 {ms}ms",
    "2026-11-25T09:{m:02d}:{s:02d}Z WARN patient lookup mrn={mrn} took {ms}ms",
    "2026-11-25T09:{m:02d}:{s:02d}Z INFO admitted patient_name='Ana Silva' dob=1961-07-14 ward=4B",
    "2026-11-25T09:{m:02d}:{s:02d}Z DEBUG calling https://lab.example.org/v2/results?id={rid} with Bearer abcd{rid}efgh1234",
    "2026-11-25T09:{m:02d}:{s:02d}Z INFO build 1.2.{ms} commit 9f1c2e7a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e deployed",
    "def handle(patient: Patient) -> Response:  # line {ms}",
    "    return render(template, name=patient.display_name, count={ms})",
]


def corpus(lines: int) -> str:
    rng = random.Random(7)
    out = []
    for _ in range(lines):
        t = rng.choice(TEMPLATES)
        out.append(t.format(m=rng.randrange(60), s=rng.randrange(60), rid=rng.randrange(10**6),
                            ms=rng.randrange(1000), mrn=rng.randrange(10**7, 10**8)))
    return "\n".join(out)


def with_stdlib_re(text: str) -> str:
    lowered = text.lower()
    for p in STDLIB:
        if p[3] and not any(k in lowered for k in p[3]):
            continue
        text = p[1].sub(p[2], text)
        lowered = text.lower()
    return text


STDLIB = [(p.kind, re.compile(p.regex.pattern), p.replace, p.keywords) for p in redact_module._PATTERNS]


def timed(fn, arg: str) -> float:
    started = time.perf_counter()
    fn(arg)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    text = corpus(args.lines)
    mb = len(text.encode()) / 1e6
    for name, fn in (("re2 (gitops-health)", redact), ("stdlib re (anchor)", with_stdlib_re)):
        seconds = timed(fn, text)
        print(f"{name:22s} {mb / seconds:8.1f} MB/s {args.lines / seconds:12,.0f} lines/s  ({mb:.1f} MB in {seconds:.2f} s)")
    lines = text.split("\n")
    started = time.perf_counter()
    for line in lines:
        redact(line)
    seconds = time.perf_counter() - started
    print(f"{'re2, one call per line':22s} {mb / seconds:8.1f} MB/s {len(lines) / seconds:12,.0f} lines/s  (the logging case)")
    clean = [ln for ln in lines if "patient" not in ln and "Bearer" not in ln]
    started = time.perf_counter()
    for line in clean:
        redact(line)
    seconds = time.perf_counter() - started
    print(f"{'re2, lines without PHI':22s} {len(clean) / seconds:24,.0f} lines/s")
    hostile = {"1 MB of 'name: '": "name: " * 170_000, "1 MB of digits and dashes": "1-" * 500_000,
               "1 MB 'Patient: Ab Ab ...'": "Patient: " + "Ab " * 330_000}
    for label, line in hostile.items():
        print(f"hostile {label:28s} re2 {timed(redact, line):6.3f} s")
    print("(the stdlib anchor is not run on hostile lines: backtracking can take minutes)")


if __name__ == "__main__":
    main()
