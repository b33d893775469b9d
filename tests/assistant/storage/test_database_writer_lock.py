"""SQLite writers hand the write lock to each other instead of sleeping in SQLite's busy handler.

Real SQLite files, real processes (fork) and real threads: what must hold is
that every write lands, that a writer holds the lock file while its
transaction is open, and that a forked worker waits for its parent's
transaction rather than inheriting its lock.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from assistant.storage.database import Database


def _database(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS writes (who TEXT NOT NULL, n INTEGER NOT NULL)")
    return db


def _write_many(path: str, who: str, threads: int, per_thread: int) -> None:
    db = Database(f"sqlite:///{path}")

    def work(t: int) -> None:
        for n in range(per_thread):
            with db.session() as session:
                session.execute(text("INSERT INTO writes (who, n) VALUES (:who, :n)"), {"who": f"{who}-{t}", "n": n})

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    db.dispose()


def test_every_write_of_two_processes_and_their_threads_lands(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    _database(path).dispose()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_write_many, args=(str(path), who, 4, 40)) for who in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    db = _database(path)
    with db.read() as session:
        rows = session.execute(text("SELECT who, count(*) FROM writes GROUP BY who ORDER BY who")).all()
    assert rows == [(f"{who}-{t}", 40) for who in ("a", "b") for t in range(4)]


def test_a_writer_holds_the_lock_file_while_its_transaction_is_open(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    db = _database(path)
    lock_file = tmp_path / "app.db.writelock"
    probe = os.open(lock_file, os.O_RDWR | os.O_CREAT)
    try:
        with db.session() as session:
            session.execute(text("INSERT INTO writes (who, n) VALUES ('x', 1)"))
            with pytest.raises(BlockingIOError):
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released at commit
        fcntl.flock(probe, fcntl.LOCK_UN)
    finally:
        os.close(probe)


def test_nested_sessions_in_one_thread_do_not_deadlock_on_our_lock(tmp_path: Path) -> None:
    db = _database(tmp_path / "app.db")
    with db.session() as outer:
        outer.execute(text("INSERT INTO writes (who, n) VALUES ('outer', 1)"))
        with db.read() as inner:
            assert inner.execute(text("SELECT count(*) FROM writes")).scalar() == 0  # not committed yet
    with db.session() as again:
        assert again.execute(text("SELECT count(*) FROM writes")).scalar() == 1


def test_a_forked_worker_waits_for_its_parents_writer(tmp_path: Path) -> None:
    """A worker forked while its parent is inside a write session must not inherit the parent's hold on the lock.

    The parent forks before its transaction touches SQLite (a session connects
    on its first statement), because SQLite itself forbids carrying an open
    transaction across fork; our lock is already held at that point.
    """
    path = tmp_path / "app.db"
    db = _database(path)
    read_end, write_end = os.pipe()
    with db.session() as session:
        pid = os.fork()
        if pid == 0:  # the child: same Database object, inherited lock state
            code = 1
            try:
                os.close(read_end)
                db.engine.dispose(close=False)  # SQLAlchemy's rule after fork: never reuse the parent's connections
                with db.session() as child_session:
                    got = time.monotonic()
                    child_session.execute(text("INSERT INTO writes (who, n) VALUES ('child', 1)"))
                os.write(write_end, repr(got).encode())
                code = 0
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(write_end)
        time.sleep(0.4)
        session.execute(text("INSERT INTO writes (who, n) VALUES ('parent', 1)"))
        released = time.monotonic()
    _, status = os.waitpid(pid, 0)
    child_got = float(os.read(read_end, 64).decode() or "0")
    os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_got >= released
    with db.read() as session:
        assert session.execute(text("SELECT who FROM writes ORDER BY rowid")).scalars().all() == ["parent", "child"]
