"""The Block Kit card says what the database says: buttons only while pending, outcome/who/when once decided, no PHI."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.slack import cards
from assistant.config import DEMO_CONFIG, parse_config
from assistant.deployments import DeploymentView

CONFIG = parse_config(DEMO_CONFIG, "demo")


def view(**changes: Any) -> DeploymentView:
    base: dict[str, Any] = {
        "id": "dep_01", "status": "pending", "risk": {"score": 72, "level": "high"},
        "findings": [
            {"category": "weak-crypto", "severity": "medium", "file": "a.py", "line": 3, "rule": "CRYPTO-001", "message": "md5 used"},
            {"category": "phi-exposure-log", "severity": "critical", "file": "svc/api.py", "line": 42, "rule": "PHI-LOG-001",
             "message": "logs patient record; MRN: 1234567"},
        ],
        "required_approvals": [{"role": "approver", "count": 1}, {"role": "clinical-safety-officer", "count": 1}],
        "votes": [], "service": "infusion-pump-controller", "version": "2.4.1", "environment": "production",
        "repository": "acme/pump", "commit": "9f1c2e7", "requested_by": "dev@example.org", "authors": ["dev@example.org"],
        "created_at": "2026-11-25T09:00:00+00:00", "expires_at": "2026-11-25T13:00:00+00:00",
    }
    base.update(changes)
    return DeploymentView.model_validate(base)


def buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def all_text(blocks: list[dict[str, Any]]) -> str:
    return repr(blocks)


def test_pending_card_shows_the_request_and_exactly_approve_and_reject():
    text, blocks = cards.card(view(), CONFIG)
    assert buttons(blocks) == ["Approve", "Reject"]
    actions = next(b for b in blocks if b["type"] == "actions")
    assert {e["value"] for e in actions["elements"]} == {"dep_01"}
    body = all_text(blocks)
    for expected in ("infusion-pump-controller", "2.4.1", "production", "72/100 (high)", "PHI-LOG-001", "*clinical-safety-officer*: 0 of 1"):
        assert expected in body
    # the critical finding is listed before the medium one
    assert body.index("PHI-LOG-001") < body.index("CRYPTO-001")
    assert "dep_01" in text


def test_phi_in_findings_and_requester_addresses_never_reach_the_card():
    _, blocks = cards.card(view(requested_by="stranger@elsewhere.org"), CONFIG)
    body = all_text(blocks)
    assert "1234567" not in body and "stranger@elsewhere.org" not in body
    assert "[REDACTED:MRN]" in body


def mrkdwn(blocks: list[dict[str, Any]]) -> list[str]:
    """Every text Slack parses for links and mentions (plain_text, e.g. the header, is shown as typed)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


def test_mrkdwn_in_outside_text_cannot_ping_the_channel():
    text, blocks = cards.card(view(service="<!channel> pump"), CONFIG)
    parsed = [text, *mrkdwn(blocks)]
    assert not any("<!channel>" in t for t in parsed)
    assert any("&lt;!channel&gt; pump" in t for t in parsed)


def test_votes_count_toward_roles_by_distinct_people():
    votes = [{"person": "bob", "decision": "approve", "via": "slack", "at": "2026-11-25T09:05:00+00:00"}]
    _, blocks = cards.card(view(votes=votes), CONFIG)
    body = all_text(blocks)
    # bob holds both roles but is one person: he fills one slot, not both
    assert "*approver*: 1 of 1" in body and "*clinical-safety-officer*: 0 of 1" in body
    assert ":white_check_mark: Bob Chen approved via slack at 2026-11-25 09:05:00 UTC" in body
    assert buttons(blocks) == ["Approve", "Reject"]


@pytest.mark.parametrize(
    ("status", "changes", "expected"),
    [
        ("approved", {"decided_by": "bob"}, "*Approved* by Bob Chen at 2026-11-25 09:07:00 UTC"),
        ("rejected", {"decided_by": "alice", "reason": "no rollback plan"}, "*Rejected* by Alice Moreno at 2026-11-25 09:07:00 UTC\\nReason: no rollback plan"),
        ("expired", {"decided_by": "expiry"}, "*Expired* at 2026-11-25 09:07:00 UTC"),
        ("blocked", {"decided_by": "policy", "violations": [{"rule": "deny.phi", "reason": "PHI in logs"}]}, "*Blocked by policy* at 2026-11-25 09:07:00 UTC"),
    ],
)
def test_decided_card_shows_outcome_who_and_when_and_no_buttons(status, changes, expected):
    _, blocks = cards.card(view(status=status, decided_at="2026-11-25T09:07:00+00:00", **changes), CONFIG)
    assert buttons(blocks) == []
    assert expected in all_text(blocks)


def test_late_click_answer_names_who_decided_and_when():
    answer = cards.decided_answer(view(status="approved", decided_by="bob", decided_at="2026-11-25T09:07:00+00:00"), CONFIG)
    assert answer == "This request was already approved by Bob Chen at 2026-11-25 09:07:00 UTC; your click changed nothing."


def test_reject_modal_requires_a_reason_and_remembers_the_request():
    modal = cards.reject_modal(view(), "C0APPROVALS")
    assert modal["callback_id"] == cards.REJECT_MODAL
    assert '"deployment_id":"dep_01"' in modal["private_metadata"]
    field = next(b for b in modal["blocks"] if b["type"] == "input")
    assert field["block_id"] == cards.REASON_BLOCK and not field.get("optional", False)


def test_huge_inputs_stay_within_slack_block_limits():
    many = [{"category": "injection", "severity": "high", "file": "f.py", "line": i + 1, "rule": "INJ-001", "message": "x" * 2000} for i in range(40)]
    _, blocks = cards.card(view(findings=many, service="s" * 190), CONFIG)
    assert len(blocks) <= 50
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        if block.get("text", {}).get("type") == "mrkdwn":
            assert len(block["text"]["text"]) <= 3000
    assert "…and 35 more" in all_text(blocks)
