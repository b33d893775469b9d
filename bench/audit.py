"""Audit log benchmark: appends/s on SQLite and Postgres, and `audit verify` records/s over 1M records.

Usage: .venv/bin/python bench/audit.py [--records 1000000] [--appends 3000] [--postgres URL]

Targets (issue 3): >= 2,000 appends/s on SQLite (one transaction per append,
as the server writes them); verify >= 200,000 records/s. Anchor, measured in
the same run: the bare driver committing one INSERT per transaction on the
same database (the ceiling an append can approach) and a bare SHA-256 loop
over the same bodies (the ceiling verify can approach).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant import audit  # noqa: E402
from assistant.storage import Database  # noqa: E402


def appends_per_second(db: Database, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        with db.session() as s:
            audit.append(s, "bench", "deployment.vote", f"dep_{i % 97}", {"decision": "approve", "i": i})
    return n / (time.perf_counter() - start)


def bare_driver_inserts_per_second(db: Database, n: int) -> float:
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS bench_anchor (id INTEGER PRIMARY KEY, body TEXT)")
        raw.commit()
        start = time.perf_counter()
        for i in range(n):
            if db.is_sqlite:
                cur.execute("BEGIN IMMEDIATE")
                cur.execute("INSERT INTO bench_anchor (id, body) VALUES (?, ?)", (i, "x" * 200))
                cur.execute("COMMIT")
            else:
                cur.execute("INSERT INTO bench_anchor (id, body) VALUES (%s, %s)", (i, "x" * 200))
                raw.commit()
        return n / (time.perf_counter() - start)
    finally:
        raw.close()


def fill(db: Database, n: int) -> list[str]:
    """Write n chained records fast (bulk, computed here) so verify has 1M records to read."""
    rows = []
    prev = audit.GENESIS
    at = "2026-11-25T09:00:00.000000+00:00"
    for seq in range(1, n + 1):
        data = {"decision": "approve" if seq % 5 else "reject", "request": f"dep_{seq % 9973:05d}", "via": "slack"}
        body = audit.canonical(seq, at, f"person{seq % 17}", "deployment.vote", f"dep_{seq % 9973:05d}", data, prev)
        digest = hashlib.sha256(body.encode()).hexdigest()
        rows.append((seq, at, f"person{seq % 17}", "deployment.vote", f"dep_{seq % 9973:05d}", body, prev, digest))
        prev = digest
    raw = db.engine.raw_connection()
    try:
        cur = raw.cursor()
        mark = "?" if db.is_sqlite else "%s"
        sql = f"INSERT INTO audit_log (seq, at, actor, action, subject, body, prev_hash, hash) VALUES ({', '.join([mark] * 8)})"
        for i in range(0, n, 50_000):
            cur.executemany(sql, rows[i : i + 50_000])
        cur.execute(f"INSERT INTO audit_head (id, seq, hash) VALUES (1, {mark}, {mark})", (n, prev))
        raw.commit()
    finally:
        raw.close()
    return [r[5] for r in rows]


def verify_rate(db: Database, expected: int) -> float:
    start = time.perf_counter()
    result = audit.verify(db)
    elapsed = time.perf_counter() - start
    assert result.ok and result.records == expected, result.describe()
    return expected / elapsed


def sha_rate(bodies: list[str]) -> float:
    start = time.perf_counter()
    for body in bodies:
        hashlib.sha256(body.encode()).hexdigest()
    return len(bodies) / (time.perf_counter() - start)


def postgres_url(arg: str | None) -> str | None:
    url = arg or os.environ.get("GITOPS_HEALTH_TEST_POSTGRES_URL")
    if url:
        return url
    script = Path(__file__).resolve().parents[1] / ".ci" / "postgres.sh"
    try:
        return subprocess.run([str(script), "start"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"postgres: not available ({exc}); pass --postgres URL", file=sys.stderr)
        return None


def fresh_postgres(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rpartition("/")[0] + "/" + name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--appends", type=int, default=3000)
    parser.add_argument("--postgres", default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite:///{tmp}/bench.db")]
        pg = postgres_url(args.postgres)
        if pg:
            targets.append(("postgres", fresh_postgres(pg, "gh_bench_audit")))
        print(f"{'backend':<10} {'appends/s':>12} {'anchor: bare INSERT+COMMIT/s':>30}")
        for name, url in targets:
            db = Database(url)
            db.upgrade()
            rate = appends_per_second(db, args.appends)
            anchor = bare_driver_inserts_per_second(db, args.appends)
            print(f"{name:<10} {rate:>12,.0f} {anchor:>30,.0f}")
            db.dispose()
        print("target: >= 2,000 appends/s on SQLite")

        print(f"\nverify over {args.records:,} records")
        for name, url in targets:
            if name == "postgres":
                url = fresh_postgres(pg, "gh_bench_verify")  # type: ignore[arg-type]
            else:
                url = f"sqlite:///{tmp}/verify.db"
            db = Database(url)
            db.upgrade()
            bodies = fill(db, args.records)
            rate = verify_rate(db, args.records)
            anchor = sha_rate(bodies)
            del bodies
            print(f"{name:<10} verify {rate:>12,.0f} records/s   anchor: bare sha256 over the same bodies {anchor:>12,.0f}/s")
            db.dispose()
        print("target: verify >= 200,000 records/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
