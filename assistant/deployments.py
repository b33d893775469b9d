"""The deploy-decision objects CI/CD sees (CONTRACTS.md "Deploy decision").

`DeploymentRequest` is the body of `POST /api/deployments`; `DeploymentView`
is what every reader gets back (the HTTP answer, the callback body, the chat
cards): the contract's keys plus the request's own fields and the decision's
who/when/why, so a card or a pipeline never needs a second lookup. Both are
pydantic models because they cross the process boundary; the approval rules
themselves (assistant/approvals.py) work on these plus plain rows.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from assistant.domain import Finding, RequiredApproval, Risk, Violation

__all__ = [
    "DECIDED",
    "DeploymentRequest",
    "DeploymentView",
    "Status",
    "Vote",
    "VoteDecision",
    "Via",
]

Status = Literal["pending", "approved", "rejected", "blocked", "expired"]
VoteDecision = Literal["approve", "reject"]
Via = Literal["slack", "teams", "web"]

DECIDED: frozenset[str] = frozenset({"approved", "rejected", "blocked", "expired"})


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or blank")
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError("must be one line (no line breaks or NUL)")
    return value.strip()


def _http_url(value: str) -> str:
    value = value.strip()
    if not value.startswith(("http://", "https://")) or len(value) < 10 or any(c.isspace() for c in value):
        raise ValueError("must be an absolute http(s) URL such as https://ci.example.org/hooks/gitops")
    return value


Line = Annotated[str, AfterValidator(_not_blank)]


class DeploymentRequest(BaseModel):
    """What a pipeline sends to ask for a deploy decision."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: Annotated[Line, Field(max_length=200, examples=["infusion-pump-controller"])]
    version: Annotated[Line, Field(max_length=200, examples=["2.4.1"])]
    environment: Annotated[Line, Field(max_length=100, examples=["production"])]
    repository: Annotated[Line, Field(max_length=300, examples=["acme/pump"])]
    commit: Annotated[Line, Field(max_length=100, examples=["9f1c2e7"])]
    requested_by: Annotated[Line, Field(max_length=320, description="e-mail (or people id) of whoever asks", examples=["dev@example.org"])]
    authors: Annotated[
        list[Annotated[Line, Field(max_length=320)]],
        Field(max_length=1000, description="commit authors' e-mails; none of them may approve", examples=[["dev@example.org"]]),
    ] = Field(default_factory=list)
    diff: str = Field(description="the unified diff being deployed (may be empty)")
    callback_url: Annotated[str, Field(max_length=2000), AfterValidator(_http_url)] | None = Field(
        None, description="POSTed the decided object, signed like the webhooks, until it answers 2xx"
    )


class Vote(BaseModel):
    """One person's vote, as CONTRACTS.md shows it."""

    model_config = ConfigDict(frozen=True)

    person: str
    decision: VoteDecision
    via: Via
    reason: str | None = None
    at: str = Field(description="ISO 8601, UTC")


class DeploymentView(BaseModel):
    """A deploy request and its state: the contract's response object plus context for cards and pipelines."""

    model_config = ConfigDict(frozen=True)

    id: str
    status: Status
    risk: Risk
    findings: list[Finding] = Field(default_factory=list)
    required_approvals: list[RequiredApproval] = Field(default_factory=list)
    votes: list[Vote] = Field(default_factory=list)
    decided_at: str | None = None
    # beyond the contract's example: the request itself ...
    service: str
    version: str
    environment: str
    repository: str
    commit: str
    requested_by: str
    authors: list[str] = Field(default_factory=list)
    created_at: str
    expires_at: str
    # ... and the decision's who and why
    decided_by: str | None = Field(None, description="people id of the deciding voter, or 'policy' / 'expiry'")
    reason: str | None = Field(None, description="the rejecting vote's reason, or why the policy blocked it, or why it expired")
    violations: list[Violation] = Field(default_factory=list)

    @property
    def decided(self) -> bool:
        return self.status in DECIDED

