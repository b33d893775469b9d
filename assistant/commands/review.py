"""`gitops-health review --diff PATH|- [--format json|markdown|text]`.

The whole result is rendered before anything is written, so malformed input
(exit 2, message on stderr naming the line) never leaves half a report on
stdout. Exit 0 whatever the review finds: the decision is in the output, and
a pipeline gates on it, not on our exit status.
"""

from __future__ import annotations

import sys
from pathlib import Path


def preload() -> None:
    """Import what `run` needs and load the bundled policies, ahead of it (the entry point does this with
    garbage collection paused). A policy that fails to load is left for `run` to report."""
    import assistant.llm  # noqa: F401
    import assistant.render  # noqa: F401
    import assistant.review.rules  # noqa: F401  (the engine imports them on its first file)
    import graphs.review  # noqa: F401
    from assistant.policy import PolicyError, default_engine

    try:
        default_engine()
    except PolicyError:
        pass


def run(diff: str, fmt: str) -> int:
    from assistant.render import FORMATS

    if fmt not in FORMATS:
        print(f"error: --format {fmt!r} is not one of {', '.join(FORMATS)}", file=sys.stderr)
        return 2
    if diff == "-":
        source: object = sys.stdin.buffer
    else:
        path = Path(diff)
        if not path.exists():
            print(f"error: diff file {diff} does not exist; pass the path of a unified diff, or - to read stdin", file=sys.stderr)
            return 2
        if path.is_dir():
            print(f"error: {diff} is a directory; pass the path of a unified diff file, or - to read stdin", file=sys.stderr)
            return 2
        source = path

    from assistant.llm import LLMConfigError, chat_model_from_env

    try:
        llm = chat_model_from_env()
    except LLMConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from assistant.diffs import DiffError
    from assistant.policy import PolicyError
    from assistant.render import render
    from graphs.review import run_review

    try:
        # The same workflow as the server's LangGraph graph, run without importing LangGraph (0.5-1 s of start-up).
        # A large diff file is reviewed on two cores when there are two (graphs.review._parse_in_two).
        result = run_review(source, llm=llm, runner="steps", processes=min(2, _cores()))  # type: ignore[arg-type]
    except DiffError as exc:
        where = "standard input" if diff == "-" else diff
        print(f"error: {where}: line {exc.line}: {exc.reason}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot read {diff}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except PolicyError as exc:
        print(f"error: policy: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(render(result, fmt))
    sys.stdout.flush()
    return 0


def _cores() -> int:
    """The CPUs this process may run on."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
