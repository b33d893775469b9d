"""The risk agent: an explained 0-100 score from the facts the other agents found."""

from __future__ import annotations

from collections.abc import Sequence

from assistant import risk as _risk
from assistant.domain import ClinicalSafety, Finding, Risk


def assess(
    findings: Sequence[Finding],
    clinical: ClinicalSafety,
    environment: str | None = None,
    service: str | None = None,
) -> Risk:
    return _risk.score(findings, clinical, environment, service)
