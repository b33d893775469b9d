"""Slack adapter fixtures: the loopback Slack Web API (tests/support/slack_api.py).

``tests`` is not on sys.path under pytest's importlib mode, so the repository
root is added here to import the shared support modules as ``tests.support``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[3])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.support.slack_api import SlackApiServer  # noqa: E402


@pytest.fixture
def slack_api() -> Iterator[SlackApiServer]:
    with SlackApiServer() as server:
        yield server
