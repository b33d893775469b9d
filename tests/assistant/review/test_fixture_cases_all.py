"""Whole-diff cases checked in every category, labelled like the eval set.

The cases under fixtures/all/ were written as held-out tests of the reviewer
(real `git diff` output, several files and hunks, a third of them negatives
that look like problems) and are kept once the reviewer handles them, so a
later change that loses one shows here. Unlike test_fixture_cases.py, which
checks four families, every category counts: a miss or a false alarm of any
kind fails. Matching follows the eval scorer: same category and file, line
within 2, a duplicate within 2 lines of a matched finding ignored.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.diffs import parse_diff
from assistant.review.engine import review
from tests.support.labelled_cases import assert_matches_labels

FIXTURES = Path(__file__).parent / "fixtures" / "all"
CASES = sorted(p.stem for p in FIXTURES.glob("*.diff"))


def test_there_are_positive_and_negative_cases() -> None:
    labels = [json.loads((FIXTURES / f"{c}.json").read_text())["expected"] for c in CASES]
    assert any(labels) and any(not x for x in labels)


@pytest.mark.parametrize("case", CASES)
def test_case(case: str) -> None:
    expected = json.loads((FIXTURES / f"{case}.json").read_text())["expected"]
    found = list(review(parse_diff((FIXTURES / f"{case}.diff").read_bytes())).findings)
    assert_matches_labels(case, expected, found)
