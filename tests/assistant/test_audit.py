"""The audit log is append-only and hash-chained: any edit, removal, insertion or reordering is caught."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from freezegun import freeze_time
from sqlalchemy import text

from assistant import audit
from assistant.storage import Database


def _fill(db: Database, n: int) -> None:
    for i in range(n):
        with db.session() as s:
            audit.append(s, f"person{i % 3}", "deployment.vote", f"dep_{i}", {"decision": "approve", "n": i})


def test_an_empty_log_verifies(db: Database) -> None:
    result = audit.verify(db)
    assert result.ok and result.records == 0


def test_records_chain_each_to_the_previous(db: Database) -> None:
    _fill(db, 5)
    records = list(audit.records(db))
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == audit.GENESIS
    for before, after in zip(records, records[1:]):
        assert after.prev_hash == before.hash
    assert audit.verify(db).ok


def test_the_hash_covers_the_canonical_json_an_auditor_can_recompute(db: Database) -> None:

    with freeze_time("2026-03-01T10:00:00Z"):
        with db.session() as s:
            rec = audit.append(s, "alice", "deployment.approved", "dep_1", {"reason": "ok", "ünïcode": "✓"})
    assert rec.at == "2026-03-01T10:00:00.000000+00:00"
    body = json.dumps(
        {"seq": 1, "at": rec.at, "actor": "alice", "action": "deployment.approved", "subject": "dep_1",
         "data": {"reason": "ok", "ünïcode": "✓"}, "prev": audit.GENESIS},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    assert hashlib.sha256(body.encode()).hexdigest() == rec.hash


def test_a_record_rolled_back_with_its_change_leaves_no_trace(db: Database) -> None:
    _fill(db, 2)
    with pytest.raises(RuntimeError):
        with db.session() as s:
            audit.append(s, "alice", "deployment.vote", "dep_x", {})
            raise RuntimeError("the change failed")
    assert audit.verify(db).records == 2
    _fill(db, 1)
    assert audit.verify(db).ok


@pytest.mark.parametrize(
    "tamper, bad_seq, words",
    [
        ("UPDATE audit_log SET body = replace(body, 'approve', 'reject') WHERE seq = 3", 3, "edited"),
        ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4", 4, "edited"),
        ("DELETE FROM audit_log WHERE seq = 2", 3, "missing"),
        ("DELETE FROM audit_log WHERE seq = 6", 6, "missing from the end"),
        ("UPDATE audit_log SET seq = -1 WHERE seq = 2; UPDATE audit_log SET seq = 2 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = -1", 2, "reordered"),
    ],
    ids=["edit-body", "edit-column", "delete-middle", "delete-last", "reorder"],
)
def test_tampering_with_sql_is_detected_naming_the_first_bad_record(db: Database, tamper: str, bad_seq: int, words: str) -> None:
    _fill(db, 6)
    with db.engine.begin() as conn:
        for statement in tamper.split("; "):
            conn.execute(text(statement))
    result = audit.verify(db)
    assert not result.ok
    assert result.bad_seq == bad_seq
    assert words in (result.problem or "")
    assert f"seq {bad_seq}" in result.describe()


@pytest.mark.parametrize("body", ["not json at all", "[1, 2, 3]", '{"seq": "three"}'], ids=["not-json", "array", "wrong-type"])
def test_a_body_rewritten_into_something_other_than_a_record_is_named(db: Database, body: str) -> None:
    """The column cross-check runs in the database; bodies it cannot read fall back to the Python walk, still naming seq 3."""
    _fill(db, 5)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET body = :b, hash = :h WHERE seq = 3"), {"b": body, "h": hashlib.sha256(body.encode()).hexdigest()})
    result = audit.verify(db)
    assert not result.ok
    assert result.bad_seq == 3


def test_an_inserted_forged_record_is_detected(db: Database) -> None:
    _fill(db, 4)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET seq = -seq WHERE seq >= 3"))
        conn.execute(text("UPDATE audit_log SET seq = 1 - seq WHERE seq < 0"))
        forged = audit.canonical(3, "2026-01-01T00:00:00+00:00", "mallory", "deployment.approved", "dep_9", {}, "0" * 64)
        conn.execute(
            text("INSERT INTO audit_log (seq, at, actor, action, subject, body, prev_hash, hash) VALUES (3, :at, 'mallory', 'deployment.approved', 'dep_9', :body, :prev, :hash)"),
            {"at": "2026-01-01T00:00:00+00:00", "body": forged, "prev": "0" * 64, "hash": "f" * 64},
        )
    result = audit.verify(db)
    assert not result.ok and result.bad_seq == 3


def test_replacing_the_last_record_with_a_self_consistent_one_is_detected_by_the_head(db: Database) -> None:
    import hashlib

    _fill(db, 3)
    with db.engine.begin() as conn:
        prev = conn.execute(text("SELECT prev_hash, at FROM audit_log WHERE seq = 3")).one()
        body = audit.canonical(3, prev.at, "person2", "deployment.vote", "dep_2", {"decision": "reject", "n": 2}, prev.prev_hash)
        conn.execute(text("UPDATE audit_log SET body = :b, hash = :h WHERE seq = 3"), {"b": body, "h": hashlib.sha256(body.encode()).hexdigest()})
    result = audit.verify(db)
    assert not result.ok and result.bad_seq == 3 and "head" in (result.problem or "")


_WRITER = """
import sys
from assistant import audit
from assistant.storage import Database
url, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = Database(url)
for i in range(n):
    with db.session() as s:
        audit.append(s, who, "test.append", f"item_{i}", {"i": i})
db.dispose()
"""


def test_two_concurrent_writer_processes_never_fork_the_chain(db: Database, database_url: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, database_url, who, "80"]) for who in ("p1", "p2")]
    for p in procs:
        assert p.wait(120) == 0
    result = audit.verify(db)
    assert result.ok, result.describe()
    assert result.records == 160
    actors = {r.actor for r in audit.records(db)}
    assert actors == {"p1", "p2"}


def test_export_writes_one_json_object_per_record_with_hashes(db: Database) -> None:
    import io

    _fill(db, 3)
    out = io.StringIO()
    assert audit.export_jsonl(db, out) == 3
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3]
    assert lines[1]["prev"] == lines[0]["hash"]
    assert lines[2]["data"] == {"decision": "approve", "n": 2}


def test_time_comes_from_the_injectable_clock(db: Database) -> None:
    with freeze_time(datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)):
        with db.session() as s:
            rec = audit.append(s, "a", "b", "c")
    assert rec.at.startswith("2030-05-06T07:08:09")
