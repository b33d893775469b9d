"""The `gitops-health` command line: the entry point.

`review` on a commit hook or in a pipeline must start in a fraction of a
second, and Typer (which builds pydantic adapters for each option) costs
tens of milliseconds before a command runs. So `main` runs a well-formed
`review --diff X --format Y` itself, with the same meaning Typer gives it,
and hands everything else (help, errors, every other command) to the Typer
app in `assistant.cli_app`. Each command imports what it needs inside its
own body: nothing here imports LangGraph, SQLAlchemy, FastAPI or a chat SDK.
"""

from __future__ import annotations

import sys
from typing import Any

_REVIEW_OPTIONS = ("--diff", "--format")
_REVIEW_FORMATS = ("json", "markdown", "text")


def review_arguments(args: list[str]) -> tuple[str, str] | None:
    """(diff, format) when `args` is `review` with only well-formed --diff/--format options, else None.

    None means "let Typer decide": anything unusual (help, an unknown or
    incomplete option, a value that looks like an option, a format Typer
    would refuse) keeps Typer's exact messages and exit codes. As with
    Typer, an option given twice takes its last value.
    """
    if not args or args[0] != "review":
        return None
    values = {"--diff": "-", "--format": "text"}
    i = 1
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name not in _REVIEW_OPTIONS:
            return None
        if not eq:
            if i + 1 >= len(args):
                return None
            value = args[i + 1]
            if value.startswith("-") and value != "-":
                return None
            i += 1
        values[name] = value
        i += 1
    if values["--format"] not in _REVIEW_FORMATS:
        return None
    return values["--diff"], values["--format"]


def _review(diff: str, fmt: str) -> int:
    import gc

    # A short-lived process: collecting garbage while ~100 modules import finds
    # none and costs ~15% of start-up. Collection resumes for the review itself,
    # and freeze() keeps it from walking the imported modules' objects again.
    gc.disable()
    try:
        from assistant.commands import review as command

        command.preload()
    finally:
        gc.freeze()
        gc.enable()
    try:
        return command.run(diff, fmt)
    finally:
        # Frozen objects are finalised only after their modules are torn down at exit, where regopy's
        # __del__ no longer finds its globals and prints a traceback: give them back first.
        gc.unfreeze()


def main() -> None:
    try:
        review = review_arguments(sys.argv[1:])
        if review is None:
            from assistant.cli_app import app

            app()
        else:
            _run_like_typer(_review, *review)
    except KeyboardInterrupt:
        sys.exit(130)


def _run_like_typer(command: Any, *args: Any) -> None:
    """Run a command and exit as Typer's standalone mode would (status, EOF, broken pipe)."""
    import errno

    try:
        code = command(*args)
    except EOFError:
        print(file=sys.stderr)
        print("Aborted!", file=sys.stderr)
        sys.exit(1)
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        from typer._click.utils import PacifyFlushWrapper

        sys.stdout = PacifyFlushWrapper(sys.stdout)  # type: ignore[assignment]
        sys.stderr = PacifyFlushWrapper(sys.stderr)  # type: ignore[assignment]
        sys.exit(1)
    sys.exit(code)


def __getattr__(name: str) -> Any:
    """`assistant.cli.app` and the command functions, as before they moved to `assistant.cli_app`."""
    if name.startswith("__"):
        raise AttributeError(name)
    from assistant import cli_app

    try:
        return getattr(cli_app, name)
    except AttributeError:
        raise AttributeError(f"module 'assistant.cli' has no attribute {name!r}") from None


if __name__ == "__main__":
    main()
