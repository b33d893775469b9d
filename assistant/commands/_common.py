"""What every command that touches state does first: settings, config, database, with readable failures."""

from __future__ import annotations

import sys

from assistant.config import AppConfig, ConfigError, Settings, load_config, load_settings
from assistant.storage import Database, DatabaseUnavailable, open_database


class CommandFailed(Exception):
    """Start-up failed; the message was already printed. `code` is the exit status."""

    def __init__(self, code: int = 2) -> None:
        self.code = code


def report_config_error(exc: ConfigError) -> None:
    print(f"error: invalid configuration in {exc.source}:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  - {problem}", file=sys.stderr)


def settings_and_config() -> tuple[Settings, AppConfig]:
    try:
        settings = load_settings()
        return settings, load_config(settings)
    except ConfigError as exc:
        report_config_error(exc)
        raise CommandFailed(2) from None


def database(settings: Settings, *, upgrade: bool = True) -> Database:
    try:
        return open_database(settings, upgrade=upgrade)
    except (DatabaseUnavailable, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise CommandFailed(2) from None
    except Exception as exc:  # noqa: BLE001 - driver errors carry their own types
        print(f"error: cannot open the database: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        print("fix: check GITOPS_HEALTH_DATABASE_URL (or GITOPS_HEALTH_DATA_DIR) and that the server is running", file=sys.stderr)
        raise CommandFailed(2) from None
