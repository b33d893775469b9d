"""`gitops-health db upgrade`."""

from __future__ import annotations

from assistant.commands._common import CommandFailed, database, settings_and_config


def upgrade() -> int:
    try:
        settings, _ = settings_and_config()
        db = database(settings, upgrade=True)
    except CommandFailed as exc:
        return exc.code
    print(f"database at revision {db.current_revision()} ({db.safe_url})")
    db.dispose()
    return 0
