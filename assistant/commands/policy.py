"""`gitops-health policy test [DIR]`: run the Rego tests of a policy directory, like `opa test`.

Prints one PASS/FAIL line per `test_*` rule and a summary; exit 0 when every
test passed, 1 when one failed, none was found, or a file does not parse
(named with its line), 2 when the directory does not exist.
"""

from __future__ import annotations

import sys
from pathlib import Path


def test(directory: str | None) -> int:
    from assistant.policy import PolicyError, default_directory, run_tests

    root = Path(directory) if directory is not None else default_directory()
    if not root.is_dir():
        print(f"error: {root} is not a directory; pass a directory of .rego files", file=sys.stderr)
        return 2
    try:
        results = run_tests(root)
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not results:
        print(f"error: no tests in {root}: write test_* rules in files named *_test.rego", file=sys.stderr)
        return 1
    lines: list[str] = []
    for t in results:
        shown = _relative(t.file, root)
        if t.passed:
            lines.append(f"PASS  {t.package}.{t.name}  ({shown})")
        else:
            lines.append(f"FAIL  {t.package}.{t.name}  ({shown}): {t.detail}")
    failed = sum(1 for t in results if not t.passed)
    passed = len(results) - failed
    lines.append("")
    lines.append(f"{passed} passed, {failed} failed, {len(results)} total")
    sys.stdout.write("\n".join(lines) + "\n")
    return 1 if failed else 0


def _relative(file: str, root: Path) -> str:
    try:
        return str(Path(file).relative_to(root))
    except ValueError:
        return file
