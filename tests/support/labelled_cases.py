"""Checking a review against a case labelled like the eval set (../shared/eval/README.md "Matching").

A finding matches an expected one of the same category and file within 2
lines; a leftover within 2 lines of an expected finding of its category is a
duplicate, as in the scorer; anything else is a false alarm. The fixture
tests of every family share this, so they all judge the way the scorer does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assistant.domain import Finding

WINDOW = 2


def _near(f: Finding, expected: dict[str, Any]) -> bool:
    return f.category == expected["category"] and f.file == expected["file"] and abs(f.line - expected["line"]) <= WINDOW


def assert_matches_labels(case: str, expected: Sequence[dict[str, Any]], found: Sequence[Finding]) -> None:
    """Every expected finding found, nothing else reported (duplicates of a found one aside)."""
    unused = list(found)
    for exp in expected:
        near = [f for f in unused if _near(f, exp)]
        assert near, f"missed {exp} in {case}; found {[(f.rule, f.file, f.line) for f in found]}"
        unused.remove(min(near, key=lambda f: abs(f.line - exp["line"])))
    false_alarms = [f for f in unused if not any(_near(f, e) for e in expected)]
    assert not false_alarms, f"false alarms in {case}: {[(f.rule, f.file, f.line, f.message) for f in false_alarms]}"
