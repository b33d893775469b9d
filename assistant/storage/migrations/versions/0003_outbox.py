"""The durable outbox: jobs written with the change that causes them, and every attempt to run them.

Revision ID: 0003
Revises: 0002

Times are unix seconds (double precision), so "due" and "lease expired"
are plain comparisons on both SQLite and Postgres.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox_jobs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("dedupe_key", sa.String(200), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("run_at", sa.Double, nullable=False),
        sa.Column("lease_until", sa.Double, nullable=True),
        sa.Column("claimed_by", sa.String(100), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("finished_at", sa.Double, nullable=True),
        sa.CheckConstraint("status IN ('pending', 'running', 'done', 'failed', 'superseded')", name="ck_outbox_jobs_status"),
    )
    # The worker's two questions: what is due, and whose lease has run out.
    op.create_index("ix_outbox_jobs_due", "outbox_jobs", ["status", "run_at"])
    op.create_index("ix_outbox_jobs_lease", "outbox_jobs", ["status", "lease_until"])
    # One waiting job per dedupe key (see outbox.enqueue); started and finished ones don't count.
    op.create_index(
        "ux_outbox_jobs_waiting_key",
        "outbox_jobs",
        ["dedupe_key"],
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "outbox_attempts",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", _ID, sa.ForeignKey("outbox_jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("worker", sa.String(100), nullable=False),
        sa.Column("started_at", sa.Double, nullable=False),
        sa.Column("finished_at", sa.Double, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.UniqueConstraint("job_id", "attempt", name="uq_outbox_attempts_job_attempt"),
    )


def downgrade() -> None:
    op.drop_table("outbox_attempts")
    op.drop_index("ux_outbox_jobs_waiting_key", "outbox_jobs")
    op.drop_index("ix_outbox_jobs_lease", "outbox_jobs")
    op.drop_index("ix_outbox_jobs_due", "outbox_jobs")
    op.drop_table("outbox_jobs")
