"""The reviewer agent: what is wrong on the added lines, decided by rules (never by an LLM).

It works a file at a time (`review_file`) so the graph can stream a diff of
any size through it, and `collect` puts the per-file answers in the order the
outside sees: findings by file, line and rule.
"""

from __future__ import annotations

from collections.abc import Iterable

from assistant.diffs import FileDiff
from assistant.review.engine import ReviewOutput
from assistant.review.engine import review_file as _engine_review_file
from assistant.review.vocabulary import PhiVocabulary


def review_file(file: FileDiff, vocabulary: PhiVocabulary | None = None) -> ReviewOutput:
    """Findings and suppressions of one file."""
    return _engine_review_file(file, vocabulary)


def collect(outputs: Iterable[ReviewOutput]) -> ReviewOutput:
    """Merge per-file outputs in the contract's order (file, line, rule)."""
    merged = ReviewOutput()
    for output in outputs:
        merged.extend(output)
    merged.settle()
    merged.findings.sort(key=lambda f: (f.file, f.line, f.rule))
    merged.suppressions.sort(key=lambda s: (s.file, s.line, s.rule))
    return merged


def review(files: Iterable[FileDiff], vocabulary: PhiVocabulary | None = None) -> ReviewOutput:
    """The agent on its own: review every file of a diff."""
    return collect(review_file(f, vocabulary) for f in files)
