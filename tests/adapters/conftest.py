"""Fixtures every adapter test shares: the policies (loaded once), the demo config, and a real server for an app."""

from __future__ import annotations

# RE2 before regopy (see tests/adapters/http/conftest.py): regopy's static
# libstdc++ otherwise makes later RE2 compiles abort the process.
import assistant.redact  # noqa: F401  isort: skip

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.servers import running


@pytest.fixture(scope="session")
def policy_engine() -> Any:
    from assistant.policy import PolicyEngine

    return PolicyEngine.load()


@pytest.fixture
def config() -> Any:
    """The demo config (Teams tests override it with one whose cards go to their connector)."""
    from assistant.config import DEMO_CONFIG, parse_config

    return parse_config(DEMO_CONFIG, "demo")


@pytest.fixture
def serve() -> Callable[[Any], Any]:
    """``serve(app)``: a context manager running ``app`` on a free loopback port, yielding an httpx client."""
    return running
