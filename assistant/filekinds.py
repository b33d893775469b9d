"""What a changed file is (source, test, docs, CI, build, chore), judged by its path.

The commit writer chooses a commit type from it and the evidence generator
decides whether a commit changed tests; both must agree, so the rules live once.
"""

from __future__ import annotations

import functools
from typing import Literal

FileKind = Literal["code", "test", "docs", "ci", "build", "chore"]

_DOC_EXT = (".md", ".rst", ".txt", ".adoc")
_DOC_NAMES = {"readme", "changelog", "changes", "license", "contributing", "authors", "notice", "history"}
_BUILD_NAMES = {
    "pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "package.json", "package-lock.json",
    "yarn.lock", "pnpm-lock.yaml", "poetry.lock", "uv.lock", "go.mod", "go.sum", "pom.xml", "build.gradle",
    "build.gradle.kts", "settings.gradle", "makefile", "dockerfile", "cargo.toml", "cargo.lock", "gemfile",
    "gemfile.lock", "tsconfig.json", "webpack.config.js", "vite.config.ts", "manifest.in",
}
_CHORE_NAMES = {".gitignore", ".gitattributes", ".editorconfig", ".dockerignore", ".pre-commit-config.yaml", "codeowners"}
_ASSET_EXT = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".webp", ".woff", ".woff2", ".ttf", ".otf", ".eot", ".pdf")
_CI_NAMES = {".gitlab-ci.yml", "jenkinsfile", "azure-pipelines.yml", ".travis.yml", "bitbucket-pipelines.yml"}
_TEST_SUFFIXES = (
    "_test.py", "_test.go", ".test.ts", ".test.js", ".spec.ts", ".spec.js", ".test.tsx", ".spec.tsx", ".test.jsx",
    "test.java", "tests.java", "tests.cs", "test.cs", "_spec.rb", "_test.rego", "test.kt",
)


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1].lower()


def is_test(path: str) -> bool:
    p = "/" + path.lower()
    name = _name(path)
    return (
        any(d in p for d in ("/tests/", "/test/", "/__tests__/", "/spec/", "/testing/"))
        or name.startswith("test_")
        or name.endswith(_TEST_SUFFIXES)
        or name == "conftest.py"
    )


def is_docs(path: str) -> bool:
    p = path.lower()
    name = _name(path)
    return p.startswith(("docs/", "doc/")) or "/docs/" in p or name.endswith(_DOC_EXT) or name.split(".", 1)[0] in _DOC_NAMES


def is_ci(path: str) -> bool:
    p = path.lower()
    return p.startswith((".github/workflows/", ".circleci/", ".ci/", ".buildkite/", ".gitlab/")) or _name(path) in _CI_NAMES


def is_build(path: str) -> bool:
    name = _name(path)
    return name in _BUILD_NAMES or name.startswith(("requirements", "dockerfile")) or name.endswith((".gradle", ".csproj", ".sln"))


def is_chore(path: str) -> bool:
    """Repository housekeeping and static assets (images, fonts)."""
    name = _name(path)
    return name in _CHORE_NAMES or name.endswith(_ASSET_EXT) or (path.lower().startswith(".github/") and not is_ci(path))


@functools.lru_cache(maxsize=8192)
def kind_of(path: str) -> FileKind:
    """The commit type a file alone would suggest; "code" for source (cached: the commit writer, the
    evidence matrix and the clinical scan ask about the same paths again and again)."""
    if is_ci(path):
        return "ci"
    if is_test(path):
        return "test"
    if is_docs(path):
        return "docs"
    if is_build(path):
        return "build"
    if is_chore(path):
        return "chore"
    return "code"
