"""`gitops-health audit verify|export`."""

from __future__ import annotations

import sys

from assistant import audit
from assistant.commands._common import CommandFailed, database, settings_and_config


def verify() -> int:
    try:
        settings, _ = settings_and_config()
        db = database(settings, upgrade=True)
    except CommandFailed as exc:
        return exc.code
    result = audit.verify(db)
    db.dispose()
    print(result.describe(), file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1


def export(fmt: str, out: str | None) -> int:
    if fmt != "jsonl":
        print(f"error: --format {fmt!r} is not supported; use --format jsonl", file=sys.stderr)
        return 2
    try:
        settings, _ = settings_and_config()
        db = database(settings, upgrade=True)
    except CommandFailed as exc:
        return exc.code
    try:
        if out is None:
            count = audit.export_jsonl(db, sys.stdout)
        else:
            with open(out, "w", encoding="utf-8") as handle:
                count = audit.export_jsonl(db, handle)
    finally:
        db.dispose()
    print(f"exported {count} audit records", file=sys.stderr)
    return 0
