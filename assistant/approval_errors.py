"""Why an approval command refused: one exception class per reason, each with a stable `code` and a human sentence.

The chat adapters show `str(exc)` to the person who clicked (an ephemeral
Slack message, a Teams card), the HTTP adapter maps `code` to a status, and
the audit log records `code`; so every message says what happened and what
to do, and never includes request content.
"""

from __future__ import annotations

from collections.abc import Sequence

from assistant.deployments import DeploymentView, Vote

__all__ = [
    "AlreadyDecided",
    "AlreadyVoted",
    "ApprovalError",
    "IdempotencyConflict",
    "InvalidDiff",
    "InvalidVote",
    "MissingRole",
    "ReasonRequired",
    "SelfApproval",
    "UnknownDeployment",
    "UnknownPerson",
    "VoteRefused",
]


class ApprovalError(Exception):
    """Base of every refusal and lookup failure here; `code` is a stable machine name, str() a human sentence."""

    code = "approval_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownDeployment(ApprovalError):
    code = "unknown_deployment"

    def __init__(self, deployment_id: str) -> None:
        super().__init__(f"there is no deploy request {deployment_id!r}; check the id (it looks like dep_...)")
        self.deployment_id = deployment_id


class InvalidDiff(ApprovalError):
    """The request's diff cannot be reviewed; nothing was stored."""

    code = "invalid_diff"


class IdempotencyConflict(ApprovalError):
    """The Idempotency-Key was used before for a different request body."""

    code = "idempotency_conflict"

    def __init__(self, key: str, deployment_id: str) -> None:
        super().__init__(
            f"Idempotency-Key {key!r} was already used for a different request ({deployment_id}); "
            "use a new key for a new request, or resend exactly the same body"
        )
        self.key = key
        self.deployment_id = deployment_id


class VoteRefused(ApprovalError):
    """A vote that was not recorded (the refusal itself is in the audit log)."""

    code = "vote_refused"


class UnknownPerson(VoteRefused):
    code = "unknown_person"

    def __init__(self, person_id: str) -> None:
        super().__init__(
            f"{person_id!r} is not one of the people in the gitops-health config, so the vote was not recorded; "
            "ask an administrator to add you under people (with your chat id and roles)"
        )
        self.person_id = person_id


class MissingRole(VoteRefused):
    code = "missing_role"

    def __init__(self, person_id: str, needed: Sequence[str]) -> None:
        super().__init__(
            f"{person_id} does not hold a role this request needs ({', '.join(needed)}), so the vote was not recorded"
        )
        self.person_id = person_id
        self.needed = list(needed)


class SelfApproval(VoteRefused):
    code = "self_approval"

    def __init__(self, person_id: str) -> None:
        super().__init__(
            f"{person_id} is an author or the requester of this change and cannot approve it (separation of duties); "
            "another approver must"
        )
        self.person_id = person_id


class ReasonRequired(VoteRefused):
    code = "reason_required"

    def __init__(self) -> None:
        super().__init__("a reject needs a reason; say what must change before this can ship")


class InvalidVote(VoteRefused):
    code = "invalid_vote"


class AlreadyVoted(VoteRefused):
    code = "already_voted"

    def __init__(self, person_id: str, vote: Vote) -> None:
        super().__init__(f"{person_id} already voted {vote.decision} on this request at {vote.at}; one vote per person")
        self.person_id = person_id
        self.vote = vote


class AlreadyDecided(VoteRefused):
    """The request is no longer pending; carries the view so callers can say who decided and when."""

    code = "already_decided"

    def __init__(self, view: DeploymentView) -> None:
        super().__init__(f"{view.id} was already {view.status} by {view.decided_by or 'nobody'} at {view.decided_at}; nothing changed")
        self.view = view
        self.status = view.status
        self.decided_by = view.decided_by
        self.decided_at = view.decided_at
