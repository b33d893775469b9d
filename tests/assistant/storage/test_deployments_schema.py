"""Migration 0002: the database itself refuses a second vote per person and an unknown status, and it downgrades cleanly."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError

from assistant.storage import Database
from assistant.storage.tables import deployments, votes

ROW = {
    "id": "dep_1", "status": "pending", "service": "s", "version": "1", "environment": "production", "repository": "r",
    "commit": "c", "requested_by": "dev@example.org", "authors": "[]", "callback_url": None, "policy_decision": "review",
    "risk": '{"score": 1, "level": "low"}', "findings": "[]", "required_approvals": "[]", "violations": "[]",
    "created_at": "2026-03-01T10:00:00.000000+00:00", "expires_at": "2026-03-01T14:00:00.000000+00:00",
}


def test_one_vote_per_person_per_request_is_a_database_constraint(db: Database) -> None:
    vote = {"deployment_id": "dep_1", "person_id": "bob", "decision": "approve", "via": "slack", "reason": None, "at": "t"}
    with db.session() as s:
        s.execute(deployments.insert(), ROW)
        s.execute(votes.insert(), vote)
    with pytest.raises(IntegrityError):
        with db.session() as s:
            s.execute(votes.insert(), {**vote, "decision": "reject", "reason": "x"})


@pytest.mark.parametrize("column, value", [("status", "maybe")])
def test_an_unknown_status_is_refused(db: Database, column: str, value: str) -> None:
    with pytest.raises(IntegrityError):
        with db.session() as s:
            s.execute(deployments.insert(), {**ROW, column: value})


def test_0002_downgrades_and_upgrades_again(db: Database) -> None:
    from alembic import command

    cfg = db.alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert not {"deployments", "votes", "idempotency_keys", "chat_messages"} & set(inspect(db.engine).get_table_names())
    db.upgrade()
    assert {"deployments", "votes", "idempotency_keys", "chat_messages"} <= set(inspect(db.engine).get_table_names())
