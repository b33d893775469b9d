"""The Adaptive Card is a pure function of the request's state: buttons only while pending, outcome once decided, outside text made harmless."""

from __future__ import annotations

import json
from typing import Any

import pytest

from adapters.teams import cards
from assistant.config import DEMO_CONFIG, parse_config
from assistant.deployments import DeploymentView, Vote
from assistant.domain import Finding, RequiredApproval, Risk, Violation

CONFIG = parse_config(DEMO_CONFIG, "demo")


def view(**changes: Any) -> DeploymentView:
    values: dict[str, Any] = {
        "id": "dep_0123456789abcdef",
        "status": "pending",
        "risk": Risk(score=72, level="high"),
        "findings": [
            Finding(category="phi-exposure-log", severity="high", file="svc/api.py", line=42, rule="PHI-LOG-001",
                    message="patient identifier logged", regulations=["HIPAA 164.312(b)"]),
        ],
        "required_approvals": [RequiredApproval(role="approver", count=2), RequiredApproval(role="clinical-safety-officer", count=1)],
        "service": "infusion-pump-controller", "version": "2.4.1", "environment": "production",
        "repository": "acme/pump", "commit": "9f1c2e7", "requested_by": "dev@example.org", "authors": ["dev@example.org"],
        "created_at": "2026-11-25T09:00:00.000000+00:00", "expires_at": "2026-11-25T13:00:00.000000+00:00",
    }
    values.update(changes)
    return DeploymentView(**values)


def text_of(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


def test_a_pending_card_has_exactly_approve_and_reject_and_a_reason_box() -> None:
    card = cards.card(view(), CONFIG)
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert [(a["type"], a["title"], a["verb"]) for a in card["actions"]] == [
        ("Action.Execute", "Approve", "deployment.approve"),
        ("Action.Execute", "Reject", "deployment.reject"),
    ]
    assert [a["data"] for a in card["actions"]] == [{"deployment_id": "dep_0123456789abcdef"}] * 2
    assert [a["associatedInputs"] for a in card["actions"]] == ["none", "auto"]  # the reason goes with Reject only
    (box,) = [b for b in card["body"] if b["type"] == "Input.Text"]
    assert box["id"] == "reason"
    text = text_of(card)
    for shown in ("infusion-pump-controller", "2.4.1", "production", "72/100 (high)", "PHI-LOG-001", "svc/api.py:42", "approver", "0 of 2", "0 of 1"):
        assert shown in text, shown


def test_one_person_with_two_roles_fills_one_slot() -> None:
    card = cards.card(view(votes=[Vote(person="bob", decision="approve", via="slack", at="2026-11-25T09:05:00+00:00")]), CONFIG)
    facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}
    filled = [facts["approver"], facts["clinical-safety-officer"]]
    assert sorted(v.split()[1] for v in filled) == ["0", "1"]  # bob counts once, in one role
    assert "Bob Chen ✅ approved via slack at 2026-11-25 09:05:00 UTC" in text_of(card)


@pytest.mark.parametrize(
    ("status", "changes", "says"),
    [
        ("approved", {"decided_by": "erin", "decided_at": "2026-11-25T10:00:00+00:00"}, "Approved** by Erin Walsh at 2026-11-25 10:00:00 UTC"),
        ("rejected", {"decided_by": "bob", "decided_at": "2026-11-25T10:00:00+00:00", "reason": "needs tests"}, "Reason: needs tests"),
        ("expired", {"decided_by": "expiry", "decided_at": "2026-11-25T13:00:00+00:00"}, "no decision within the approval window"),
        ("blocked", {"decided_by": "policy", "decided_at": "2026-11-25T09:00:00+00:00",
                     "violations": [Violation(rule="no-secrets", reason="a secret is committed")]}, "a secret is committed"),
    ],
)
def test_a_decided_card_shows_the_outcome_and_has_no_live_buttons(status: str, changes: dict[str, Any], says: str) -> None:
    card = cards.card(view(status=status, **changes), CONFIG)
    assert "actions" not in card
    assert not any(b["type"] == "Input.Text" for b in card["body"])
    assert says in text_of(card)


def test_a_status_card_is_never_interactive_and_a_notice_comes_first() -> None:
    card = cards.card(view(), CONFIG, interactive=False, notice="⛔ you may not vote")
    assert "actions" not in card
    assert card["body"][0]["type"] == "Container" and card["body"][0]["items"][0]["text"] == "⛔ you may not vote"


def test_outside_text_cannot_make_links_and_phi_is_redacted() -> None:
    card = cards.card(
        view(service="pump [click me](https://evil.example.org)", status="rejected", decided_by="bob",
             decided_at="2026-11-25T10:00:00+00:00", reason="patient SSN 123-45-6789 in the log"),
        CONFIG,
    )
    text = text_of(card)
    facts = {f["title"]: f["value"] for b in card["body"] if b["type"] == "FactSet" for f in b["facts"]}
    assert facts["Service"] == r"pump \[click me\]\(https://evil.example.org\)"  # markdown escaped: shown literally, no link
    assert "123-45-6789" not in text
    assert "dev@example.org" not in text  # an unknown requester's address is PHI-shaped: redacted


def test_late_click_answers_say_who_and_when() -> None:
    decided = view(status="approved", decided_by="bob", decided_at="2026-11-25T10:00:00+00:00")
    assert cards.decided_answer(decided, CONFIG) == (
        "This request was already approved by Bob Chen at 2026-11-25 10:00:00 UTC; your click changed nothing."
    )
    assert "blocked by policy" in cards.decided_answer(view(status="blocked", decided_at="2026-11-25T10:00:00+00:00"), CONFIG)
