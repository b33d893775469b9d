"""Deploy requests, their votes, idempotency keys and the chat messages that show them.

Revision ID: 0002
Revises: 0001

Times are ISO 8601 strings in UTC with microseconds (as the audit log writes
them), so they sort and compare as text on both SQLite and Postgres.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("service", sa.String(200), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("environment", sa.String(100), nullable=False),
        sa.Column("repository", sa.String(300), nullable=False),
        sa.Column("commit", sa.String(100), nullable=False),
        sa.Column("requested_by", sa.String(320), nullable=False),
        sa.Column("authors", sa.Text, nullable=False),  # JSON list of strings
        sa.Column("callback_url", sa.Text, nullable=True),
        sa.Column("policy_decision", sa.String(16), nullable=False),
        sa.Column("risk", sa.Text, nullable=False),  # JSON: {score, level, factors}
        sa.Column("findings", sa.Text, nullable=False),  # JSON list of findings
        sa.Column("required_approvals", sa.Text, nullable=False),  # JSON list of {role, count}
        sa.Column("violations", sa.Text, nullable=False),  # JSON list of {rule, reason}
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
        sa.Column("decided_at", sa.String(40), nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.CheckConstraint("status IN ('pending','approved','rejected','blocked','expired')", name="ck_deployments_status"),
    )
    op.create_index("ix_deployments_status_expires", "deployments", ["status", "expires_at"])
    op.create_index("ix_deployments_service_created", "deployments", ["service", "created_at"])

    op.create_table(
        "votes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("deployment_id", sa.String(40), sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("person_id", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("at", sa.String(40), nullable=False),
        sa.UniqueConstraint("deployment_id", "person_id", name="uq_votes_deployment_person"),
        sa.CheckConstraint("decision IN ('approve','reject')", name="ck_votes_decision"),
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(40), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("subject_id", sa.String(40), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
    )

    op.create_table(
        "chat_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("subject_id", sa.String(40), nullable=False),  # dep_... or alt_...
        sa.Column("platform", sa.String(16), nullable=False),  # slack | teams
        sa.Column("channel", sa.String(300), nullable=False),  # Slack channel id / Teams conversation id
        sa.Column("message_ref", sa.String(300), nullable=False),  # Slack ts / Teams activity id
        sa.Column("data", sa.Text, nullable=False, server_default="{}"),  # JSON: what else the adapter needs (service_url ...)
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
        sa.UniqueConstraint("subject_id", "platform", "channel", name="uq_chat_messages_subject_platform_channel"),
    )
    op.create_index("ix_chat_messages_ref", "chat_messages", ["platform", "channel", "message_ref"])


def downgrade() -> None:
    op.drop_index("ix_chat_messages_ref", "chat_messages")
    op.drop_table("chat_messages")
    op.drop_table("idempotency_keys")
    op.drop_table("votes")
    op.drop_index("ix_deployments_service_created", "deployments")
    op.drop_index("ix_deployments_status_expires", "deployments")
    op.drop_table("deployments")
