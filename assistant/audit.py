"""The tamper-evident audit log: append-only, hash-chained, written in the caller's transaction.

Each record's `hash` is the SHA-256 of its canonical JSON (seq, at, actor,
action, subject, data, and `prev`, the previous record's hash), so editing a
record breaks its own hash, removing or inserting one breaks the next
record's `prev`, and reordering breaks both. A one-row head (seq and hash of
the newest record) makes truncating the tail visible too. Appends are
serialized (SQLite: the write transaction's BEGIN IMMEDIATE; Postgres: a
transaction-scoped advisory lock) so two writers never fork the chain.

An auditor can re-check an export without this code: for every line,
sha256(canonical JSON of {seq, at, actor, action, subject, data, prev}) with
sorted keys, no spaces and UTF-8 must equal `hash`, and `prev` must equal the
previous line's `hash` (the first record's prev is 64 zeros).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from assistant import clock
from assistant.storage import Database
from assistant.storage.tables import audit_head, audit_log

GENESIS = "0" * 64
_PG_LOCK_ID = 7243002

# Built once: constructing statements costs more than executing them.
_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
_INSERT = insert(audit_log)
_INSERT_HEAD = insert(audit_head)
_MOVE_HEAD = update(audit_head).where(audit_head.c.id == 1).values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
_PG_LOCK = text(f"SELECT pg_advisory_xact_lock({_PG_LOCK_ID})")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "data": self.data,
            "prev": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    records: int
    bad_seq: int | None = None
    problem: str | None = None

    def describe(self) -> str:
        if self.ok:
            return f"audit log intact: {self.records} records, hash chain verified"
        return f"audit log TAMPERED at record seq {self.bad_seq}: {self.problem}"


def canonical(seq: int, at: str, actor: str, action: str, subject: str, data: Any, prev: str) -> str:
    return json.dumps(
        {"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject, "data": data, "prev": prev},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )


def append(
    session: Session | Connection,
    actor: str,
    action: str,
    subject: str,
    data: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> AuditRecord:
    """Add a record in the caller's transaction (commit together with the change it records)."""
    if _dialect(session) == "postgresql":
        session.execute(_PG_LOCK)
    head = session.execute(_HEAD).first()
    seq, prev = (head.seq + 1, head.hash) if head else (1, GENESIS)
    when = (at or clock.now()).isoformat(timespec="microseconds")
    payload = json.loads(json.dumps(data or {}, default=str))  # what a reader will get back
    body = canonical(seq, when, actor, action, subject, payload, prev)
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    session.execute(
        _INSERT,
        {"seq": seq, "at": when, "actor": actor, "action": action, "subject": subject, "body": body, "prev_hash": prev, "hash": digest},
    )
    if head:
        session.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": digest})
    else:
        session.execute(_INSERT_HEAD, {"id": 1, "seq": seq, "hash": digest})
    return AuditRecord(seq, when, actor, action, subject, payload, prev, digest)


_COLUMNS = "seq, at, actor, action, subject, body, prev_hash, hash"


def _rows(db: Database, columns: str = _COLUMNS, batch: int = 20_000) -> Iterator[tuple[Any, ...]]:
    """Stream every record in chain order through the bare driver (a server-side cursor on Postgres)."""
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor(name="audit_walk") if db.dialect == "postgresql" else raw.cursor()  # type: ignore[call-arg]
        cursor.execute(f"SELECT {columns} FROM audit_log ORDER BY seq")
        while True:
            part = cursor.fetchmany(batch)
            if not part:
                break
            yield from part
        cursor.close()
        raw.rollback()
    finally:
        raw.close()


def verify(db: Database) -> VerifyResult:
    """Walk the chain once; report the first record that does not fit.

    The walk checks order, links and hashes in Python over the bare driver;
    whether the queryable columns still agree with the hashed JSON is one
    set-based query the database answers in C. The earlier of the two
    problems is the one reported.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:  # the database runs its query without the GIL
        columns = pool.submit(_first_column_mismatch, db)
        walk = _walk_chain(db)
        mismatch = columns.result()
    if mismatch is not None and (walk.ok or (walk.bad_seq is not None and mismatch <= walk.bad_seq)):
        return VerifyResult(False, walk.records, mismatch, "its columns disagree with its hashed content (the record was edited or reordered)")
    return walk


def _walk_chain(db: Database) -> VerifyResult:
    sha256 = hashlib.sha256
    expected_seq = 1
    last_hash = GENESIS
    for seq, body, prev_hash, digest in _rows(db, "seq, body, prev_hash, hash"):
        if seq != expected_seq:
            if seq > expected_seq:
                return VerifyResult(False, expected_seq - 1, seq, f"records {expected_seq}..{seq - 1} are missing (removed)")
            return VerifyResult(False, expected_seq - 1, seq, f"sequence number repeats or goes backwards (expected {expected_seq})")
        if prev_hash != last_hash:
            return VerifyResult(False, expected_seq - 1, seq, "its prev hash does not match the record before it (a record was removed, inserted or reordered)")
        if sha256(body.encode("utf-8")).hexdigest() != digest:
            return VerifyResult(False, expected_seq - 1, seq, "its content does not match its hash (the record was edited)")
        last_hash = digest
        expected_seq += 1
    count = expected_seq - 1
    with db.read() as session:
        head = session.execute(_HEAD).first()
    if head is None:
        if count:
            return VerifyResult(False, count, count, "the chain head is missing")
        return VerifyResult(True, 0)
    if head.seq != count:
        if head.seq > count:
            return VerifyResult(False, count, count + 1, f"records {count + 1}..{head.seq} are missing from the end (removed)")
        return VerifyResult(False, count, head.seq + 1, "records exist after the recorded chain head (inserted)")
    if head.hash != last_hash:
        return VerifyResult(False, count, count, "the chain head's hash does not match the last record (the last record was replaced)")
    return VerifyResult(True, count)


_COLUMN_CHECK = {
    "sqlite": (
        "SELECT min(seq) FROM audit_log WHERE json_valid(body) = 0 OR json_extract(body, '$.seq') IS NOT seq"
        " OR json_extract(body, '$.prev') IS NOT prev_hash OR json_extract(body, '$.at') IS NOT at"
        " OR json_extract(body, '$.actor') IS NOT actor OR json_extract(body, '$.action') IS NOT action"
        " OR json_extract(body, '$.subject') IS NOT subject"
    ),
    # json_to_record reads the six top-level keys in one parse; casting to jsonb first built the
    # whole binary document (nested data included) and ran ~15x slower.
    "postgresql": (
        "SELECT min(a.seq) FROM audit_log a, json_to_record(a.body::json)"
        " AS r(seq bigint, prev text, at text, actor text, action text, subject text)"
        " WHERE r.seq IS DISTINCT FROM a.seq OR r.prev IS DISTINCT FROM a.prev_hash OR r.at IS DISTINCT FROM a.at"
        " OR r.actor IS DISTINCT FROM a.actor OR r.action IS DISTINCT FROM a.action OR r.subject IS DISTINCT FROM a.subject"
    ),
}


def _first_column_mismatch(db: Database) -> int | None:
    with db.read() as session:
        try:
            return session.execute(text(_COLUMN_CHECK[db.dialect])).scalar()
        except Exception:  # noqa: BLE001 - a body that is not JSON at all (Postgres cast fails)
            session.rollback()
    loads = _fast_loads()
    for seq, at, actor, action, subject, body, prev_hash in _rows(db, "seq, at, actor, action, subject, body, prev_hash"):
        try:
            fields = loads(body)
        except ValueError:
            return seq
        if not isinstance(fields, dict):
            return seq
        if (fields.get("seq"), fields.get("prev"), fields.get("at"), fields.get("actor"), fields.get("action"), fields.get("subject")) != (
            seq, prev_hash, at, actor, action, subject,
        ):
            return seq
    return None


def records(db: Database) -> Iterator[AuditRecord]:
    loads = _fast_loads()
    for seq, at, actor, action, subject, body, prev_hash, digest in _rows(db):
        data = loads(body).get("data", {})
        yield AuditRecord(seq, at, actor, action, subject, data, prev_hash, digest)


def export_jsonl(db: Database, out: IO[str]) -> int:
    """Write one JSON object per record, with prev and hash, for auditors; returns the count."""
    count = 0
    for record in records(db):
        out.write(json.dumps(record.as_dict(), sort_keys=True, ensure_ascii=False) + "\n")
        count += 1
    return count


def _dialect(session: Session | Connection) -> str:
    if isinstance(session, Connection):
        return session.dialect.name
    return session.get_bind().dialect.name


def _fast_loads() -> Any:
    try:
        import orjson

        return orjson.loads
    except ImportError:  # pragma: no cover - orjson comes with langgraph
        return json.loads
