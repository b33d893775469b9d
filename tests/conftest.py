"""Fixtures shared by every test: real databases (SQLite files and, where configured, a real Postgres)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get("GITOPS_HEALTH_TEST_POSTGRES_URL")
REQUIRE_POSTGRES = os.environ.get("GITOPS_HEALTH_REQUIRE_POSTGRES") == "1"


def _postgres_database() -> Iterator[str]:
    """A fresh, empty Postgres database for one test, dropped afterwards."""
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("GITOPS_HEALTH_REQUIRE_POSTGRES=1 but GITOPS_HEALTH_TEST_POSTGRES_URL is not set")
        pytest.skip("no Postgres: set GITOPS_HEALTH_TEST_POSTGRES_URL (.ci/postgres.sh start prints one)")
    import psycopg

    name = f"gh_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each storage test runs twice: on a real SQLite file and on a real Postgres database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gitops-health.db'}"
    else:
        yield from _postgres_database()


def _migrated(url: str) -> Iterator["Database"]:  # noqa: F821
    """A Database at ``url`` with every migration applied, disposed of afterwards."""
    from assistant.storage import Database

    database = Database(url)
    database.upgrade()
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator["Database"]:  # noqa: F821
    """A migrated Database on SQLite and on Postgres."""
    yield from _migrated(database_url)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator["Database"]:  # noqa: F821
    yield from _migrated(f"sqlite:///{tmp_path / 'gitops-health.db'}")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No GITOPS_HEALTH_*/SLACK_*/TEAMS_* variables from the developer's shell; cwd in a temp dir (no stray .env)."""
    for key in list(os.environ):
        if key.startswith(("GITOPS_HEALTH_", "SLACK_", "TEAMS_")) and not key.startswith("GITOPS_HEALTH_TEST_") and key != "GITOPS_HEALTH_REQUIRE_POSTGRES":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path
