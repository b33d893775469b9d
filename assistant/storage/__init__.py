"""Durable state on SQLite or Postgres through one SQLAlchemy code path."""

from assistant.storage.database import Database, DatabaseUnavailable, open_database

__all__ = ["Database", "DatabaseUnavailable", "open_database"]
