"""Approving in Teams, end to end: a real server, real activities on /api/messages, a loopback Bot Connector, SQLite and Postgres.

The server is the real app (create_app + the outbox worker in its lifespan) in
Teams' local mode (no TEAMS_APP_ID: loopback callers only). A request made
through the app's workflow gets its Adaptive Card posted proactively by the
worker to the connector; clicks are the `adaptiveCard/action` invokes Teams
sends; the invoke's answer (the card the clicker sees) is the HTTP response,
and everyone's copy is read from the connector after its update.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import select

from assistant import chat_messages
from assistant.storage.tables import audit_log, votes
from tests.support.bot_connector import bot_added, message

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

APPROVALS = "19:approvals@thread.tacv2"
CARD = "application/vnd.microsoft.card.adaptive"


def attachment(activity: dict[str, Any]) -> dict[str, Any]:
    (att,) = activity["attachments"]
    assert att["contentType"] == CARD
    return att["content"]


def texts(card: dict[str, Any]) -> str:
    return json.dumps(card, ensure_ascii=False)


def buttons(card: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["title"], a["type"]) for a in card.get("actions", [])]


def posted_card(server: Any, deployment_id: str) -> dict[str, Any]:
    for activity in reversed(server.connector.conversation(APPROVALS)):  # the newest card of the request
        if deployment_id in texts(activity):
            return attachment(activity)
    raise AssertionError(f"no card for {deployment_id} in {APPROVALS}")


def wait_card(server: Any, deployment_id: str, predicate: Any, what: str) -> dict[str, Any]:
    def ok(_: Any) -> bool:
        try:
            return bool(predicate(posted_card(server, deployment_id)))
        except AssertionError:
            return False

    server.connector.wait_until(ok, timeout=10, what=what)
    return posted_card(server, deployment_id)


def saved_ref(server: Any, deployment_id: str) -> Any:
    """The card's saved reference; the worker saves it right after the connector answers, so wait briefly."""
    deadline = time.monotonic() + 10
    while True:
        found = chat_messages.find(server.app.state.db, deployment_id, "teams")
        if found:
            (ref,) = found
            return ref
        assert time.monotonic() < deadline, f"no saved Teams card for {deployment_id}"
        time.sleep(0.02)


def answered_card(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["statusCode"] == 200 and body["type"] == CARD, body
    return body["value"]


def votes_of(server: Any, deployment_id: str) -> list[Any]:
    with server.app.state.db.read() as s:
        return s.execute(select(votes).where(votes.c.deployment_id == deployment_id)).all()


def audit_actions(server: Any, deployment_id: str) -> list[str]:
    with server.app.state.db.read() as s:
        return [r.action for r in s.execute(select(audit_log).where(audit_log.c.subject == deployment_id).order_by(audit_log.c.seq))]


def test_a_pending_request_gets_one_adaptive_card_with_approve_and_reject(teams_server: Any) -> None:
    view = teams_server.ask()
    card = wait_card(teams_server, view.id, lambda c: True, "the card to be posted")

    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert buttons(card) == [("Approve", "Action.Execute"), ("Reject", "Action.Execute")]
    assert [a["verb"] for a in card["actions"]] == ["deployment.approve", "deployment.reject"]
    assert any(b.get("type") == "Input.Text" and b["id"] == "reason" for b in card["body"])
    text = texts(card)
    for shown in ("infusion-pump-controller", "2.4.1", "production", f"{view.risk.score}/100", "approver", "0 of 1"):
        assert shown in text
    assert 'logging.info(\\"patient %s\\", patient.ssn)' not in text  # findings are named by rule and message; no code lines
    assert any(f.rule in text for f in view.findings)
    (sent,) = teams_server.connector.calls_to("send")
    assert sent.conversation == APPROVALS and sent.authorization is None  # local mode: no token
    assert view.id in sent.body["summary"] and not sent.body.get("text")  # the card alone; the summary feeds notifications
    assert "replyToId" not in sent.body  # a new post in the channel, not a reply to anything
    ref = saved_ref(teams_server, view.id)
    assert ref.channel == APPROVALS and ref.data["service_url"] == teams_server.connector.url


def test_an_approve_click_decides_answers_with_the_decided_card_and_updates_everyones_copy(teams_server: Any) -> None:
    view = teams_server.ask()
    wait_card(teams_server, view.id, lambda c: True, "the card to be posted")

    answered = answered_card(teams_server.click("29:1bob", "deployment.approve", view.id))

    assert "Approved** by Bob Chen" in texts(answered) and "Your approval was recorded" in texts(answered)
    assert buttons(answered) == []
    assert not any(b.get("type") == "Input.Text" for b in answered["body"])
    shared = wait_card(teams_server, view.id, lambda c: "Approved** by Bob Chen" in texts(c), "the decided card for everyone")
    assert buttons(shared) == [] and "Your approval" not in texts(shared)
    (update,) = teams_server.connector.calls_to("update")
    ref = saved_ref(teams_server, view.id)
    assert update.activity_id == ref.message_ref  # the same card, updated in place
    state = teams_server.service.get(view.id)
    assert state.status == "approved" and [(v.person, v.via) for v in state.votes] == [("bob", "teams")]


def test_a_person_is_found_by_aad_object_id_too(teams_server: Any) -> None:
    view = teams_server.ask()
    answered = answered_card(teams_server.click("29:some-other-id", "deployment.approve", view.id, aad_object_id="6F1E0C2A-0000-4000-8000-00000000E41E"))
    assert "Approved** by Erin Walsh" in texts(answered)
    assert [v.person_id for v in votes_of(teams_server, view.id)] == ["erin"]


@pytest.mark.parametrize(
    ("user", "fields", "says"),
    [
        ("29:stranger", {}, "is not one of the people"),
        ("29:1carol", {}, "does not hold a role"),
        ("29:1alice", {"requested_by": "alice@example.org"}, "separation of duties"),
        ("29:1bob", {"authors": ["bob@example.org"]}, "separation of duties"),
    ],
    ids=["unknown user", "no needed role", "requester", "author"],
)
def test_refused_clicks_are_told_only_to_the_clicker_and_record_nothing(teams_server: Any, user: str, fields: dict[str, Any], says: str) -> None:
    view = teams_server.ask(**fields)
    wait_card(teams_server, view.id, lambda c: True, "the card to be posted")

    answered = answered_card(teams_server.click(user, "deployment.approve", view.id))

    assert says in texts(answered) and "recorded" in texts(answered)
    assert buttons(answered) == [("Approve", "Action.Execute"), ("Reject", "Action.Execute")]  # still pending
    assert votes_of(teams_server, view.id) == []
    assert "deployment.vote_refused" in audit_actions(teams_server, view.id)
    assert teams_server.service.get(view.id).status == "pending"
    assert teams_server.connector.calls_to("update") == []  # nobody else's card changed


def test_a_reject_needs_a_reason_and_the_reason_goes_on_the_card(teams_server: Any) -> None:
    view = teams_server.ask()
    wait_card(teams_server, view.id, lambda c: True, "the card to be posted")

    refused = answered_card(teams_server.click("29:1bob", "deployment.reject", view.id, reason="   "))
    assert "a reject needs a reason" in texts(refused)
    assert votes_of(teams_server, view.id) == []

    answered = answered_card(teams_server.click("29:1bob", "deployment.reject", view.id, reason="dose change lacks tests"))
    assert "Rejected** by Bob Chen" in texts(answered) and "Reason: dose change lacks tests" in texts(answered)
    wait_card(teams_server, view.id, lambda c: "Rejected** by Bob Chen" in texts(c), "the rejected card for everyone")
    state = teams_server.service.get(view.id)
    assert state.status == "rejected" and state.reason == "dose change lacks tests"


def test_a_click_on_a_decided_request_says_who_decided_and_when_and_changes_nothing(teams_server: Any) -> None:
    view = teams_server.ask()
    answered_card(teams_server.click("29:1bob", "deployment.approve", view.id))
    decided = teams_server.service.get(view.id)

    late = answered_card(teams_server.click("29:1erin", "deployment.reject", view.id, reason="too late"))

    assert "already approved by Bob Chen" in texts(late) and "your click changed nothing" in texts(late)
    assert buttons(late) == []
    assert [v.person_id for v in votes_of(teams_server, view.id)] == ["bob"]
    assert teams_server.service.get(view.id).decided_at == decided.decided_at


def test_refresh_answers_the_current_card_and_unknown_buttons_are_refused(teams_server: Any) -> None:
    view = teams_server.ask()
    current = answered_card(teams_server.click("29:1erin", "deployment.refresh", view.id))
    assert view.id in texts(current) and buttons(current)

    unknown = teams_server.click("29:1bob", "deployment.approve", "dep_doesnotexist")
    assert unknown.status_code == 200 and unknown.json()["statusCode"] == 404
    assert "there is no deploy request" in unknown.json()["value"]["message"]
    forged = teams_server.click("29:1bob", "deployment.approve", "not-an-id")
    assert forged.json()["statusCode"] == 400


def test_a_blocked_request_gets_a_notice_without_buttons(teams_server: Any) -> None:
    secret = (
        "diff --git a/svc/c.py b/svc/c.py\n--- a/svc/c.py\n+++ b/svc/c.py\n@@ -1,1 +1,2 @@\n x = 1\n"
        '+AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"\n'
    )
    view = teams_server.ask(diff=secret)
    assert view.status == "blocked", view  # a committed cloud secret is denied outright by policies/
    card = wait_card(teams_server, view.id, lambda c: True, "the blocked notice")
    assert "Blocked by policy" in texts(card) and buttons(card) == []


def test_a_failing_connector_is_retried_and_the_card_is_posted_once(teams_server: Any) -> None:
    teams_server.connector.fail("send", times=2, status=503)
    view = teams_server.ask()
    wait_card(teams_server, view.id, lambda c: True, "the card after two 503s")
    assert len(teams_server.connector.calls_to("send")) == 3
    assert len(teams_server.connector.conversation(APPROVALS)) == 1


def test_a_deleted_card_is_posted_again_on_the_next_update(teams_server: Any) -> None:
    view = teams_server.ask()
    wait_card(teams_server, view.id, lambda c: True, "the card to be posted")
    teams_server.connector.fail("update", times=1, status=404)

    answered_card(teams_server.click("29:1bob", "deployment.approve", view.id))

    sends = teams_server.connector.wait_for("send", count=2)
    reposted = wait_card(teams_server, view.id, lambda c: "Approved** by Bob Chen" in texts(c), "the card posted again, decided")
    assert buttons(reposted) == []
    deadline = time.monotonic() + 10
    while saved_ref(teams_server, view.id).message_ref == "1:1":  # the first card's id; the repost's is saved next
        assert time.monotonic() < deadline, "the reposted card's id was never saved"
        time.sleep(0.02)
    assert len(sends) == 2 and saved_ref(teams_server, view.id).message_ref == "1:2"


def test_typed_help_and_status_are_answered_in_the_conversation(teams_server: Any) -> None:
    view = teams_server.ask()
    url = teams_server.connector.url

    assert teams_server.http.post("/api/messages", json=message(user_id="29:1bob", text="help", service_url=url)).status_code == 200
    (help_reply,) = teams_server.connector.wait_for("reply")
    assert "status <deployment id>" in help_reply.body["text"]

    asked = teams_server.http.post("/api/messages", json=message(user_id="29:1bob", text=f"status {view.id}", service_url=url))
    assert asked.status_code == 200
    replies = teams_server.connector.wait_for("reply", count=2)
    status_card = attachment(replies[-1].body)
    assert view.id in texts(status_card) and buttons(status_card) == []  # a status answer never carries live buttons


def test_when_the_bot_joins_a_channel_it_says_how_to_send_cards_there(teams_server: Any) -> None:
    url = teams_server.connector.url
    assert teams_server.http.post("/api/messages", json=bot_added(service_url=url)).status_code == 200
    (hello,) = teams_server.connector.wait_for("send")  # a new post in the channel (no message to reply to)
    assert hello.conversation == "19:newchannel@thread.tacv2"
    assert 'approvals: {teams: "19:newchannel@thread.tacv2"}' in hello.body["text"] and f"service_url: {url}" in hello.body["text"]

    others = bot_added(service_url=url)
    others["membersAdded"] = [{"id": "29:someone-else"}]
    assert teams_server.http.post("/api/messages", json=others).status_code == 200
    assert len(teams_server.connector.calls_to("send")) == 1  # someone else joining is not the bot's business


def test_bad_bodies_are_refused_with_a_clear_error(teams_server: Any) -> None:
    not_json = teams_server.http.post("/api/messages", content=b"{nope", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and not_json.json()["error"] == "bad_json"
    untyped = teams_server.http.post("/api/messages", json={"text": "hi"})
    assert untyped.status_code == 400 and "no type" in untyped.json()["message"]
    nowhere = teams_server.http.post("/api/messages", json={"type": "message", "text": "help"})
    assert nowhere.status_code == 400 and "serviceUrl" in nowhere.json()["message"]


def test_an_expired_request_shows_expired_without_buttons(db: Any, tmp_path: Any, connector: Any, policy_engine: Any) -> None:
    from tests.adapters.teams.conftest import TeamsServer, settings_for, start_server, teams_config
    from tests.support.servers import running

    config = teams_config(connector.url, approvals={"expire_after_minutes": 0.02})  # 1.2 s
    app = start_server(db, config, settings_for(tmp_path), connector, policy_engine)
    with running(app) as http:
        server = TeamsServer(http=http, app=app, service=app.state.approvals, connector=connector)
        view = server.ask()
        card = wait_card(server, view.id, lambda c: "Expired" in texts(c), "the expired card")
        assert buttons(card) == [] and "no decision within the approval window" in texts(card)
        late = answered_card(server.click("29:1bob", "deployment.approve", view.id))
        assert "expired at" in texts(late) and votes_of(server, view.id) == []
