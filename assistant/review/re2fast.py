"""RE2, as the `re2` module offers it, with a fast path for ASCII text.

The rules match linear-time RE2 patterns against every line of a diff, and
`google-re2`'s Python wrapper spends most of a search not matching: it
encodes the line, converts character offsets to byte offsets and back, and
runs a generator per call (~6 us for a search that RE2 itself answers in
~1 us). For ASCII text, which is nearly all source code, byte and character
offsets are the same, so this module asks RE2 for the spans directly and
builds the wrapper's own match objects from them; anything else (non-ASCII
text, `pos`/`endpos`) goes through the wrapper unchanged. Same engine, same
answers, same match type: modules use it as `from assistant.review import
re2fast as re2`.

The fast path uses two private names of google-re2 (`_Regexp`, `_Match`);
if a future release drops them, `compile` falls back to plain `re2.compile`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import re2
from re2 import Options, Set, error, escape

__all__ = ["Options", "Set", "compile", "error", "escape", "findall", "finditer", "match", "search", "split", "sub", "subn"]

try:
    from re2 import _re2

    _Base: Any = re2._Regexp
    _Match: Any = re2._Match
    _UNANCHORED = _re2.RE2.Anchor.UNANCHORED
    _ANCHOR_START = _re2.RE2.Anchor.ANCHOR_START
    _ANCHOR_BOTH = _re2.RE2.Anchor.ANCHOR_BOTH
    _FAST = True
except (ImportError, AttributeError):  # pragma: no cover - only with a google-re2 that changed its internals
    _FAST = False

_NULL_SPAN = (-1, -1)

if _FAST:

    class _FastMatch(_Match):  # type: ignore[misc,valid-type]
        """re2's match object, reading groups straight from its spans (the base class asks RE2 for the
        group count on every access)."""

        __slots__ = ()

        def __getitem__(self, group: Any) -> Any:
            if type(group) is int and 0 <= group <= self._regexp._ngroups:
                span = self._spans[group]
                return None if span == _NULL_SPAN else self._text[span[0] : span[1]]
            return super().__getitem__(group)

        def group(self, *groups: Any) -> Any:
            if not groups:
                return self.__getitem__(0)
            if len(groups) == 1:
                return self.__getitem__(groups[0])
            return tuple(self.__getitem__(g) for g in groups)

        def groups(self, default: Any = None) -> tuple[Any, ...]:
            out = []
            for g in range(1, self._regexp._ngroups + 1):
                item = self.__getitem__(g)
                out.append(default if item is None else item)
            return tuple(out)

        def start(self, group: int = 0) -> int:
            return self.span(group)[0]

        def end(self, group: int = 0) -> int:
            return self.span(group)[1]

        def span(self, group: int = 0) -> tuple[int, int]:
            if not 0 <= group <= self._regexp._ngroups:
                raise IndexError("bad group index")
            return self._spans[group]  # type: ignore[no-any-return]

    class _Regexp(_Base):  # type: ignore[misc,valid-type]
        """A compiled RE2 pattern whose search/match/fullmatch/finditer skip the offset conversions on ASCII text."""

        __slots__ = ("_ngroups",)

        def __init__(self, pattern: Any, options: Any) -> None:
            super().__init__(pattern, options)
            self._ngroups = self._regexp.NumberOfCapturingGroups()

        def _once(self, anchor: Any, text: Any) -> Any:
            encoded = text.encode("ascii")
            spans = self._regexp.Match(anchor, encoded, 0, len(encoded))
            if spans[0] == _NULL_SPAN:
                return None
            return _FastMatch(self, text, 0, len(encoded), spans)

        def search(self, text: Any, pos: int | None = None, endpos: int | None = None) -> Any:
            if pos is None and endpos is None and type(text) is str and text.isascii():
                return self._once(_UNANCHORED, text)
            return super().search(text, pos, endpos)

        def match(self, text: Any, pos: int | None = None, endpos: int | None = None) -> Any:
            if pos is None and endpos is None and type(text) is str and text.isascii():
                return self._once(_ANCHOR_START, text)
            return super().match(text, pos, endpos)

        def fullmatch(self, text: Any, pos: int | None = None, endpos: int | None = None) -> Any:
            if pos is None and endpos is None and type(text) is str and text.isascii():
                return self._once(_ANCHOR_BOTH, text)
            return super().fullmatch(text, pos, endpos)

        def finditer(self, text: Any, pos: int | None = None, endpos: int | None = None) -> Iterator[Any]:
            if pos is None and endpos is None and type(text) is str and text.isascii():
                return self._iter_ascii(text)
            return super().finditer(text, pos, endpos)

        def _iter_ascii(self, text: str) -> Iterator[Any]:
            # The wrapper's own loop, over the ASCII encoding (its byte offsets are the character offsets).
            encoded = text.encode("ascii")
            regexp = self._regexp
            pos, end = 0, len(encoded)
            while True:
                spans = regexp.Match(_UNANCHORED, encoded, pos, end)
                if spans[0] == _NULL_SPAN:
                    break
                yield _FastMatch(self, text, 0, end, spans)  # as the wrapper does for str: the caller's pos
                if pos == end:
                    break
                elif pos == spans[0][1]:
                    pos += 1  # an empty match: step over one character to make progress
                else:
                    pos = spans[0][1]

    @functools.lru_cache(maxsize=512)
    def _compile(pattern: str | bytes, options: Options | None) -> Any:
        return _Regexp(pattern, options if options is not None else Options())

    def compile(pattern: Any, options: Options | None = None) -> Any:
        """Like `re2.compile`; an already compiled pattern is returned as it is."""
        if isinstance(pattern, _Base):
            return pattern
        if options is not None:
            return _Regexp(pattern, options)
        return _compile(pattern, None)

else:  # pragma: no cover
    compile = re2.compile  # type: ignore[assignment]


def search(pattern: Any, text: Any, options: Options | None = None) -> Any:
    return compile(pattern, options).search(text)


def match(pattern: Any, text: Any, options: Options | None = None) -> Any:
    return compile(pattern, options).match(text)


def fullmatch(pattern: Any, text: Any, options: Options | None = None) -> Any:
    return compile(pattern, options).fullmatch(text)


def finditer(pattern: Any, text: Any, options: Options | None = None) -> Iterator[Any]:
    return compile(pattern, options).finditer(text)


def findall(pattern: Any, text: Any, options: Options | None = None) -> list[Any]:
    return compile(pattern, options).findall(text)


def split(pattern: Any, text: Any, maxsplit: int = 0, options: Options | None = None) -> list[Any]:
    return compile(pattern, options).split(text, maxsplit)


def sub(pattern: Any, repl: Any, text: Any, count: int = 0, options: Options | None = None) -> Any:
    return compile(pattern, options).sub(repl, text, count)


def subn(pattern: Any, repl: Any, text: Any, count: int = 0, options: Options | None = None) -> Any:
    return compile(pattern, options).subn(repl, text, count)
