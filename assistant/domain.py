"""Domain vocabulary shared by every part of gitops-health.

These models cross module boundaries (reviewer -> risk -> policy -> chat cards
-> JSON output), so they are pydantic models with closed value sets: a typo in
a category or severity fails loudly where it is made, not in an auditor's report.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["low", "medium", "high", "critical"]
RiskLevel = Literal["low", "medium", "high", "critical"]
Decision = Literal["allow", "review", "deny"]
SafetyClass = Literal["A", "B", "C"]

CATEGORIES: tuple[str, ...] = (
    "phi-exposure-log",
    "phi-exposure-output",
    "hardcoded-secret",
    "weak-crypto",
    "injection",
    "insecure-transport",
    "missing-audit",
    "access-control",
    "unencrypted-phi-storage",
    "clinical-safety",
)
Category = Literal[
    "phi-exposure-log",
    "phi-exposure-output",
    "hardcoded-secret",
    "weak-crypto",
    "injection",
    "insecure-transport",
    "missing-audit",
    "access-control",
    "unencrypted-phi-storage",
    "clinical-safety",
]

SEVERITY_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}


class Finding(BaseModel):
    """One problem on one added line of a diff."""

    model_config = ConfigDict(frozen=True)

    category: Category
    severity: Severity
    file: str
    line: int = Field(ge=1, description="line number in the new file")
    rule: str
    message: str
    regulations: list[str] = Field(default_factory=list)


class Suppression(BaseModel):
    """An inline `gitops-health: ignore[RULE] reason`: the finding it silenced is kept for the evidence."""

    model_config = ConfigDict(frozen=True)

    rule: str
    file: str
    line: int
    reason: str
    finding: Finding | None = None


class ClinicalSafety(BaseModel):
    safety_critical: bool = False
    iec62304_class: SafetyClass = "A"
    notes: list[str] = Field(default_factory=list)
    tests_changed: bool = False
    touched_units: list[str] = Field(default_factory=list)


class RiskFactor(BaseModel):
    name: str
    points: int
    detail: str


class Risk(BaseModel):
    score: int = Field(ge=0, le=100)
    level: RiskLevel
    factors: list[RiskFactor] = Field(default_factory=list)


class RequiredApproval(BaseModel):
    role: str
    count: int = Field(ge=1)


class Violation(BaseModel):
    rule: str
    reason: str


class PolicyResult(BaseModel):
    decision: Decision
    required_approvals: list[RequiredApproval] = Field(default_factory=list)
    violations: list[Violation] = Field(default_factory=list)
