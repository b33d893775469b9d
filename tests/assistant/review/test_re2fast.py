"""re2fast gives exactly re2's answers (spans, groups, iteration), only faster on ASCII text."""

from __future__ import annotations

import random

import pytest
import re2

from assistant.review import re2fast

PATTERNS = [
    r"\bpassword\s*=\s*['\"]([^'\"]+)['\"]",
    r"(?i)(?P<verb>get|post)\s*\(\s*['\"](?P<path>[^'\"]*)",
    r"[A-Z]+(?:[a-z0-9]+)?|[a-z0-9]+",
    r"x*",  # empty matches everywhere: iteration must still make progress
    r"^\s*(?:#|//)",
    r"(a)|(b)",
    r"$",
]
TEXTS = [
    "",
    "password = 'hunter2'",
    "  requests.post('/api/patients', json=body)  # send",
    "aaa bbb xax",
    "naïve café = 'ünïcode'",  # non-ASCII: the wrapper's own path
    "résumé post('/é')",
    "ab" * 50,
]


def _spans(m: object) -> object:
    if m is None:
        return None
    n = m.re.groups  # type: ignore[attr-defined]
    return (
        m.span(), m.start(), m.end(), m.group(), m[0], m.groups(), m.groups(""), m.groupdict(), m.lastindex,  # type: ignore[attr-defined]
        [(m.span(g), m.start(g), m.end(g), m.group(g), m[g]) for g in range(1, n + 1)],  # type: ignore[attr-defined]
        m.group(0, n) if n else None, m.pos, m.endpos,  # type: ignore[attr-defined]
    )


@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_method_answers_as_re2_does(pattern: str) -> None:
    fast, slow = re2fast.compile(pattern), re2.compile(pattern)
    rng = random.Random(7)
    texts = TEXTS + ["".join(rng.choice("ab x=_'\"(/é#") for _ in range(rng.randrange(30))) for _ in range(200)]
    for text in texts:
        assert _spans(fast.search(text)) == _spans(slow.search(text)), text
        assert _spans(fast.match(text)) == _spans(slow.match(text)), text
        assert _spans(fast.fullmatch(text)) == _spans(slow.fullmatch(text)), text
        assert [_spans(m) for m in fast.finditer(text)] == [_spans(m) for m in slow.finditer(text)], text
        assert fast.findall(text) == slow.findall(text), text
        assert fast.sub("<\\g<0>>", text) == slow.sub("<\\g<0>>", text), text
        assert fast.split(text) == slow.split(text), text
        assert _spans(fast.search(text, 1, 5)) == _spans(slow.search(text, 1, 5)), text


def test_named_groups_and_bad_indexes_behave_as_in_re2() -> None:
    fast = re2fast.search(r"(?P<verb>get|post)\((?P<path>[^)]*)\)", "client.post(/x)")
    assert fast.group("verb") == "post" and fast["path"] == "/x" and fast.lastgroup == "path"
    for bad in (3, -1):
        with pytest.raises(IndexError):
            fast.group(bad)
        with pytest.raises(IndexError):
            fast.span(bad)


def test_module_functions_and_compiled_patterns() -> None:
    compiled = re2fast.compile(r"(\d+)")
    assert re2fast.compile(compiled) is compiled
    assert re2fast.search(r"(\d+)", "dose 15 mg").group(1) == "15"
    assert re2fast.findall(r"\d+", "1 22 333") == ["1", "22", "333"]
    assert re2fast.sub(r"\d", "#", "a1b2") == "a#b#"
    assert re2fast.escape("a.b") == re2.escape("a.b")
    with pytest.raises(re2fast.error):
        re2fast.compile("(")


def test_a_long_line_stays_linear() -> None:
    line = "a" * 1_000_000 + "!"
    assert re2fast.compile(r"(a+)+$").search(line) is None
    assert len(re2fast.findall(r"a{1000}", line)) == 1000
