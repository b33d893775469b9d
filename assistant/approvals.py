"""The approval state machine: who may vote, when a request is decided, and that it is decided once.

Rules (CONTRACTS.md "Deploy decision"): one reject rejects (with its reason);
approval needs every required role's count met by *distinct* people (a person
holding two roles fills one slot, found by bipartite matching); authors and
the requester cannot approve; one vote per person; a decided request stays
decided. Everything a command changes -- the request, a vote, a refusal, the
decision -- is written with its audit record and the jobs it implies (card
posts and updates, the CI callback, the blocked notice) in ONE transaction,
so a crash leaves either all of it or none of it.

Exactly-once decisions across processes: a vote first locks the request's
row (`SELECT ... FOR UPDATE` on Postgres; SQLite's BEGIN IMMEDIATE serializes
writers already), so two concurrent votes see each other and the quorum is
never missed; the status then moves by compare-and-set (`UPDATE ... WHERE
status = 'pending'`), and a lost race is a refusal, never a second decision.

Who approves is decided here and only here: no LLM output reaches it, and the
chat adapters only translate clicks into `cast_vote`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from assistant import audit
from assistant import clock as default_clock
from assistant.approval_errors import (  # re-exported: callers import them from here
    AlreadyDecided,
    AlreadyVoted,
    ApprovalError,
    IdempotencyConflict,
    InvalidDiff,
    InvalidVote,
    MissingRole,
    ReasonRequired,
    SelfApproval,
    UnknownDeployment,
    UnknownPerson,
    VoteRefused,
)
from assistant.deployments import DECIDED, DeploymentRequest, DeploymentView, Vote
from assistant.domain import Finding, RequiredApproval, Risk, Violation
from assistant.storage import Database
from assistant.storage.tables import deployments, idempotency_keys, votes

if TYPE_CHECKING:
    from assistant.config import AppConfig, Person, Settings
    from graphs.result import ReviewResult

__all__ = [
    "AlreadyDecided",
    "AlreadyVoted",
    "ApprovalError",
    "ApprovalService",
    "IdempotencyConflict",
    "InvalidDiff",
    "InvalidVote",
    "MissingRole",
    "ReasonRequired",
    "SelfApproval",
    "UnknownDeployment",
    "UnknownPerson",
    "VoteRefused",
    "VoteResult",
    "configured_chats",
    "load_view",
    "load_views",
    "callback_url",
    "missing_approvals",
]

CHAT_PLATFORMS = ("slack", "teams")
VIAS = ("slack", "teams", "web")
IDEMPOTENCY_SCOPE = "deployments"
MAX_REASON = 2000
# Statements built once: constructing them costs more than executing them.
_INSERT_DEPLOYMENT = insert(deployments)
_INSERT_VOTE = insert(votes)
_INSERT_KEY = insert(idempotency_keys)

# A "review" decision from a policy that named no approvals still needs a human.
DEFAULT_APPROVALS = (RequiredApproval(role="approver", count=1),)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class VoteResult:
    """A recorded vote: the request after it, and whether this vote decided it."""

    view: DeploymentView
    vote: Vote
    decided: bool


Review = Callable[[DeploymentRequest], "ReviewResult"]


def configured_chats(settings: Settings, config: AppConfig) -> tuple[str, ...]:
    """The chats approval cards go to: Slack needs a bot token and a channel; Teams a conversation and a way to
    post there (TEAMS_APP_ID, or a local connector such as the Bot Framework Emulator). A chat that cannot take
    cards gets no card jobs, rather than jobs that wait forever."""
    from assistant.config import teams_cards_deliverable

    chats: list[str] = []
    if settings.slack_bot_token is not None and settings.slack_bot_token.get_secret_value() and config.channels.approvals.slack:
        chats.append("slack")
    if teams_cards_deliverable(settings, config)[0]:
        chats.append("teams")
    return tuple(chats)


# --------------------------------------------------------------------------- quorum


def missing_approvals(
    required: Sequence[RequiredApproval], approvers: Iterable[str], roles_of: Callable[[str], Iterable[str]]
) -> list[RequiredApproval]:
    """The role slots no approver fills, with each approver filling at most one slot (maximum bipartite matching).

    Empty means the quorum is met. Sizes are tiny (a handful of slots and
    people), so the simple augmenting-path algorithm is plenty.
    """
    slots = [r.role for r in required for _ in range(r.count)]
    people = list(dict.fromkeys(approvers))
    can: dict[str, list[int]] = {}
    for person in people:
        roles = set(roles_of(person))
        can[person] = [i for i, role in enumerate(slots) if role in roles]
    holder: dict[int, str] = {}

    def augment(person: str, seen: set[int]) -> bool:
        for slot in can[person]:
            if slot in seen:
                continue
            seen.add(slot)
            if slot not in holder or augment(holder[slot], seen):
                holder[slot] = person
                return True
        return False

    for person in people:
        augment(person, set())
    missing: dict[str, int] = {}
    for i, role in enumerate(slots):
        if i not in holder:
            missing[role] = missing.get(role, 0) + 1
    return [RequiredApproval(role=role, count=n) for role, n in missing.items()]


# --------------------------------------------------------------------------- reading


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="microseconds")


def _view(row: Any, vote_rows: Iterable[Any]) -> DeploymentView:
    return DeploymentView(
        id=row.id,
        status=row.status,
        risk=Risk.model_validate_json(row.risk),
        findings=[Finding.model_validate(f) for f in json.loads(row.findings)],
        required_approvals=[RequiredApproval.model_validate(r) for r in json.loads(row.required_approvals)],
        votes=[Vote(person=v.person_id, decision=v.decision, via=v.via, reason=v.reason, at=v.at) for v in vote_rows],
        decided_at=row.decided_at,
        service=row.service,
        version=row.version,
        environment=row.environment,
        repository=row.repository,
        commit=row.commit,
        requested_by=row.requested_by,
        authors=json.loads(row.authors),
        created_at=row.created_at,
        expires_at=row.expires_at,
        decided_by=row.decided_by,
        reason=row.reason,
        violations=[Violation.model_validate(v) for v in json.loads(row.violations)],
    )


# The request and its votes in ONE statement (a join, the request's columns repeated on each vote's row):
# a vote, a card and a GET each read them, and a statement costs more than the few repeated bytes.
_VOTE_COLUMNS = (
    votes.c.id.label("v_id"),
    votes.c.person_id.label("v_person_id"),
    votes.c.decision.label("v_decision"),
    votes.c.via.label("v_via"),
    votes.c.reason.label("v_reason"),
    votes.c.at.label("v_at"),
)
_SELECT_WITH_VOTES = (
    select(deployments, *_VOTE_COLUMNS)
    .select_from(deployments.outerjoin(votes, votes.c.deployment_id == deployments.c.id))
    .where(deployments.c.id == bindparam("id"))
    .order_by(votes.c.id)
)
_SELECT_MANY_WITH_VOTES = (
    select(deployments, *_VOTE_COLUMNS)
    .select_from(deployments.outerjoin(votes, votes.c.deployment_id == deployments.c.id))
    .where(deployments.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(deployments.c.id, votes.c.id)
)
# Postgres locks the request's row first, in a statement of its own: the join that follows then starts after the
# lock was granted, so its snapshot (READ COMMITTED: one per statement) sees the vote of the transaction that held
# the lock. Locking inside the join would re-read only the locked row and miss that vote (quorum never reached).
_LOCK_DEPLOYMENT = select(deployments.c.id).where(deployments.c.id == bindparam("id")).with_for_update()


class _VoteRow:
    """A vote as `_view` and `_check` read it (person_id, decision, via, reason, at)."""

    __slots__ = ("person_id", "decision", "via", "reason", "at")

    def __init__(self, person_id: str, decision: str, via: str, reason: str | None, at: str) -> None:
        self.person_id = person_id
        self.decision = decision
        self.via = via
        self.reason = reason
        self.at = at


def _load(session: Session, deployment_id: str, *, lock: bool = False) -> tuple[Any, list[Any]] | None:
    """The request's row and its votes (oldest first); ``lock``: lock the row for this transaction (Postgres; on
    SQLite the write transaction's BEGIN IMMEDIATE already excludes every other writer)."""
    params = {"id": deployment_id}
    if lock and session.get_bind().dialect.name == "postgresql" and session.execute(_LOCK_DEPLOYMENT, params).first() is None:
        return None
    rows = session.execute(_SELECT_WITH_VOTES, params).all()
    if not rows:
        return None
    vote_rows = [_VoteRow(r.v_person_id, r.v_decision, r.v_via, r.v_reason, r.v_at) for r in rows if r.v_id is not None]
    return rows[0], vote_rows


def load_view(db: Database | Session, deployment_id: str) -> DeploymentView:
    """The current state of one request (for outbox handlers and adapters); raises UnknownDeployment."""
    if isinstance(db, Database):
        with db.read() as session:
            return load_view(session, deployment_id)
    found = _load(db, deployment_id)
    if found is None:
        raise UnknownDeployment(deployment_id)
    return _view(*found)


def load_views(session: Session, deployment_ids: Sequence[str]) -> dict[str, DeploymentView]:
    """The current state of several requests in one statement (card jobs claimed together); unknown ids are absent."""
    if not deployment_ids:
        return {}
    found: dict[str, tuple[Any, list[Any]]] = {}
    for r in session.execute(_SELECT_MANY_WITH_VOTES, {"ids": list(dict.fromkeys(deployment_ids))}):
        entry = found.get(r.id)
        if entry is None:
            entry = found[r.id] = (r, [])
        if r.v_id is not None:
            entry[1].append(_VoteRow(r.v_person_id, r.v_decision, r.v_via, r.v_reason, r.v_at))
    return {dep_id: _view(row, vote_rows) for dep_id, (row, vote_rows) in found.items()}


def callback_url(db: Database | Session, deployment_id: str) -> str | None:
    """Where the decided request is POSTed (None: the pipeline polls instead); raises UnknownDeployment."""
    if isinstance(db, Database):
        with db.read() as session:
            return callback_url(session, deployment_id)
    row = db.execute(select(deployments.c.callback_url).where(deployments.c.id == deployment_id)).first()
    if row is None:
        raise UnknownDeployment(deployment_id)
    return row.callback_url


def new_deployment_id() -> str:
    return f"dep_{secrets.token_hex(10)}"


def request_hash(req: DeploymentRequest) -> str:
    """A digest of the request's content, so a reused Idempotency-Key with a different body is caught."""
    body = json.dumps(req.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- the service


class ApprovalService:
    """The core commands of deploy approvals; adapters (HTTP, Slack, Teams, the graph) call only these.

    `review` turns a request into a ReviewResult (default: the review graph on
    its diff with `policies`); `chats` are the platforms cards go to (see
    `configured_chats`); `clock` is the one clock (freezegun-friendly).
    """

    def __init__(
        self,
        db: Database,
        config: AppConfig,
        *,
        review: Review | None = None,
        policies: Any = None,
        chats: Sequence[str] = (),
        clock: Callable[[], datetime] = default_clock.now,
    ) -> None:
        unknown = [c for c in chats if c not in CHAT_PLATFORMS]
        if unknown:
            raise ValueError(f"unknown chat platform(s) {unknown}; use {', '.join(CHAT_PLATFORMS)}")
        self.db = db
        self.config = config
        self.chats = tuple(chats)
        self.clock = clock
        self._policies = policies
        self._review = review or self._review_with_graph
        self._people: dict[str, Person] = {p.id: p for p in config.people}

    # ---- lookups

    def person(self, person_id: str) -> Person | None:
        return self._people.get(person_id)

    def resolve_person(self, platform: str, user_id: str, aad_object_id: str | None = None) -> str:
        """The people id behind a chat user, or `<platform>:<user id>` (never a people id) for a stranger.

        Adapters pass the result to `cast_vote`, which refuses strangers with
        UnknownPerson and audits the refusal under the chat id.
        """
        for person in self.config.people:
            if platform == "slack" and person.slack_id and person.slack_id == user_id:
                return person.id
            if platform == "teams":
                if person.teams_id and person.teams_id == user_id:
                    return person.id
                if aad_object_id and person.aad_object_id and person.aad_object_id.lower() == aad_object_id.lower():
                    return person.id
        return f"{platform}:{user_id}"

    def get(self, deployment_id: str) -> DeploymentView:
        """The request's current state; raises UnknownDeployment."""
        return load_view(self.db, deployment_id)

    def outstanding(self, view: DeploymentView) -> list[RequiredApproval]:
        """The role approvals still missing for a pending request (what a card says it waits for)."""
        approvers = [v.person for v in view.votes if v.decision == "approve"]
        return missing_approvals(view.required_approvals, approvers, self._roles_of)

    def _roles_of(self, person_id: str) -> list[str]:
        person = self._people.get(person_id)
        return list(person.roles) if person else []

    # ---- request

    def _review_with_graph(self, req: DeploymentRequest) -> ReviewResult:
        from assistant.diffs import DiffError
        from graphs.review import run_review

        # The review graph's own topology run by its step runner: the same nodes and results as the compiled
        # graph (tested in tests/graphs/test_review_graph.py) without LangGraph's Pregel loop, which cost
        # ~3.5 ms CPU per small review, more than the nodes themselves (bench/approvals.py: POST CPU).
        # Up to the policy only: a deploy request stores findings, risk and the policy's decision; the commit
        # message, evidence bundle and summary were computed and thrown away (~0.8 ms of a ~3 ms review).
        try:
            return run_review(
                req.diff.encode("utf-8"),
                environment=req.environment,
                service=req.service,
                policies=self._policies,
                runner="steps",
                upto="policy",
            )
        except DiffError as exc:
            raise InvalidDiff(f"diff: {exc}; send the output of `git diff` (a unified diff) as the diff field") from None

    def request_deployment(
        self, req: DeploymentRequest, idempotency_key: str | None = None, *, deployment_id: str | None = None
    ) -> tuple[DeploymentView, bool]:
        """Review the change, store the request with its decision, and schedule what follows; (view, created).

        A repeated `idempotency_key` with the same body returns the first
        request and `created=False` (no second card); with a different body,
        IdempotencyConflict. The review runs before the write transaction so
        the database lock is held for milliseconds, not for a review.
        """
        digest = request_hash(req) if idempotency_key is not None else ""
        if idempotency_key is not None:
            existing = self._replay(idempotency_key, digest)
            if existing is not None:
                return existing, False
        result = self._review(req)
        dep_id = deployment_id or new_deployment_id()
        now = self.clock()
        try:
            with self.db.session() as session:
                if idempotency_key is not None:
                    # Re-checked under the write lock: a concurrent twin may have won while we reviewed.
                    twin = session.execute(
                        select(idempotency_keys).where(
                            (idempotency_keys.c.scope == IDEMPOTENCY_SCOPE) & (idempotency_keys.c.key == idempotency_key)
                        )
                    ).first()
                    if twin is not None:
                        raise _Replay(twin.subject_id, twin.request_hash)
                    # The key first: on Postgres a concurrent twin waits here, before taking the audit lock.
                    session.execute(
                        _INSERT_KEY,
                        {"scope": IDEMPOTENCY_SCOPE, "key": idempotency_key, "request_hash": digest, "subject_id": dep_id, "created_at": _iso(now)},
                    )
                view = self._insert(session, dep_id, req, result, now)
        except _Replay as replay:
            if replay.request_hash != digest:
                raise IdempotencyConflict(idempotency_key or "", replay.subject_id) from None
            return self.get(replay.subject_id), False
        except IntegrityError:
            # Postgres: the twin committed its key while we inserted ours.
            if idempotency_key is None:
                raise
            existing = self._replay(idempotency_key, digest)
            if existing is None:
                raise
            return existing, False
        return view, True

    def replay(self, req: DeploymentRequest, idempotency_key: str) -> DeploymentView | None:
        """The request an Idempotency-Key already made (None: the key is new); IdempotencyConflict for another body."""
        return self._replay(idempotency_key, request_hash(req))

    def _replay(self, key: str, digest: str) -> DeploymentView | None:
        with self.db.read() as session:
            row = session.execute(
                select(idempotency_keys).where((idempotency_keys.c.scope == IDEMPOTENCY_SCOPE) & (idempotency_keys.c.key == key))
            ).first()
            if row is None:
                return None
            if row.request_hash != digest:
                raise IdempotencyConflict(key, row.subject_id)
            return load_view(session, row.subject_id)

    def _insert(self, session: Session, dep_id: str, req: DeploymentRequest, result: ReviewResult, now: datetime) -> DeploymentView:
        policy = result.policy
        required = list(policy.required_approvals)
        if policy.decision == "deny":
            status, decided_by = "blocked", "policy"
            reason = "; ".join(v.reason for v in policy.violations) or "the policy denied this change"
        elif policy.decision == "allow" and not required:
            status, decided_by, reason = "approved", "policy", "the policy allows this change without approvals"
        else:
            status, decided_by, reason = "pending", None, None
            required = required or list(DEFAULT_APPROVALS)
        expires = now + timedelta(minutes=self.config.approvals.expire_after_minutes)
        decided_at = _iso(now) if status != "pending" else None
        values = {
            "id": dep_id,
            "status": status,
            "service": req.service,
            "version": req.version,
            "environment": req.environment,
            "repository": req.repository,
            "commit": req.commit,
            "requested_by": req.requested_by,
            "authors": json.dumps(list(req.authors)),
            "callback_url": req.callback_url,
            "policy_decision": policy.decision,
            "risk": result.risk.model_dump_json(),
            "findings": json.dumps([f.model_dump(mode="json") for f in result.findings]),
            "required_approvals": json.dumps([r.model_dump(mode="json") for r in required]),
            "violations": json.dumps([v.model_dump(mode="json") for v in policy.violations]),
            "created_at": _iso(now),
            "expires_at": _iso(expires),
            "decided_at": decided_at,
            "decided_by": decided_by,
            "reason": reason,
        }
        session.execute(_INSERT_DEPLOYMENT, values)
        audit.append(
            session,
            req.requested_by,
            "deployment.requested",
            dep_id,
            {
                "service": req.service,
                "version": req.version,
                "environment": req.environment,
                "repository": req.repository,
                "commit": req.commit,
                "authors": list(req.authors),
                "callback_url": _without_query(req.callback_url),
                "policy": policy.decision,
                "risk": {"score": result.risk.score, "level": result.risk.level},
                "findings": len(result.findings),
                "rules": sorted({f.rule for f in result.findings}),
                "required_approvals": [r.model_dump() for r in required],
                "violations": [v.model_dump() for v in policy.violations],
                "status": status,
            },
            at=now,
        )
        if status == "pending":
            for chat in self.chats:
                self._enqueue(session, f"{chat}.post_card", dep_id, dedupe=True)
        else:
            audit.append(session, "policy", f"deployment.{status}", dep_id, {"reason": reason, "decided_by": "policy"}, at=now)
            if status == "blocked":
                for chat in self.chats:
                    self._enqueue(session, f"{chat}.blocked_notice", dep_id, dedupe=True)
            if req.callback_url:
                self._enqueue(session, "deployment.callback", dep_id, dedupe=True)
        return _view(_Row(values), [])

    # ---- votes

    def cast_vote(
        self, deployment_id: str, person_id: str, decision: str, via: str, reason: str | None = None
    ) -> VoteResult:
        """Record one person's vote and decide the request when it settles it.

        Raises (after auditing the refusal; nothing else is recorded):
        UnknownDeployment, AlreadyDecided (with who and when), UnknownPerson,
        InvalidVote, MissingRole, SelfApproval (approve only: authors may
        still reject their own change), ReasonRequired, AlreadyVoted.
        """
        reason = _clean_reason(reason)
        refusal: ApprovalError | None = None
        result: VoteResult | None = None
        with self.db.session() as session:
            now = self.clock()
            found = _load(session, deployment_id, lock=True)
            if found is None:
                refusal = UnknownDeployment(deployment_id)
                audit.append(
                    session, person_id, "deployment.vote_refused", deployment_id,
                    {"code": refusal.code, "decision": decision, "via": via}, at=now,
                )
            else:
                row, vote_rows = found
                if row.status == "pending" and row.expires_at <= _iso(now):
                    self._decide(session, row, "expired", "expiry", self._expiry_reason(), now)
                    row, vote_rows = _load(session, deployment_id)  # type: ignore[misc]
                refusal = self._check(row, vote_rows, person_id, decision, via, reason)
                if refusal is not None:
                    audit.append(
                        session, person_id, "deployment.vote_refused", deployment_id,
                        {"code": refusal.code, "decision": decision, "via": via, "message": refusal.message}, at=now,
                    )
                else:
                    result = self._record_vote(session, row, vote_rows, person_id, decision, via, reason, now)
        if refusal is not None:
            raise refusal
        assert result is not None
        return result

    def _check(
        self, row: Any, vote_rows: list[Any], person_id: str, decision: str, via: str, reason: str | None
    ) -> ApprovalError | None:
        if row.status in DECIDED:
            return AlreadyDecided(_view(row, vote_rows))
        person = self._people.get(person_id)
        if person is None:
            return UnknownPerson(person_id)
        if decision not in ("approve", "reject"):
            return InvalidVote(f"decision {decision!r} is not approve or reject")
        if via not in VIAS:
            return InvalidVote(f"via {via!r} is not one of {', '.join(VIAS)}")
        needed = [r["role"] for r in json.loads(row.required_approvals)]
        if not set(person.roles) & set(needed):
            return MissingRole(person_id, needed)
        if decision == "approve" and self._is_author(person, row):
            return SelfApproval(person_id)
        if decision == "reject" and not reason:
            return ReasonRequired()
        for v in vote_rows:
            if v.person_id == person_id:
                return AlreadyVoted(person_id, Vote(person=v.person_id, decision=v.decision, via=v.via, reason=v.reason, at=v.at))
        return None

    @staticmethod
    def _is_author(person: Person, row: Any) -> bool:
        names = {a.strip().lower() for a in json.loads(row.authors)} | {row.requested_by.strip().lower()}
        return person.id.lower() in names or (person.email is not None and person.email.lower() in names)

    def _record_vote(
        self, session: Session, row: Any, vote_rows: list[Any], person_id: str, decision: str, via: str, reason: str | None, now: datetime
    ) -> VoteResult:
        at = _iso(now)
        session.execute(
            _INSERT_VOTE, {"deployment_id": row.id, "person_id": person_id, "decision": decision, "via": via, "reason": reason, "at": at}
        )
        audit.append(session, person_id, "deployment.vote", row.id, {"decision": decision, "via": via, "reason": reason}, at=now)
        vote = Vote(person=person_id, decision=decision, via=via, reason=reason, at=at)  # type: ignore[arg-type]
        decided = False
        if decision == "reject":
            decided = self._decide(session, row, "rejected", person_id, reason, now)
        else:
            approvers = [v.person_id for v in vote_rows if v.decision == "approve"] + [person_id]
            required = [RequiredApproval.model_validate(r) for r in json.loads(row.required_approvals)]
            if not missing_approvals(required, approvers, self._roles_of):
                decided = self._decide(session, row, "approved", person_id, None, now)
        if not decided:
            for chat in self.chats:
                self._enqueue(session, f"{chat}.update_card", row.id, dedupe=True)
        # The request as this transaction leaves it, without reading it again: the row was read (and, on Postgres,
        # locked) at the start, this vote is the newest, and a decision is the compare-and-set that just succeeded.
        after = _Row(dict(row._mapping))
        if decided:
            after.status = "rejected" if decision == "reject" else "approved"
            after.decided_at, after.decided_by, after.reason = at, person_id, reason if decision == "reject" else None
        return VoteResult(view=_view(after, [*vote_rows, _VoteRow(person_id, decision, via, reason, at)]), vote=vote, decided=decided)

    def _decide(self, session: Session, row: Any, status: str, decided_by: str, reason: str | None, now: datetime) -> bool:
        """Compare-and-set pending -> status; on success audit it and schedule the cards and the callback."""
        changed = session.execute(
            update(deployments)
            .where((deployments.c.id == row.id) & (deployments.c.status == "pending"))
            .values(status=status, decided_at=_iso(now), decided_by=decided_by, reason=reason)
        ).rowcount
        if changed != 1:
            return False
        audit.append(session, decided_by, f"deployment.{status}", row.id, {"decided_by": decided_by, "reason": reason}, at=now)
        for chat in self.chats:
            self._enqueue(session, f"{chat}.update_card", row.id, dedupe=True)
        if row.callback_url:
            self._enqueue(session, "deployment.callback", row.id, dedupe=True)
        return True

    # ---- expiry

    def expire_due(self) -> list[DeploymentView]:
        """Expire every pending request past its `expires_at`: status expired, cards updated, callback sent."""
        now = self.clock()
        with self.db.read() as session:
            due = list(
                session.execute(
                    select(deployments.c.id).where((deployments.c.status == "pending") & (deployments.c.expires_at <= _iso(now)))
                ).scalars()
            )
        expired: list[DeploymentView] = []
        for dep_id in due:
            with self.db.session() as session:
                found = _load(session, dep_id, lock=True)
                if found is None or found[0].status != "pending":
                    continue  # another process decided or expired it first
                row = found[0]
                if self._decide(session, row, "expired", "expiry", self._expiry_reason(), now):
                    again = _load(session, dep_id)
                    assert again is not None
                    expired.append(_view(*again))
        return expired

    def _expiry_reason(self) -> str:
        return f"no decision within {self.config.approvals.expire_after_minutes:g} minutes"

    def recently_decided(self, limit: int = 100) -> list[str]:
        """Ids of the most recently decided requests, newest first (what a restarted server checks its threads against)."""
        with self.db.read() as session:
            return list(
                session.execute(
                    select(deployments.c.id)
                    .where(deployments.c.decided_at.is_not(None))
                    .order_by(deployments.c.decided_at.desc())
                    .limit(limit)
                ).scalars()
            )

    def next_expiry(self) -> datetime | None:
        """When the soonest pending request expires (for a scheduler), or None when nothing is pending."""
        with self.db.read() as session:
            first = session.execute(
                select(deployments.c.expires_at).where(deployments.c.status == "pending").order_by(deployments.c.expires_at).limit(1)
            ).scalar()
        return datetime.fromisoformat(first) if first else None

    # ---- side effects

    @staticmethod
    def _enqueue(session: Session, kind: str, deployment_id: str, *, dedupe: bool) -> None:
        from assistant import outbox

        outbox.enqueue(session, kind, {"deployment_id": deployment_id}, dedupe_key=f"{kind}:{deployment_id}" if dedupe else None)


class _Row:
    """Column values read like a fetched row (so a just-inserted request needs no SELECT)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


class _Replay(Exception):
    def __init__(self, subject_id: str, request_hash: str) -> None:
        self.subject_id = subject_id
        self.request_hash = request_hash


def _without_query(url: str | None) -> str | None:
    """The callback URL for the audit log: a query string or user-info may carry a CI token, so they stay out."""
    if url is None:
        return None
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _clean_reason(reason: str | None) -> str | None:
    """Strip, bound and redact: a reason is shown in both chats and the callback, so PHI must not be in it."""
    if reason is None:
        return None
    reason = reason.strip()
    if not reason:
        return None
    from assistant.redact import redact

    return redact(reason[:MAX_REASON])
