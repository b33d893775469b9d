"""Tables of the durable outbox (migration 0003 is the source of truth; these mirror it for queries).

Times are unix seconds as doubles: they compare and add the same way on
SQLite and Postgres, and come from `assistant.clock.now()` so tests can
freeze them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Double, ForeignKey, Integer, String, Table, Text

from assistant.storage.tables import metadata

_ID = BigInteger().with_variant(Integer, "sqlite")

outbox_jobs = Table(
    "outbox_jobs",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("kind", String(100), nullable=False),
    Column("payload", Text, nullable=False),  # JSON object
    Column("dedupe_key", String(200), nullable=True),
    # pending: waits for run_at; running: claimed until lease_until; done; failed (a handler gave up);
    # superseded (a retry found a newer waiting job with its dedupe key, which does the same work)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("run_at", Double, nullable=False),
    Column("lease_until", Double, nullable=True),
    Column("claimed_by", String(100), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", Double, nullable=False),
    Column("finished_at", Double, nullable=True),
)

outbox_attempts = Table(
    "outbox_attempts",
    metadata,
    Column("id", _ID, primary_key=True, autoincrement=True),
    Column("job_id", _ID, ForeignKey("outbox_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("worker", String(100), nullable=False),
    Column("started_at", Double, nullable=False),
    Column("finished_at", Double, nullable=True),
    # ok | retry | failed | lost (the worker died or stalled past its lease); NULL while running
    Column("outcome", String(16), nullable=True),
    Column("error", Text, nullable=True),
)
