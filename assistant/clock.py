"""The one clock: every timestamp in gitops-health comes from `now()`, so tests can freeze time."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time as an aware UTC datetime (freezegun patches `datetime.now`)."""
    return datetime.now(UTC)
