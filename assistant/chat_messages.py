"""Where each request's (or alert's) card lives in each chat, so later updates edit it instead of posting anew.

One row per (subject, platform, channel): Slack's channel id and message `ts`,
or Teams' conversation id and activity id, plus whatever else the adapter
needs to reach it again (`data`, e.g. the Teams service URL). The chat
adapters' outbox handlers call `save` right after posting and `find` before
updating; a handler that runs twice (retry after a crash between the post and
the save) finds the row and updates instead of posting a second card.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from assistant import clock
from assistant.storage import Database
from assistant.storage.tables import chat_messages

__all__ = ["ChatMessage", "find", "find_by_ref", "find_many", "save", "save_many"]

PLATFORMS = ("slack", "teams")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    subject_id: str
    platform: str
    channel: str
    message_ref: str
    data: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""


def _check_platform(platform: str) -> None:
    if platform not in PLATFORMS:
        raise ValueError(f"platform {platform!r} is not one of {', '.join(PLATFORMS)}")


# Built once: constructing and compiling a statement cost more than running it (a card post is ~0.5 ms of SQL).
def _upserts() -> dict[str, Any]:
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    statements: dict[str, Any] = {}
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert)):
        add = dialect_insert(chat_messages)
        statements[name] = add.on_conflict_do_update(
            index_elements=["subject_id", "platform", "channel"],
            set_={"message_ref": add.excluded.message_ref, "data": add.excluded.data, "updated_at": add.excluded.updated_at},
        ).returning(chat_messages.c.created_at)
    return statements


_UPSERT = _upserts()
_FIND_ALL = select(chat_messages).where(chat_messages.c.subject_id == bindparam("subject")).order_by(chat_messages.c.id)
_FIND_ON = _FIND_ALL.where(chat_messages.c.platform == bindparam("platform"))
_FIND_MANY_ON = (
    select(chat_messages)
    .where(chat_messages.c.subject_id.in_(bindparam("subjects", expanding=True)) & (chat_messages.c.platform == bindparam("platform")))
    .order_by(chat_messages.c.id)
)


def save(
    db: Database | Session,
    subject_id: str,
    platform: str,
    channel: str,
    message_ref: str,
    data: dict[str, Any] | None = None,
) -> ChatMessage:
    """Remember (or move) the card of `subject_id` in `channel`; pass a Session to join the caller's transaction."""
    _check_platform(platform)
    if isinstance(db, Database):
        with db.session() as session:
            return save(session, subject_id, platform, channel, message_ref, data)
    session = db
    when = clock.now().isoformat(timespec="microseconds")
    data = dict(data or {})
    payload = json.dumps(data, sort_keys=True, separators=(",", ":"))
    row = {"subject_id": subject_id, "platform": platform, "channel": channel, "message_ref": message_ref, "data": payload, "created_at": when, "updated_at": when}
    # One statement, insert or move: the row another process saved since keeps its created_at and takes our ref.
    created = session.execute(_UPSERT[session.get_bind().dialect.name], row).scalar_one()
    return ChatMessage(subject_id, platform, channel, message_ref, data, created, when)


def save_many(session: Session, cards: Sequence[tuple[str, str, str, str]]) -> None:
    """Remember several cards, (subject_id, platform, channel, message_ref) each, in the caller's transaction:
    what the card posts that finished together cost in one write transaction instead of one each."""
    for subject_id, platform, channel, message_ref in cards:
        save(session, subject_id, platform, channel, message_ref)


def find_many(session: Session, subject_ids: Sequence[str], platform: str) -> dict[str, list[ChatMessage]]:
    """Every card in `platform` of each of `subject_ids` (oldest first) in one statement; subjects without one map to []."""
    _check_platform(platform)
    found: dict[str, list[ChatMessage]] = {subject: [] for subject in subject_ids}
    if found:
        for row in session.execute(_FIND_MANY_ON, {"subjects": list(found), "platform": platform}):
            found[row.subject_id].append(_message(row))
    return found


def find(db: Database | Session, subject_id: str, platform: str | None = None) -> list[ChatMessage]:
    """Every card of `subject_id` (in one platform, if given), oldest first."""
    if platform is not None:
        _check_platform(platform)
    if isinstance(db, Database):
        with db.read() as session:
            return find(session, subject_id, platform)
    if platform is None:
        rows = db.execute(_FIND_ALL, {"subject": subject_id})
    else:
        rows = db.execute(_FIND_ON, {"subject": subject_id, "platform": platform})
    return [_message(row) for row in rows]


def find_by_ref(db: Database | Session, platform: str, channel: str, message_ref: str) -> ChatMessage | None:
    """The card a click came from (Slack gives channel + ts), or None when it is not one of ours."""
    _check_platform(platform)
    if isinstance(db, Database):
        with db.read() as session:
            return find_by_ref(session, platform, channel, message_ref)
    row = db.execute(
        select(chat_messages).where(
            (chat_messages.c.platform == platform) & (chat_messages.c.channel == channel) & (chat_messages.c.message_ref == message_ref)
        )
    ).first()
    return _message(row) if row else None


def _message(row: Any) -> ChatMessage:
    return ChatMessage(row.subject_id, row.platform, row.channel, row.message_ref, json.loads(row.data or "{}"), row.created_at, row.updated_at)
