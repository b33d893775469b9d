"""The explained risk score: 0-100, a level, and every factor that added points.

A reviewer or approver must be able to see why a change scored 72, so the
score is nothing but the sum of its factors, each with a sentence. Findings
count with diminishing returns (the second finding adds less than the first,
the tenth almost nothing): ten log lines with the same PHI field are not ten
times the risk of one, but many findings still push the score up. The score
is deterministic: same findings, same verdict, same number.
"""

from __future__ import annotations

from collections.abc import Sequence

from assistant.domain import SEVERITY_ORDER, ClinicalSafety, Finding, Risk, RiskFactor, RiskLevel

SEVERITY_POINTS: dict[str, float] = {"critical": 50.0, "high": 25.0, "medium": 10.0, "low": 3.0}
DECAY = 0.6  # the n-th finding (strongest first) counts DECAY ** (n - 1) of its severity's points

SAFETY_CRITICAL_POINTS = 25
NO_TESTS_POINTS = 15
CLASS_POINTS: dict[str, int] = {"A": 0, "B": 5, "C": 15}
PRODUCTION_POINTS = 10
DEVICE_SERVICE_POINTS = 10

PRODUCTION_NAMES = frozenset({"production", "prod", "prd", "live"})
# Words in a service name that say it drives a device or a clinical decision.
DEVICE_WORDS = ("pump", "infusion", "ventilator", "dose", "dosing", "insulin", "monitor", "alarm", "device", "pacemaker")

LEVELS: tuple[tuple[int, RiskLevel], ...] = ((75, "critical"), (50, "high"), (25, "medium"), (0, "low"))


def level_for(score: int) -> RiskLevel:
    for threshold, level in LEVELS:
        if score >= threshold:
            return level
    return "low"


def is_production(environment: str | None) -> bool:
    return environment is not None and environment.strip().lower() in PRODUCTION_NAMES


def score(
    findings: Sequence[Finding],
    clinical: ClinicalSafety,
    environment: str | None = None,
    service: str | None = None,
) -> Risk:
    """Score a reviewed change; factors come in a fixed order and their points sum to the score (capped at 100)."""
    factors: list[RiskFactor] = []
    if clinical.safety_critical:
        # The verdict below already scores the safety-critical change; its
        # clinical-safety findings point at the same lines, so count it once.
        findings = [f for f in findings if f.category != "clinical-safety"]
    factors.extend(_finding_factors(findings))
    if clinical.safety_critical:
        factors.append(
            RiskFactor(
                name="safety-critical-change",
                points=SAFETY_CRITICAL_POINTS,
                detail="the change touches dose calculation, units, infusion rates, alarms or device control",
            )
        )
        if not clinical.tests_changed:
            units = ", ".join(clinical.touched_units[:3]) or "the touched units"
            factors.append(
                RiskFactor(
                    name="safety-change-without-tests",
                    points=NO_TESTS_POINTS,
                    detail=f"no test changes for {units}",
                )
            )
    class_points = CLASS_POINTS[clinical.iec62304_class]
    if class_points:
        factors.append(
            RiskFactor(
                name=f"iec62304-class-{clinical.iec62304_class.lower()}",
                points=class_points,
                detail=f"IEC 62304 software safety class {clinical.iec62304_class}",
            )
        )
    if is_production(environment):
        factors.append(RiskFactor(name="production", points=PRODUCTION_POINTS, detail=f"deploys to {environment}"))
    if service and any(word in service.lower() for word in DEVICE_WORDS):
        factors.append(
            RiskFactor(
                name="device-service",
                points=DEVICE_SERVICE_POINTS,
                detail=f"service {service!r} controls a device or a clinical decision",
            )
        )
    total = min(100, sum(f.points for f in factors))
    return Risk(score=total, level=level_for(total), factors=factors)


def _finding_factors(findings: Sequence[Finding]) -> list[RiskFactor]:
    """One factor per category: its share of the diminishing-returns sum over all findings."""
    ordered = sorted(findings, key=lambda f: (-SEVERITY_ORDER[f.severity], f.category, f.file, f.line, f.rule))
    by_category: dict[str, list[tuple[Finding, float]]] = {}
    for n, finding in enumerate(ordered):
        points = SEVERITY_POINTS[finding.severity] * DECAY**n
        by_category.setdefault(finding.category, []).append((finding, points))
    factors: list[RiskFactor] = []
    for category, items in by_category.items():
        points = round(sum(p for _, p in items))
        if points == 0:
            continue  # far down the tail; it still shows in the findings
        counts: dict[str, int] = {}
        for finding, _ in items:
            counts[finding.severity] = counts.get(finding.severity, 0) + 1
        summary = ", ".join(f"{counts[s]} {s}" for s in ("critical", "high", "medium", "low") if s in counts)
        first = items[0][0]
        more = f" and {len(items) - 1} more" if len(items) > 1 else ""
        factors.append(
            RiskFactor(
                name=category,
                points=points,
                detail=f"{summary} {category} finding{'s' if len(items) > 1 else ''}: {first.file}:{first.line}{more}",
            )
        )
    return factors
