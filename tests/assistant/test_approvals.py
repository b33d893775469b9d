"""The approval rules, on real SQLite and Postgres: quorum by distinct people, separation of duties,
one reject rejects, decided stays decided, expiry, audit and outbox jobs in the same transaction,
and exactly one decision when two processes race votes on one Postgres."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import re2  # noqa: F401 - RE2's library must load before regopy's, or a later re2.compile aborts the process
from freezegun import freeze_time
from sqlalchemy import func, select

from assistant import audit
from assistant.approvals import (
    AlreadyDecided,
    AlreadyVoted,
    ApprovalService,
    IdempotencyConflict,
    InvalidDiff,
    InvalidVote,
    MissingRole,
    ReasonRequired,
    SelfApproval,
    UnknownDeployment,
    UnknownPerson,
    configured_chats,
    missing_approvals,
)
from assistant.config import DEMO_CONFIG, AppConfig, Settings, parse_config
from assistant.deployments import DeploymentRequest
from assistant.domain import RequiredApproval
from assistant.review.examples import example_diff
from assistant.storage import Database
from assistant.storage.outbox_tables import outbox_jobs
from assistant.storage.tables import audit_log

ROOT = Path(__file__).resolve().parents[2]

DOSE_DIFF = example_diff(
    "pump/dosing.py::MAX_DAILY_DOSE_MG_PER_KG = 12\ndef max_dose(weight_kg):\n    return weight_kg * MAX_DAILY_DOSE_MG_PER_KG"
)  # safety-critical, no tests, critical risk: approver x2 + clinical-safety-officer x1
PHI_DIFF = example_diff('src/api.py::def f(patient):\n    logger.info("patient ssn %s", patient.ssn)')  # approver x1
SECRET_DIFF = example_diff('src/cfg.py::AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"')  # deny

PEOPLE = DEMO_CONFIG["people"] + [
    {"id": "frank", "name": "Frank Ito", "email": "frank@example.org", "slack_id": "U0FRANK", "roles": ["approver"]},
    {"id": "grace", "name": "Grace Li", "email": "grace@example.org", "teams_id": "29:1grace", "aad_object_id": "AAD-GRACE", "roles": ["clinical-safety-officer"]},
]
CONFIG = {**DEMO_CONFIG, "people": PEOPLE}


@pytest.fixture(scope="module")
def policies() -> Any:
    from assistant.policy import PolicyEngine

    return PolicyEngine.load()


@pytest.fixture
def config() -> AppConfig:
    return parse_config(CONFIG, "test")


@pytest.fixture
def service(db: Database, config: AppConfig, policies: Any) -> ApprovalService:
    return ApprovalService(db, config, policies=policies, chats=("slack", "teams"))


def _req(diff: str = DOSE_DIFF, **overrides: Any) -> DeploymentRequest:
    fields: dict[str, Any] = {
        "service": "infusion-pump-controller",
        "version": "2.4.1",
        "environment": "production",
        "repository": "acme/pump",
        "commit": "9f1c2e7",
        "requested_by": "dev@example.org",
        "authors": ["dev@example.org", "alice@example.org"],
        "diff": diff,
        "callback_url": "https://ci.example.org/hooks/gitops",
    }
    fields.update(overrides)
    return DeploymentRequest(**fields)


def _jobs(db: Database, dep_id: str, kind: str | None = None) -> list[str]:
    with db.read() as s:
        query = select(outbox_jobs.c.kind).where(outbox_jobs.c.payload == json.dumps({"deployment_id": dep_id}, separators=(",", ":")))
        if kind:
            query = query.where(outbox_jobs.c.kind == kind)
        return sorted(s.execute(query).scalars())


def _actions(db: Database, dep_id: str) -> list[tuple[str, str]]:
    return [(r.actor, r.action) for r in audit.records(db) if r.subject == dep_id]


# --------------------------------------------------------------------------- quorum


def _roles(table: dict[str, list[str]]) -> Any:
    return lambda person: table.get(person, [])


def test_a_person_with_two_roles_fills_only_one_slot() -> None:
    required = [RequiredApproval(role="approver", count=1), RequiredApproval(role="clinical-safety-officer", count=1)]
    roles = _roles({"bob": ["approver", "clinical-safety-officer"], "alice": ["approver"]})
    assert missing_approvals(required, ["bob"], roles) in (
        [RequiredApproval(role="approver", count=1)],
        [RequiredApproval(role="clinical-safety-officer", count=1)],
    )
    assert missing_approvals(required, ["bob", "alice"], roles) == []


def test_the_matching_moves_a_two_role_person_to_the_slot_only_they_can_fill() -> None:
    # bob took the approver slot first; grace can only be the officer... and alice only an approver
    required = [RequiredApproval(role="approver", count=1), RequiredApproval(role="clinical-safety-officer", count=1)]
    roles = _roles({"bob": ["approver", "clinical-safety-officer"], "alice": ["approver"]})
    assert missing_approvals(required, ["bob", "alice"], roles) == []
    assert missing_approvals(required, ["alice", "bob"], roles) == []
    assert missing_approvals([RequiredApproval(role="approver", count=2)], ["alice", "alice"], roles) == [RequiredApproval(role="approver", count=1)]


def test_the_quorum_needs_every_role_count_by_distinct_people(service: ApprovalService, db: Database) -> None:
    view, created = service.request_deployment(_req())
    assert created and view.status == "pending"
    assert {(r.role, r.count) for r in view.required_approvals} == {("approver", 2), ("clinical-safety-officer", 1)}
    first = service.cast_vote(view.id, "bob", "approve", "slack")
    assert not first.decided and first.view.status == "pending"
    second = service.cast_vote(view.id, "erin", "approve", "teams")
    assert not second.decided  # bob counts once: still one approver or the officer short
    assert {(m.role, m.count) for m in service.outstanding(second.view)} in ({("approver", 1)}, {("clinical-safety-officer", 1)})
    third = service.cast_vote(view.id, "frank", "approve", "web")
    assert third.decided and third.view.status == "approved"
    assert third.view.decided_by == "frank" and third.view.decided_at == third.vote.at
    assert [(v.person, v.via) for v in third.view.votes] == [("bob", "slack"), ("erin", "teams"), ("frank", "web")]
    assert _jobs(db, view.id, "deployment.callback") == ["deployment.callback"]
    assert _actions(db, view.id)[-1] == ("frank", "deployment.approved")


# --------------------------------------------------------------------------- who may vote


def test_a_votes_result_is_the_request_as_the_database_has_it_after_the_vote(service: ApprovalService) -> None:
    """cast_vote builds its answer from what it read and wrote instead of reading the request again: it must not drift."""
    pending, _ = service.request_deployment(_req())
    for person in ("bob", "erin", "frank"):
        result = service.cast_vote(pending.id, person, "approve", "slack")
        assert result.view == service.get(pending.id)
    assert result.decided and result.view.status == "approved"
    rejected, _ = service.request_deployment(_req(version="2.4.2"))
    service.cast_vote(rejected.id, "erin", "approve", "teams")
    result = service.cast_vote(rejected.id, "bob", "reject", "slack", "  dose cap untested for MRN: 12345678  ")
    assert result.decided and result.view == service.get(rejected.id)
    assert result.view.reason == result.view.votes[-1].reason and "12345678" not in (result.view.reason or "")


def test_several_requests_read_together_are_each_as_read_alone(service: ApprovalService, db: Database) -> None:
    from assistant.approvals import load_views

    voted, _ = service.request_deployment(_req())
    service.cast_vote(voted.id, "bob", "approve", "slack")
    service.cast_vote(voted.id, "erin", "approve", "teams")
    quiet, _ = service.request_deployment(_req(version="2.4.2"))
    with db.read() as session:
        views = load_views(session, [quiet.id, "dep_unknown", voted.id, quiet.id])
    assert views == {quiet.id: service.get(quiet.id), voted.id: service.get(voted.id)}
    assert [v.person for v in views[voted.id].votes] == ["bob", "erin"] and views[quiet.id].votes == []


def test_authors_and_the_requester_cannot_approve_and_nothing_is_recorded(service: ApprovalService, db: Database) -> None:
    view, _ = service.request_deployment(_req(PHI_DIFF, requested_by="erin"))  # requester named by people id
    with pytest.raises(SelfApproval, match="separation of duties"):
        service.cast_vote(view.id, "alice", "approve", "slack")  # an author, by e-mail
    with pytest.raises(SelfApproval):
        service.cast_vote(view.id, "erin", "approve", "teams")  # the requester
    assert service.get(view.id).votes == []
    assert [a for _, a in _actions(db, view.id)] == ["deployment.requested", "deployment.vote_refused", "deployment.vote_refused"]
    # an author may still stop their own change
    result = service.cast_vote(view.id, "alice", "reject", "slack", "found a bug in it myself")
    assert result.decided and result.view.status == "rejected"


def test_strangers_and_people_without_a_needed_role_are_refused(service: ApprovalService, db: Database) -> None:
    view, _ = service.request_deployment(_req(PHI_DIFF))
    stranger = service.resolve_person("slack", "U0NOBODY")
    assert stranger == "slack:U0NOBODY"
    with pytest.raises(UnknownPerson, match="not one of the people"):
        service.cast_vote(view.id, stranger, "approve", "slack")
    with pytest.raises(MissingRole, match="approver"):
        service.cast_vote(view.id, "carol", "approve", "slack")
    with pytest.raises(MissingRole):
        service.cast_vote(view.id, "grace", "approve", "teams")  # an officer, but this needs an approver
    with pytest.raises(InvalidVote):
        service.cast_vote(view.id, "frank", "maybe", "slack")
    with pytest.raises(InvalidVote):
        service.cast_vote(view.id, "frank", "approve", "email")
    assert service.get(view.id).votes == []
    refusals = [r for r in audit.records(db) if r.action == "deployment.vote_refused"]
    assert [r.data["code"] for r in refusals] == ["unknown_person", "missing_role", "missing_role", "invalid_vote", "invalid_vote"]
    assert refusals[0].actor == "slack:U0NOBODY"


def test_chat_users_resolve_to_people_by_slack_id_teams_id_or_aad_object_id(service: ApprovalService) -> None:
    assert service.resolve_person("slack", "U0BOB") == "bob"
    assert service.resolve_person("teams", "29:1alice") == "alice"
    assert service.resolve_person("teams", "29:unknown", aad_object_id="aad-grace") == "grace"
    assert service.resolve_person("teams", "U0BOB") == "teams:U0BOB"


def test_one_vote_per_person(service: ApprovalService) -> None:
    view, _ = service.request_deployment(_req())
    service.cast_vote(view.id, "bob", "approve", "slack")
    with pytest.raises(AlreadyVoted, match="already voted approve") as caught:
        service.cast_vote(view.id, "bob", "reject", "teams", "changed my mind")
    assert caught.value.vote.via == "slack"
    assert [v.decision for v in service.get(view.id).votes] == ["approve"]


# --------------------------------------------------------------------------- rejection and decided state


def test_one_reject_rejects_with_its_reason_which_is_required_and_redacted(service: ApprovalService, db: Database) -> None:
    view, _ = service.request_deployment(_req())
    service.cast_vote(view.id, "bob", "approve", "slack")
    with pytest.raises(ReasonRequired):
        service.cast_vote(view.id, "erin", "reject", "teams", "   ")
    result = service.cast_vote(view.id, "erin", "reject", "teams", "dose cap untested; see patient MRN: 1234567")
    assert result.decided and result.view.status == "rejected" and result.view.decided_by == "erin"
    assert result.view.reason == "dose cap untested; see patient MRN: [REDACTED:MRN]"
    assert "1234567" not in json.dumps([r.data for r in audit.records(db)])
    assert _jobs(db, view.id) == ["deployment.callback", "slack.post_card", "slack.update_card", "teams.post_card", "teams.update_card"]


def test_a_decided_request_stays_decided_and_later_clicks_learn_who_and_when(service: ApprovalService, db: Database) -> None:
    view, _ = service.request_deployment(_req(PHI_DIFF))
    decided = service.cast_vote(view.id, "frank", "approve", "slack").view
    with pytest.raises(AlreadyDecided) as caught:
        service.cast_vote(view.id, "erin", "reject", "teams", "too late")
    assert caught.value.decided_by == "frank" and caught.value.decided_at == decided.decided_at
    assert "approved by frank at" in str(caught.value)
    assert service.get(view.id) == decided
    with pytest.raises(AlreadyDecided):
        service.cast_vote(view.id, "slack:U0NOBODY", "approve", "slack")  # strangers learn it too; nothing recorded
    assert _jobs(db, view.id, "deployment.callback") == ["deployment.callback"]


def test_unknown_requests_are_refused(service: ApprovalService) -> None:
    with pytest.raises(UnknownDeployment, match="dep_nope"):
        service.get("dep_nope")
    with pytest.raises(UnknownDeployment):
        service.cast_vote("dep_nope", "bob", "approve", "slack")


# --------------------------------------------------------------------------- requests


def test_a_policy_deny_is_blocked_at_once_with_a_notice_and_a_callback(service: ApprovalService, db: Database) -> None:
    view, _ = service.request_deployment(_req(SECRET_DIFF))
    assert view.status == "blocked" and view.decided_by == "policy" and view.decided_at == view.created_at
    assert view.violations and "hardcoded secret" in (view.reason or "")
    assert _jobs(db, view.id) == ["deployment.callback", "slack.blocked_notice", "teams.blocked_notice"]
    assert [a for _, a in _actions(db, view.id)] == ["deployment.requested", "deployment.blocked"]
    with pytest.raises(AlreadyDecided):
        service.cast_vote(view.id, "frank", "approve", "slack")


def test_cards_go_only_to_chats_that_can_take_them(config: AppConfig) -> None:
    bare = Settings(_env_file=None)
    assert configured_chats(bare, config) == ()  # no SLACK_BOT_TOKEN; Teams at a remote URL without TEAMS_APP_ID
    assert configured_chats(Settings(_env_file=None, SLACK_BOT_TOKEN="xoxb-1"), config) == ("slack",)
    assert configured_chats(Settings(_env_file=None, TEAMS_APP_ID="app-1"), config) == ("teams",)
    local = config.model_copy(update={"teams": config.teams.model_copy(update={"service_url": "http://127.0.0.1:3978/"})})
    assert configured_chats(bare, local) == ("teams",)  # the Bot Framework Emulator on this machine
    no_channel = config.model_copy(update={"channels": config.channels.model_copy(update={"approvals": config.channels.approvals.model_copy(update={"teams": None})})})
    assert configured_chats(Settings(_env_file=None, TEAMS_APP_ID="app-1"), no_channel) == ()


def test_no_callback_job_without_a_callback_url_and_cards_only_for_configured_chats(db: Database, config: AppConfig, policies: Any) -> None:
    service = ApprovalService(db, config, policies=policies, chats=configured_chats(Settings(_env_file=None, TEAMS_APP_ID="app-1"), config))
    assert service.chats == ("teams",)  # no SLACK_BOT_TOKEN
    view, _ = service.request_deployment(_req(PHI_DIFF, callback_url=None))
    service.cast_vote(view.id, "frank", "approve", "slack")
    assert _jobs(db, view.id) == ["teams.post_card", "teams.update_card"]


def test_an_idempotency_key_returns_the_first_request_and_refuses_another_body(service: ApprovalService, db: Database) -> None:
    first, created = service.request_deployment(_req(), "run-7")
    again, created_again = service.request_deployment(_req(), "run-7")
    assert created and not created_again and again == first
    with pytest.raises(IdempotencyConflict, match=first.id):
        service.request_deployment(_req(version="9.9.9"), "run-7")
    assert len(_jobs(db, first.id, "slack.post_card")) == 1


def test_concurrent_requests_with_one_idempotency_key_make_one_request(service: ApprovalService, db: Database) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: service.request_deployment(_req(), "run-race"), range(6)))
    assert len({view.id for view, _ in results}) == 1
    assert sorted(created for _, created in results) == [False] * 5 + [True]
    assert len(_jobs(db, results[0][0].id, "slack.post_card")) == 1
    assert [a for _, a in _actions(db, results[0][0].id)] == ["deployment.requested"]


def test_a_malformed_diff_stores_nothing(service: ApprovalService, db: Database) -> None:
    with pytest.raises(InvalidDiff, match="diff"):
        service.request_deployment(_req("@@ -1 +1 @@\n+x\n"))
    with db.read() as s:
        assert s.execute(select(func.count()).select_from(audit_log)).scalar_one() == 0


# --------------------------------------------------------------------------- expiry


def test_expiry_decides_pending_requests_once_updates_cards_and_calls_back(db: Database, config: AppConfig, policies: Any) -> None:
    short = parse_config({**CONFIG, "approvals": {"expire_after_minutes": 0.5}})
    service = ApprovalService(db, short, policies=policies, chats=("slack",))
    with freeze_time("2026-03-01T10:00:00Z") as frozen:
        view, _ = service.request_deployment(_req())
        other, _ = service.request_deployment(_req(PHI_DIFF))
        service.cast_vote(other.id, "frank", "approve", "slack")  # decided before expiry: untouched
        assert view.expires_at == "2026-03-01T10:00:30.000000+00:00"
        frozen.tick(timedelta(seconds=29))
        assert service.expire_due() == []
        frozen.tick(timedelta(seconds=2))
        expired = service.expire_due()
        assert [v.id for v in expired] == [view.id]
        assert expired[0].status == "expired" and expired[0].decided_by == "expiry" and "0.5 minutes" in (expired[0].reason or "")
        assert service.expire_due() == []
    assert _jobs(db, view.id) == ["deployment.callback", "slack.post_card", "slack.update_card"]
    assert _actions(db, view.id)[-1] == ("expiry", "deployment.expired")
    assert service.get(other.id).status == "approved"


def test_a_vote_after_the_deadline_expires_the_request_instead_of_counting(db: Database, policies: Any) -> None:
    service = ApprovalService(db, parse_config({**CONFIG, "approvals": {"expire_after_minutes": 1}}), policies=policies)
    with freeze_time("2026-03-01T10:00:00Z") as frozen:
        view, _ = service.request_deployment(_req(PHI_DIFF))
        frozen.tick(timedelta(minutes=2))
        with pytest.raises(AlreadyDecided, match="expired by expiry"):
            service.cast_vote(view.id, "frank", "approve", "slack")
    assert service.get(view.id).votes == [] and service.get(view.id).status == "expired"


# --------------------------------------------------------------------------- audit


def test_every_step_is_an_audit_record_and_the_chain_verifies(service: ApprovalService, db: Database) -> None:
    view, _ = service.request_deployment(_req(PHI_DIFF))
    with pytest.raises(MissingRole):
        service.cast_vote(view.id, "carol", "approve", "slack")
    service.cast_vote(view.id, "frank", "approve", "slack")
    assert _actions(db, view.id) == [
        ("dev@example.org", "deployment.requested"),
        ("carol", "deployment.vote_refused"),
        ("frank", "deployment.vote"),
        ("frank", "deployment.approved"),
    ]
    requested = next(r for r in audit.records(db) if r.action == "deployment.requested")
    assert requested.data["policy"] == "review" and requested.data["required_approvals"] == [{"role": "approver", "count": 1}]
    assert audit.verify(db).ok


def test_the_audit_log_keeps_no_token_from_a_callback_url(service: ApprovalService, db: Database) -> None:
    view, _ = service.request_deployment(_req(callback_url="https://bot:s3cr3t@ci.example.org:8443/hooks/gitops?token=abc123"))
    requested = next(r for r in audit.records(db) if r.action == "deployment.requested")
    assert requested.data["callback_url"] == "https://ci.example.org:8443/hooks/gitops"
    assert "abc123" not in json.dumps(requested.data) and "s3cr3t" not in json.dumps(requested.data)
    from assistant.approvals import callback_url

    assert callback_url(db, view.id) == "https://bot:s3cr3t@ci.example.org:8443/hooks/gitops?token=abc123"  # the sender needs it whole


def test_the_vote_its_audit_record_and_its_jobs_commit_or_roll_back_together(service: ApprovalService, db: Database) -> None:
    """When scheduling the card update fails inside the vote's transaction, the vote and its audit record vanish too."""
    from assistant.outbox import InvalidJob

    view, _ = service.request_deployment(_req())
    records = len(list(audit.records(db)))
    service.chats = ("Not A Kind",)  # the outbox refuses this job kind, mid-transaction
    with pytest.raises(InvalidJob):
        service.cast_vote(view.id, "frank", "approve", "slack")
    assert service.get(view.id).votes == []
    assert len(list(audit.records(db))) == records
    service.chats = ("slack",)
    assert service.cast_vote(view.id, "frank", "approve", "slack").view.votes[0].person == "frank"


# --------------------------------------------------------------------------- two processes, one Postgres

RACER = r"""
import json, sys, time
from assistant.approvals import ApprovalService, AlreadyDecided
from assistant.config import parse_config
from assistant.storage import Database

url, config, person, decision, start, ids = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6].split(",")
service = ApprovalService(Database(url), parse_config(config), chats=("slack", "teams"))
service.get(ids[0])  # connect before the start line
while time.time() < start:
    time.sleep(0.001)
for dep_id in ids:
    try:
        result = service.cast_vote(dep_id, person, decision, "slack", "race" if decision == "reject" else None)
        print(json.dumps({"id": dep_id, "outcome": "decided" if result.decided else "recorded"}), flush=True)
    except AlreadyDecided as exc:
        print(json.dumps({"id": dep_id, "outcome": "already_decided", "by": exc.decided_by}), flush=True)
"""


def _race(url: str, ids: list[str], a: tuple[str, str], b: tuple[str, str]) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, url, json.dumps(CONFIG, default=str), person, decision, str(start), ",".join(ids)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
        )
        for person, decision in (a, b)
    ]
    lines: list[dict[str, Any]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        lines += [json.loads(line) for line in out.splitlines()]
    return lines


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("the cross-process race is the Postgres case (SQLite serializes writers in one file)")
    return database_url


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_processes_completing_a_quorum_together_decide_each_request_exactly_once(postgres_url: str, db: Database, service: ApprovalService) -> None:
    ids = []
    for i in range(15):
        view, _ = service.request_deployment(_req(commit=f"c{i}"))  # approver x2 + officer
        service.cast_vote(view.id, "frank", "approve", "web")
        ids.append(view.id)
    # erin is the second approver, grace the officer: only both votes together decide, whoever commits last
    lines = _race(postgres_url, ids, ("erin", "approve"), ("grace", "approve"))
    for dep_id in ids:
        outcomes = sorted(line["outcome"] for line in lines if line["id"] == dep_id)
        assert outcomes == ["decided", "recorded"], (dep_id, outcomes)
        view = service.get(dep_id)
        assert view.status == "approved" and len(view.votes) == 3
        assert [a for _, a in _actions(db, dep_id)].count("deployment.approved") == 1
        assert _jobs(db, dep_id, "deployment.callback") == ["deployment.callback"]
    assert audit.verify(db).ok


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_an_approve_and_a_reject_racing_in_two_processes_make_one_decision(postgres_url: str, db: Database, service: ApprovalService) -> None:
    ids = []
    for i in range(15):
        view, _ = service.request_deployment(_req(PHI_DIFF, commit=f"c{i}"))  # one approver decides
        ids.append(view.id)
    lines = _race(postgres_url, ids, ("frank", "approve"), ("erin", "reject"))
    for dep_id in ids:
        outcomes = sorted(line["outcome"] for line in lines if line["id"] == dep_id)
        assert outcomes == ["already_decided", "decided"], (dep_id, outcomes)
        view = service.get(dep_id)
        assert view.status in ("approved", "rejected") and len(view.votes) == 1
        assert view.decided_by == view.votes[0].person
        actions = [a for _, a in _actions(db, dep_id)]
        assert actions.count("deployment.approved") + actions.count("deployment.rejected") == 1
        assert _jobs(db, dep_id, "deployment.callback") == ["deployment.callback"]
    assert audit.verify(db).ok
