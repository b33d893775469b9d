"""Every reviewer rule fires on each of its examples and stays silent on each counterexample.

Runs over `RULES` from assistant/review/rules.py, so every family's rules
(reviewer-1's and reviewer-2's) are held to their own documented behaviour; a
rule without examples or counterexamples fails here.
"""

from __future__ import annotations

import pytest

from assistant.review.engine import review
from assistant.review.examples import example_files
from assistant.review.rules import RULES, RULES_BY_ID

CASES = [
    pytest.param(rule.id, i, kind, id=f"{rule.id}-{kind}-{i}")
    for rule in RULES
    for kind, items in (("example", rule.examples), ("counterexample", rule.counterexamples))
    for i in range(len(items))
]


@pytest.mark.parametrize("rule_id", [r.id for r in RULES])
def test_every_rule_has_examples_and_counterexamples(rule_id: str) -> None:
    rule = RULES_BY_ID[rule_id]
    assert rule.examples, f"{rule_id} has no examples: add at least one line or diff it must fire on"
    assert rule.counterexamples, f"{rule_id} has no counterexamples: add at least one look-alike it must not fire on"


def test_rule_ids_are_unique() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize(("rule_id", "index", "kind"), CASES)
def test_rule_example(rule_id: str, index: int, kind: str) -> None:
    rule = RULES_BY_ID[rule_id]
    example = (rule.examples if kind == "example" else rule.counterexamples)[index]
    out = review(example_files(example), rules=(rule,))
    fired = [f for f in out.findings if f.rule == rule_id]
    if kind == "example":
        assert fired, f"{rule_id} did not fire on its example:\n{example}"
        assert all(f.message and f.regulations for f in fired)
    else:
        assert not fired, f"{rule_id} fired on its counterexample (line {fired[0].line}):\n{example}"
