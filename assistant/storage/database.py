"""The database handle: engine set-up per dialect, transactions, migrations, readiness.

SQLite runs in WAL mode with a busy timeout and foreign keys on; every write
transaction starts with BEGIN IMMEDIATE so two writers queue instead of
failing on lock upgrade. Postgres goes through psycopg 3. Callers never see
the difference.

Why SQLite writers also take a lock of ours: a writer that finds the
database locked waits in SQLite's busy handler, which *sleeps* (1, 2, 5,
10 ... 100 ms) between retries, so under load (``serve --workers N``, or
threads of one process) the write lock sits free while the next writer
sleeps. `Database.session()` therefore first takes a per-file thread lock
and an ``flock`` on ``<database>.writelock``; the kernel wakes the next
waiter the moment a writer commits, turning the sleep into a hand-off.
SQLite's own locking stays the authority (the busy timeout still guards
writers that don't come through here, e.g. another tool); ``flock`` is
advisory and per open file, so a crashed holder's lock goes with it.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, ContextManager

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000

try:  # POSIX only; elsewhere SQLite's busy handler alone queues the writers
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class CoreSession(Session):
    """A Session whose `execute` of a Core statement (tables, not mapped classes) goes straight to its connection.

    Everything we store is Core, so the ORM half of `Session.execute` (statement coercion, bind lookup,
    execution-option merging, the ORM-execute event hook) did nothing for us but cost ~20-40 us CPU a
    statement; a POST /api/deployments runs seven. Same connection, same transaction, same result
    objects; a statement with ORM entities, execution options or bind arguments takes the full path.
    """

    def execute(self, statement: Any, params: Any = None, **kw: Any) -> Any:
        if not kw and not getattr(statement, "_propagate_attrs", True):
            return self.connection().execute(statement, params)
        return super().execute(statement, params, **kw)


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or used; the message says what to fix."""


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine(echo)
        elif self.dialect == "postgresql":
            if self.url.drivername == "postgresql":
                self.url = self.url.set(drivername="postgresql+psycopg")
            self.engine = create_engine(self.url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20)
        else:
            raise DatabaseUnavailable(f"unsupported database {self.dialect!r}; use sqlite:///path or postgresql://...")
        self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._writer_lock: ContextManager[Any] = nullcontext()
        if self.dialect == "sqlite":
            database = self.url.database
            if database and database != ":memory:" and not database.startswith("file:") and fcntl is not None:
                self._writer_lock = _WriterLock(Path(database).with_name(Path(database).name + ".writelock"))

    def _sqlite_engine(self, echo: bool) -> Engine:
        database = self.url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(self.url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on any exception."""
        with self._writer_lock, CoreSession(self._write_engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction that never takes SQLite's write lock."""
        with CoreSession(self.engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless a trivial query answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
                if self.is_sqlite:
                    conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar()
        except Exception as exc:  # noqa: BLE001 - any driver error means "not ready"
            raise DatabaseUnavailable(f"database unreachable ({self.safe_url}): {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc

    @property
    def safe_url(self) -> str:
        """The URL with its password hidden, for messages and logs."""
        return self.url.render_as_string(hide_password=True)

    def upgrade(self, revision: str = "head") -> None:
        """Apply migrations; on Postgres under an advisory lock so replicas starting together don't race."""
        from alembic import command

        cfg = self.alembic_config()
        with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7243001)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def alembic_config(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", self.url.render_as_string(hide_password=False).replace("%", "%%"))
        return cfg

    def dispose(self) -> None:
        self.engine.dispose()


class _WriterLock:
    """The hand-off between SQLite writers: a thread lock, then an ``flock`` on a file beside the database.

    Re-entrant within a thread (a nested write session would wait on SQLite's
    own lock just as before, not on this one). The lock file's descriptor is
    opened lazily and once per process; ``flock`` locks belong to the open
    file, so the thread lock makes sure one thread of a process holds it at a
    time, and a forked worker opens its own.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid = 0
        _WRITER_LOCKS.add(self)

    def _after_fork_in_child(self) -> None:
        """A forked worker starts unlocked with its own descriptor (an inherited one would share the parent's lock)."""
        self._thread_lock = threading.RLock()
        self._depth = 0
        if self._fd is not None:
            try:
                os.close(self._fd)  # the parent's lock stays: it holds its own reference to the open file
            except OSError:
                pass
        self._fd = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        if self._depth == 0:
            try:
                fd = self._descriptor()
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _descriptor(self) -> int | None:
        if self._fd is None or self._pid != os.getpid():
            try:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                return None  # a read-only directory: SQLite's busy handler still queues the writers
            self._pid = os.getpid()
        return self._fd


_WRITER_LOCKS: weakref.WeakSet[_WriterLock] = weakref.WeakSet()


def _reset_writer_locks_in_child() -> None:
    for lock in list(_WRITER_LOCKS):
        lock._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_writer_locks_in_child)


def open_database(settings: Any, *, upgrade: bool = True) -> Database:
    """The database the settings name (SQLite in the data dir by default), migrated to head."""
    if settings.database_url is None:
        from assistant.config import data_dir

        data_dir(settings)
    db = Database(settings.sqlalchemy_url)
    if upgrade:
        db.upgrade()
    return db
