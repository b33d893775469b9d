"""The bundled policies' own Rego tests (policies/*_test.rego), one pytest case each."""

from __future__ import annotations

import pytest

from assistant.policy import RegoTest, run_tests

RESULTS: list[RegoTest] = run_tests()


def test_the_bundled_policies_have_tests() -> None:
    assert len(RESULTS) >= 8


@pytest.mark.parametrize("result", RESULTS, ids=[f"{t.package}.{t.name}" for t in RESULTS])
def test_rego(result: RegoTest) -> None:
    assert result.passed, f"{result.file}: {result.name}: {result.detail}"
