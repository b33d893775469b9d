"""The shape of a reviewer rule.

Rules are data: every rule the reviewer knows is a `Rule` value in one of the
family modules (phi.py, secrets.py, ...), gathered in `rules.py`. A rule is
either a line rule (a linear-time RE2 pattern behind a cheap keyword
prefilter, so it costs nothing on lines that cannot match) or a structural
rule (`check`) that looks at the hunk around the line: the enclosing function,
a removed decorator, which argument carries the patient object. Each rule
carries its own positive and negative examples, which the test-suite runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from assistant.domain import Category, Severity

if TYPE_CHECKING:
    from assistant.review.context import FileContext


@dataclass(frozen=True, slots=True)
class Hit:
    """Where a structural rule fired; `message` overrides the rule's when more precise."""

    line: int
    message: str | None = None
    # A fact (see `Rule.facts`) that, found anywhere in the same diff, withdraws this finding: a bucket
    # whose encryption is configured in another file of the change is not unencrypted.
    unless_fact: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str  # e.g. "PHI-LOG-001"
    category: Category
    severity: Severity
    message: str  # what is wrong and how to fix it
    regulations: tuple[str, ...]
    languages: frozenset[str] | None = None  # language_for() names; None: every file
    keywords: tuple[str, ...] = ()  # lowercase; the line must contain one (prefilter)
    pattern: str | None = None  # RE2 searched in an added line
    unless: tuple[str, ...] = ()  # RE2 patterns that veto a match on the same line
    check: Callable[["FileContext"], Iterable[Hit]] | None = None  # structural rule
    # Facts a file establishes for the whole diff (`s3-sse:<bucket>`), read on files the rule's keywords
    # gate in; a Hit's `unless_fact` names one. Files are reviewed one at a time, so this is how a rule
    # learns what another file of the same diff says.
    facts: Callable[["FileContext"], Iterable[str]] | None = None
    # Positive and negative examples: for a line rule, single added lines (with
    # the file name they live in as "path::line"); for a structural rule, whole diffs.
    examples: tuple[str, ...] = field(default=())
    counterexamples: tuple[str, ...] = field(default=())
