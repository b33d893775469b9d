"""Where each card lives per chat: saved once per (subject, platform, channel), moved on repost, found by ref."""

from __future__ import annotations

import pytest
from freezegun import freeze_time

from assistant import chat_messages
from assistant.storage import Database


def test_a_saved_card_is_found_by_subject_and_by_its_chat_ref(db: Database) -> None:
    with freeze_time("2026-03-01T10:00:00Z"):
        saved = chat_messages.save(db, "dep_1", "slack", "C0APPROVALS", "1700000000.000100")
    chat_messages.save(db, "dep_1", "teams", "19:approvals@thread.tacv2", "1:activity", {"service_url": "http://127.0.0.1:9/"})
    assert saved.created_at == saved.updated_at == "2026-03-01T10:00:00.000000+00:00"
    assert [m.platform for m in chat_messages.find(db, "dep_1")] == ["slack", "teams"]
    assert chat_messages.find(db, "dep_1", "teams")[0].data == {"service_url": "http://127.0.0.1:9/"}
    assert chat_messages.find_by_ref(db, "slack", "C0APPROVALS", "1700000000.000100") == saved
    assert chat_messages.find_by_ref(db, "slack", "C0OTHER", "1700000000.000100") is None
    assert chat_messages.find(db, "dep_2") == []


def test_saving_again_moves_the_one_card_instead_of_adding_another(db: Database) -> None:
    with freeze_time("2026-03-01T10:00:00Z"):
        chat_messages.save(db, "dep_1", "slack", "C0APPROVALS", "1.1")
    with freeze_time("2026-03-01T10:05:00Z"):
        moved = chat_messages.save(db, "dep_1", "slack", "C0APPROVALS", "2.2", {"reposted": True})
    assert chat_messages.find(db, "dep_1") == [moved]
    assert moved.message_ref == "2.2" and moved.data == {"reposted": True}
    assert moved.created_at < moved.updated_at
    assert chat_messages.find_by_ref(db, "slack", "C0APPROVALS", "1.1") is None


def test_a_save_joins_the_callers_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError):
        with db.session() as session:
            chat_messages.save(session, "dep_1", "slack", "C0APPROVALS", "1.1")
            raise RuntimeError("the post it records failed")
    assert chat_messages.find(db, "dep_1") == []


def test_an_unknown_platform_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="slack, teams"):
        chat_messages.find_by_ref(None, "discord", "c", "r")  # type: ignore[arg-type]


def test_several_cards_are_saved_in_one_transaction_and_found_in_one_statement(db: Database) -> None:
    chat_messages.save(db, "dep_3", "teams", "19:approvals@thread.tacv2", "1:activity")
    with db.session() as session:
        chat_messages.save_many(session, [("dep_1", "slack", "C0APPROVALS", "1.1"), ("dep_2", "slack", "C0APPROVALS", "2.2")])
    with db.read() as session:
        found = chat_messages.find_many(session, ["dep_1", "dep_2", "dep_3", "dep_4"], "slack")
    assert {k: [m.message_ref for m in v] for k, v in found.items()} == {"dep_1": ["1.1"], "dep_2": ["2.2"], "dep_3": [], "dep_4": []}
    assert found["dep_1"] == chat_messages.find(db, "dep_1", "slack")


def test_a_batch_of_saves_rolls_back_with_the_callers_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError):
        with db.session() as session:
            chat_messages.save_many(session, [("dep_1", "slack", "C0APPROVALS", "1.1"), ("dep_2", "slack", "C0APPROVALS", "2.2")])
            raise RuntimeError("interrupted")
    assert chat_messages.find(db, "dep_1") == [] and chat_messages.find(db, "dep_2") == []
