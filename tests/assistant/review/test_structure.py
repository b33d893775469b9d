"""Shared structure helpers: the comment test and identifier words, as the families rely on them."""

from __future__ import annotations

import random

import re2

from assistant.review._structure import is_comment, words_of


def test_is_comment_answers_as_its_re2_pattern_does() -> None:
    pattern = re2.compile(r"^\s*(?:#|//|/\*|\*|--|<!--|;|')")
    rng = random.Random(1)
    alphabet = " \t\x0b\x0c\r\n#/*-<!;'ax\u00a0"
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))
        assert is_comment(text) == (pattern.search(text) is not None), repr(text)
    assert is_comment("   // note") and is_comment("\t# note") and is_comment("<!-- x -->")
    assert not is_comment("x = 1  # trailing") and not is_comment("\x0b# vertical tab is not RE2 space")


def test_words_of_splits_identifiers_as_re2_did() -> None:
    pattern = re2.compile(r"[A-Z]+(?:[a-z0-9]+)?|[a-z0-9]+")
    text = "patient.getDateOfBirth() HTTPServer_v2 SpO2 naïve MAX_DAILY_MG_PER_KG"
    assert words_of(text) == [w.lower() for w in pattern.findall(text)]
    assert words_of("getDateOfBirth") == ["get", "date", "of", "birth"]
