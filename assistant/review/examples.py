"""Turn a rule's `examples`/`counterexamples` into diffs the engine can review.

An example is either a whole unified diff (starting with `diff --git` or
`--- `) or `path::text`: the text's lines become the added lines of a new file
at `path` (so the file name decides the language and whether it is a test).
"""

from __future__ import annotations

from assistant.diffs import FileDiff, parse_diff


class ExampleError(ValueError):
    """An example that is neither a diff nor `path::text`."""


def example_diff(example: str) -> str:
    if example.startswith(("diff --git ", "--- ")):
        return example
    path, sep, text = example.partition("::")
    if not sep or not path or "\n" in path:
        raise ExampleError(
            f"example {example[:60]!r} is neither a unified diff nor 'path::text'; write it as 'src/app.py::<code>'"
        )
    lines = text.split("\n")
    body = "".join(f"+{ln}\n" for ln in lines)
    return f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n{body}"


def example_files(example: str) -> list[FileDiff]:
    return parse_diff(example_diff(example))
