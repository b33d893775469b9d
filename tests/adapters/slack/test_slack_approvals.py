"""Approving in Slack, end to end: a real server, real v0-signed requests, a loopback Slack Web API, SQLite and Postgres.

The server is the real app (create_app + the outbox worker in its lifespan).
A request made through the core gets its card posted by the worker; clicks
are Slack's own payloads, signed with the signing secret, POSTed to
/slack/events; what the server says back to Slack (card updates, ephemeral
refusals, the reject modal) is read from the loopback Web API's records.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import select

from assistant.storage.tables import audit_log, votes
from tests.support.deployments import CLINICAL, ONE_APPROVER
from tests.support.slack_api import block_action, slash_command, view_submission

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

APPROVALS = "C0APPROVALS"


def buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def card_of(server: Any, deployment_id: str) -> dict[str, Any]:
    for message in server.slack.channel_messages(APPROVALS):
        if deployment_id in message["text"]:
            return message
    raise AssertionError(f"no card for {deployment_id} in {APPROVALS}")


def wait_card(server: Any, deployment_id: str, predicate: Any, what: str) -> dict[str, Any]:
    def ok(slack: Any) -> bool:
        try:
            return bool(predicate(card_of(server, deployment_id)))
        except AssertionError:
            return False

    server.slack.wait_until(ok, timeout=10, what=what)
    return card_of(server, deployment_id)


def click(server: Any, user: str, action: str, deployment_id: str, **kw: Any) -> Any:
    body, headers = block_action(user=user, action_id=action, value=deployment_id, channel=APPROVALS, **kw)
    return server.post_signed(body, headers)


def votes_of(server: Any, deployment_id: str) -> list[Any]:
    with server.app.state.db.read() as s:
        return s.execute(select(votes).where(votes.c.deployment_id == deployment_id)).all()


def audit_actions(server: Any, deployment_id: str) -> list[tuple[str, str]]:
    with server.app.state.db.read() as s:
        rows = s.execute(select(audit_log.c.actor, audit_log.c.action).where(audit_log.c.subject == deployment_id).order_by(audit_log.c.seq)).all()
    return [(r.actor, r.action) for r in rows]


def test_a_pending_request_gets_a_card_with_approve_and_reject(slack_server, request_deployment):
    view = request_deployment(ONE_APPROVER)
    card = wait_card(slack_server, view.id, lambda c: c, "the card to be posted")
    assert buttons(card["blocks"]) == ["Approve", "Reject"]
    assert "infusion-pump-controller" in json.dumps(card["blocks"])
    assert "PHI-LOG-001" in json.dumps(card["blocks"])
    assert len(slack_server.slack.calls_to("chat.postMessage")) == 1


def test_approve_click_is_acked_at_once_then_decides_and_updates_the_card(slack_server, request_deployment):
    view = request_deployment(ONE_APPROVER)
    wait_card(slack_server, view.id, lambda c: c, "the card to be posted")
    card = card_of(slack_server, view.id)

    response = click(slack_server, "U0BOB", "deployment.approve", view.id, message_ts=card["ts"])
    assert response.status_code == 200

    decided = wait_card(slack_server, view.id, lambda c: c["updates"] >= 1 and not buttons(c["blocks"]), "the decided card")
    text = json.dumps(decided["blocks"])
    assert "*Approved* by Bob Chen at " in text
    assert slack_server.service.get(view.id).status == "approved"
    assert [(v.person_id, v.decision, v.via) for v in votes_of(slack_server, view.id)] == [("bob", "approve", "slack")]
    assert ("bob", "deployment.vote") in audit_actions(slack_server, view.id)
    assert ("bob", "deployment.approved") in audit_actions(slack_server, view.id)


def test_the_click_is_acknowledged_before_the_work_after_it_is_done(slack_server, request_deployment):
    view = request_deployment(ONE_APPROVER)
    wait_card(slack_server, view.id, lambda c: c, "the card to be posted")
    held = slack_server.slack.hold("chat.postEphemeral")  # the refusal the listener sends after its ack cannot finish
    try:
        response = click(slack_server, "U0CAROL", "deployment.approve", view.id)
        # Slack got its 200 while the listener is still stuck in its follow-up call
        assert response.status_code == 200
        assert slack_server.slack.wait_for("chat.postEphemeral")[0].args["user"] == "U0CAROL"
        assert not held.is_set()
    finally:
        held.set()


def test_forged_and_stale_signatures_are_refused_and_nothing_is_recorded(slack_server, request_deployment):
    view = request_deployment(ONE_APPROVER)
    wait_card(slack_server, view.id, lambda c: c, "the card to be posted")
    body, headers = block_action(user="U0BOB", action_id="deployment.approve", value=view.id)

    forged = slack_server.post_signed(body, headers, secret="not-the-signing-secret")
    stale = slack_server.post_signed(body, headers, timestamp=int(time.time()) - 600)
    unsigned = slack_server.http.post("/slack/events", content=body, headers=headers)

    assert (forged.status_code, stale.status_code, unsigned.status_code) == (401, 401, 401)
    time.sleep(0.3)  # a listener that wrongly ran would have voted by now
    assert votes_of(slack_server, view.id) == []
    assert slack_server.service.get(view.id).status == "pending"
    assert slack_server.slack.calls_to("chat.postEphemeral") == []


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("U0STRANGER", "is not one of the people in the gitops-health config"),  # unknown user
        ("U0CAROL", "does not hold a role this request needs"),  # on-call only, not an approver
        ("U0ALICE", "cannot approve it (separation of duties)"),  # alice is an author of this change
        ("U0ERIN", "cannot approve it (separation of duties)"),  # erin asked for the deploy
    ],
)
def test_people_who_may_not_approve_get_an_ephemeral_refusal_and_nothing_is_recorded(slack_server, request_deployment, user, expected):
    view = request_deployment(ONE_APPROVER, authors=["dev@example.org", "alice@example.org"], requested_by="erin@example.org")
    card = wait_card(slack_server, view.id, lambda c: c, "the card to be posted")

    assert click(slack_server, user, "deployment.approve", view.id).status_code == 200

    refusal = slack_server.slack.wait_for("chat.postEphemeral")[0]
    assert refusal.args["user"] == user and refusal.args["channel"] == APPROVALS
    assert expected in refusal.args["text"]
    assert votes_of(slack_server, view.id) == []
    assert slack_server.service.get(view.id).status == "pending"
    assert card_of(slack_server, view.id)["updates"] == card["updates"] == 0
    assert any(action == "deployment.vote_refused" for _, action in audit_actions(slack_server, view.id))


def test_reject_asks_for_a_reason_in_a_modal_then_rejects_with_it(slack_server, request_deployment):
    view = request_deployment(ONE_APPROVER)
    wait_card(slack_server, view.id, lambda c: c, "the card to be posted")

    assert click(slack_server, "U0ERIN", "deployment.reject", view.id).status_code == 200
    opened = slack_server.slack.wait_for("views.open")[0]
    modal = opened.args["view"]
    assert modal["callback_id"] == "deployment.reject_reason"
    assert slack_server.service.get(view.id).status == "pending"  # no vote until the reason is given

    blank, headers = view_submission(user="U0ERIN", callback_id=modal["callback_id"], private_metadata=modal["private_metadata"],
                                     values={"reason": {"reason": {"type": "plain_text_input", "value": "   "}}})
    answer = slack_server.post_signed(blank, headers)
    assert answer.status_code == 200
    assert answer.json()["response_action"] == "errors" and "reason" in answer.json()["errors"]
    assert votes_of(slack_server, view.id) == []

    given, headers = view_submission(user="U0ERIN", callback_id=modal["callback_id"], private_metadata=modal["private_metadata"],
                                     values={"reason": {"reason": {"type": "plain_text_input", "value": "no rollback plan for the pump"}}})
    assert slack_server.post_signed(given, headers).status_code == 200

    decided = wait_card(slack_server, view.id, lambda c: not buttons(c["blocks"]), "the rejected card")
    text = json.dumps(decided["blocks"])
    assert "*Rejected* by Erin Walsh at " in text and "Reason: no rollback plan for the pump" in text
    final = slack_server.service.get(view.id)
    assert (final.status, final.decided_by, final.reason) == ("rejected", "erin", "no rollback plan for the pump")


def test_reject_by_someone_without_the_role_is_refused_without_a_modal(slack_server, request_deployment):
    view = request_deployment(ONE_APPROVER)
    wait_card(slack_server, view.id, lambda c: c, "the card to be posted")

    click(slack_server, "U0DAVE", "deployment.reject", view.id)

    refusal = slack_server.slack.wait_for("chat.postEphemeral")[0]
    assert "does not hold a role this request needs" in refusal.args["text"]
    assert slack_server.slack.calls_to("views.open") == []
    assert votes_of(slack_server, view.id) == []


def test_a_reject_form_slack_will_not_open_is_reported_to_the_clicker(slack_server, request_deployment):
    view = request_deployment(ONE_APPROVER)
    wait_card(slack_server, view.id, lambda c: c, "the card to be posted")
    slack_server.slack.fail("views.open", error="expired_trigger_id")

    click(slack_server, "U0ERIN", "deployment.reject", view.id)

    told = slack_server.slack.wait_for("chat.postEphemeral")[0]
    assert told.args["user"] == "U0ERIN" and "Click Reject again" in told.args["text"]
    assert votes_of(slack_server, view.id) == [] and slack_server.service.get(view.id).status == "pending"


def test_every_vote_updates_the_card_and_quorum_needs_distinct_people(slack_server, request_deployment):
    view = request_deployment(CLINICAL)
    wait_card(slack_server, view.id, lambda c: c, "the card to be posted")
    assert [(r.role, r.count) for r in view.required_approvals] == [("approver", 2), ("clinical-safety-officer", 1)]

    click(slack_server, "U0BOB", "deployment.approve", view.id)
    after_bob = wait_card(slack_server, view.id, lambda c: c["updates"] >= 1 and "Bob Chen" in json.dumps(c["blocks"]), "bob's vote on the card")
    assert buttons(after_bob["blocks"]) == ["Approve", "Reject"]  # one person fills one slot: still pending

    click(slack_server, "U0ALICE", "deployment.approve", view.id)
    wait_card(slack_server, view.id, lambda c: "Alice Moreno" in json.dumps(c["blocks"]), "alice's vote on the card")
    assert slack_server.service.get(view.id).status == "pending"

    click(slack_server, "U0ERIN", "deployment.approve", view.id)
    decided = wait_card(slack_server, view.id, lambda c: not buttons(c["blocks"]), "the approved card")
    assert "*Approved* by Erin Walsh at " in json.dumps(decided["blocks"])
    assert len(slack_server.slack.calls_to("chat.postMessage")) == 1  # one card, updated, never re-posted


def test_a_click_on_a_decided_request_is_answered_with_who_decided_and_when(slack_server, request_deployment):
    view = request_deployment(ONE_APPROVER)
    wait_card(slack_server, view.id, lambda c: c, "the card to be posted")
    click(slack_server, "U0BOB", "deployment.approve", view.id)
    wait_card(slack_server, view.id, lambda c: not buttons(c["blocks"]), "the decided card")
    decided = slack_server.service.get(view.id)

    click(slack_server, "U0ERIN", "deployment.reject", view.id)

    answer = slack_server.slack.wait_for("chat.postEphemeral")[0]
    assert answer.args["user"] == "U0ERIN"
    assert "already approved by Bob Chen at " in answer.args["text"]
    assert decided.decided_at[:10] in answer.args["text"]
    assert slack_server.slack.calls_to("views.open") == []
    assert slack_server.service.get(view.id).status == "approved"
    assert [v.person_id for v in votes_of(slack_server, view.id)] == ["bob"]


def test_slash_command_help_and_status(slack_server, request_deployment):
    view = request_deployment(ONE_APPROVER)

    body, headers = slash_command(user="U0CAROL", text="help")
    helped = slack_server.post_signed(body, headers)
    assert helped.status_code == 200 and "/gitops status <deployment id>" in helped.text  # Slack shows a plain-text ack to the caller only

    body, headers = slash_command(user="U0CAROL", text="status " + view.id, response_url=slack_server.slack.response_url("status"))
    assert slack_server.post_signed(body, headers).status_code == 200
    status = slack_server.slack.wait_for("response_url")[0].args
    assert view.id in status["text"] and "waiting for approval" in status["text"]
    assert buttons(status["blocks"]) == []  # a status answer is a snapshot, not a second place to vote

    body, headers = slash_command(user="U0CAROL", text="status dep_doesnotexist", response_url=slack_server.slack.response_url("missing"))
    slack_server.post_signed(body, headers)
    missing = slack_server.slack.wait_for("response_url", 2)[1].args
    assert "there is no deploy request 'dep_doesnotexist'" in missing["text"]

    body, headers = slash_command(user="U0CAROL", text="oncall")
    unknown = slack_server.post_signed(body, headers).text
    assert "`oncall` is not a /gitops command here" in unknown and "/gitops help" in unknown


def test_slack_can_verify_the_events_url(slack_server):
    body = json.dumps({"token": "legacy", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).encode()
    answer = slack_server.post_signed(body, {"Content-Type": "application/json"})
    assert answer.status_code == 200
    assert answer.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_without_slack_credentials_the_events_url_says_what_to_set(db, config, tmp_path, policy_engine, serve):
    from adapters.http.app import create_app
    from assistant.config import Settings

    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    with serve(create_app(settings, config, db, policy_engine=policy_engine)) as http:
        answer = http.post("/slack/events", content=b"payload=%7B%7D", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 503
    assert answer.json()["error"] == "slack_disabled" and "SLACK_BOT_TOKEN" in answer.json()["message"]
