"""The policy agent: gathers the facts into the policy input and lets Rego decide."""

from __future__ import annotations

from collections.abc import Sequence

from assistant.domain import ClinicalSafety, Finding, PolicyResult, Risk
from assistant.policy import PolicyEngine, default_engine, policy_input


def decide(
    findings: Sequence[Finding],
    clinical: ClinicalSafety,
    risk: Risk,
    environment: str | None = None,
    service: str | None = None,
    *,
    engine: PolicyEngine | None = None,
) -> PolicyResult:
    """allow, review or deny, with required approvals and violations (bundled policies by default)."""
    engine = engine or default_engine()
    return engine.evaluate(policy_input(findings, clinical, risk, environment, service))
