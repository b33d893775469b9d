"""Tree-sitter parsers, one per language, loaded on first use.

Grammar wheels are imported lazily so `gitops-health review` on a Python-only
diff never loads the Java or C# grammar; a language without a grammar (or a
grammar that fails to load) simply has no syntax tree, and structural rules
fall back to the hunk's lines.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tree_sitter import Parser, Tree

# language_for() name -> (module, function returning the language pointer)
_GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "java": ("tree_sitter_java", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "csharp": ("tree_sitter_c_sharp", "language"),
    "yaml": ("tree_sitter_yaml", "language"),
    "terraform": ("tree_sitter_hcl", "language"),
    "sql": ("tree_sitter_sql", "language"),
}


@cache
def parser_for(language: str | None) -> Parser | None:
    """A ready parser for `language`, or None when there is no grammar for it."""
    if language not in _GRAMMARS:
        return None
    module_name, func = _GRAMMARS[language]
    try:
        from tree_sitter import Language, Parser

        module = importlib.import_module(module_name)
        return Parser(Language(getattr(module, func)()))
    except (ImportError, AttributeError, ValueError):
        return None


def parse(language: str | None, text: str) -> Tree | None:
    parser = parser_for(language)
    if parser is None:
        return None
    return parser.parse(text.encode("utf-8"))
