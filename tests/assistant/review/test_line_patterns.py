"""Line patterns of the quality-owned families stay on their line.

The engine finds candidate lines with one RE2 pass over a file's joined
post-image, so a negated class without a newline (`[^;]*`) can start a match
on a comment line and end it on the next line: the match is credited to the
comment (and vetoed there) and the real line is never seen. A negated class in
these patterns must exclude the newline (or be a `\\s`-class, which does).
"""

from __future__ import annotations

import re

import pytest

from assistant.diffs import parse_diff
from assistant.review import at_rest, auditing, crypto, secrets, transport
from assistant.review._structure import udiff
from assistant.review.engine import review

_NEGATED = re.compile(r"\[\^([^\]]*)\][*+{]")
FAMILIES = (secrets, crypto, transport, at_rest, auditing)


@pytest.mark.parametrize("rule", [r for f in FAMILIES for r in f.RULES if r.pattern], ids=lambda r: r.id)
def test_negated_classes_do_not_cross_lines(rule) -> None:  # type: ignore[no-untyped-def]
    crossing = [m.group(0) for m in _NEGATED.finditer(rule.pattern or "")
                if "\\n" not in m.group(1) and "\\s" not in m.group(1)]
    assert not crossing, f"{rule.id}: {crossing} can run into the next line; add \\n to the class"


def test_a_comment_above_does_not_hide_the_line_below() -> None:
    diff = udiff("db/maintenance/reindex.sql", "+-- maintenance window: pause PHI audit to speed up the re-index",
                 "+ALTER DATABASE AUDIT SPECIFICATION PhiTablesAudit WITH (STATE = OFF);")
    found = [(f.rule, f.line) for f in review(parse_diff(diff.encode())).findings]
    assert ("AUD-002", 2) in found
