"""Whole-diff cases for the phi, secrets, crypto and injection families, labelled like the eval set.

Each fixture is a real `git diff` of a realistic change (several languages and
APIs, positives and look-alike negatives) with the findings it must produce;
matching follows the eval scorer: same category and file, line within 2.
Only these four families' categories are checked here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.diffs import parse_diff
from assistant.review.engine import review
from tests.support.labelled_cases import assert_matches_labels

FIXTURES = Path(__file__).parent / "fixtures"
MINE = {"phi-exposure-log", "phi-exposure-output", "hardcoded-secret", "weak-crypto", "injection"}
CASES = sorted(p.stem for p in FIXTURES.glob("*.diff"))


def test_there_are_positive_and_negative_fixtures() -> None:
    labels = [json.loads((FIXTURES / f"{c}.json").read_text())["expected"] for c in CASES]
    assert any(labels) and any(not x for x in labels)


@pytest.mark.parametrize("case", CASES)
def test_fixture_case(case: str) -> None:
    expected = json.loads((FIXTURES / f"{case}.json").read_text())["expected"]
    found = [f for f in review(parse_diff((FIXTURES / f"{case}.diff").read_bytes())).findings if f.category in MINE]
    assert_matches_labels(case, expected, found)
