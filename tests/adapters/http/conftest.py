"""HTTP adapter fixtures: settings, a bare SQLite database, and make_app; ``serve`` (a real server) is in tests/adapters/conftest.py."""

from __future__ import annotations

# RE2 must be loaded before regopy: regopy's librego_shared.so carries its own
# static libstdc++ whose GNU-unique symbols hijack later-loaded C++ libraries;
# compiling some RE2 patterns after a PolicyEngine.load() then aborts the
# process ("double free or corruption"). The server does the same: logging
# (which imports assistant.redact) is configured before policies load.
import assistant.redact  # noqa: F401  isort: skip

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from adapters.http.app import create_app
from assistant.config import AppConfig, Settings
from assistant.storage import Database


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path / "data",
        webhook_secret=SecretStr("test-webhook-secret"),
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'data' / 'gitops-health.db'}")
    yield database
    database.dispose()


@pytest.fixture
def make_app(settings: Settings, config: AppConfig, db: Database, policy_engine: Any) -> Callable[..., FastAPI]:
    def make(**overrides: Any) -> FastAPI:
        args: dict[str, Any] = {"settings": settings, "config": config, "db": db, "policy_engine": policy_engine}
        args.update(overrides)
        return create_app(args.pop("settings"), args.pop("config"), args.pop("db"), **args)

    return make
