"""What a review produces, as the outside sees it (CONTRACTS.md's review JSON).

Kept apart from graphs/review.py so rendering, the HTTP adapter and chat
cards can read a result without importing LangGraph.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assistant.domain import ClinicalSafety, Finding, PolicyResult, Risk, Suppression


class FileSummary(BaseModel):
    """What the review keeps of one file once its lines are gone (memory stays bounded on huge diffs)."""

    model_config = ConfigDict(frozen=True)

    path: str
    old_path: str | None = None
    status: str
    language: str | None = None
    binary: bool = False
    added: int = 0
    removed: int = 0


class ReviewSummary(BaseModel):
    """Counts, and `text`: the few sentences a reviewer reads first (graphs/agents/summary.py).

    `drafted_by` says who worded `text`: "rules" (the deterministic draft,
    always available) or "llm:<provider>" when a model's re-wording passed
    every check. Either way the text decides nothing; the other keys do.
    """

    files: int = 0
    added_lines: int = 0
    removed_lines: int = 0
    findings_by_severity: dict[str, int] = Field(default_factory=dict)
    text: str = ""
    drafted_by: str = Field(default="rules", pattern=r"^(?:rules|llm:[A-Za-z0-9._\-]+)$")


class ReviewResult(BaseModel):
    """One review: the contract's keys, plus `suppressions`, `risk.factors`, `files` and `summary`."""

    findings: list[Finding] = Field(default_factory=list)
    suppressions: list[Suppression] = Field(default_factory=list)
    risk: Risk
    commit_message: str
    clinical_safety: ClinicalSafety
    policy: PolicyResult
    evidence: dict[str, Any] = Field(default_factory=dict)
    files: list[FileSummary] = Field(default_factory=list)
    summary: ReviewSummary = Field(default_factory=ReviewSummary)
