"""SQLAlchemy table definitions. Migrations (storage/migrations) are the source of truth for the schema; these mirror them for queries."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

metadata = MetaData()

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),  # canonical JSON of the record: what the hash covers
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# One row: the newest record's seq and hash, so removing the tail of the chain is detectable too.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("hash", String(64), nullable=False),
)

# --- deploy approvals (migration 0002; owned by approvals-core) ------------------------------

from sqlalchemy import ForeignKey, UniqueConstraint  # noqa: E402

_ID = BigInteger().with_variant(Integer, "sqlite")

deployments = Table(
    "deployments",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("service", String(200), nullable=False),
    Column("version", String(200), nullable=False),
    Column("environment", String(100), nullable=False),
    Column("repository", String(300), nullable=False),
    Column("commit", String(100), nullable=False),
    Column("requested_by", String(320), nullable=False),
    Column("authors", Text, nullable=False),
    Column("callback_url", Text, nullable=True),
    Column("policy_decision", String(16), nullable=False),
    Column("risk", Text, nullable=False),
    Column("findings", Text, nullable=False),
    Column("required_approvals", Text, nullable=False),
    Column("violations", Text, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("expires_at", String(40), nullable=False),
    Column("decided_at", String(40), nullable=True),
    Column("decided_by", String(200), nullable=True),
    Column("reason", Text, nullable=True),
)

votes = Table(
    "votes",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("deployment_id", String(40), ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
    Column("person_id", String(200), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("via", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("at", String(40), nullable=False),
    UniqueConstraint("deployment_id", "person_id", name="uq_votes_deployment_person"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(40), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("subject_id", String(40), nullable=False),
    Column("created_at", String(40), nullable=False),
)

chat_messages = Table(
    "chat_messages",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("subject_id", String(40), nullable=False),
    Column("platform", String(16), nullable=False),
    Column("channel", String(300), nullable=False),
    Column("message_ref", String(300), nullable=False),
    Column("data", Text, nullable=False, server_default="{}"),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    UniqueConstraint("subject_id", "platform", "channel", name="uq_chat_messages_subject_platform_channel"),
)
