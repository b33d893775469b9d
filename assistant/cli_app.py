"""The `gitops-health` Typer application: every command, its options and its help.

Every command imports what it needs inside its own body, so nothing here
imports LangGraph, SQLAlchemy, FastAPI or a chat SDK at module level; the
entry point (`assistant.cli.main`) runs `review` without even this module.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

app = typer.Typer(
    name="gitops-health",
    help="Chat-ops assistant for regulated healthcare software teams: review, approvals, audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
policy_app = typer.Typer(help="Rego policies.", no_args_is_help=True)
hook_app = typer.Typer(help="Git hooks.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(policy_app, name="policy")
app.add_typer(hook_app, name="hook")


def _exit(code: int) -> None:
    raise typer.Exit(code)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 3000,
    workers: Annotated[int, typer.Option(help="Server processes sharing the port (default 1: one process hosts everything).")] = 1,
) -> None:
    """Run the server: Slack, Teams, the /api webhooks, health and metrics."""
    from assistant.commands import serve as command

    _exit(command.run(host, port, workers))


@app.command()
def review(
    diff: Annotated[str, typer.Option("--diff", help="Unified diff file, or - for standard input.")] = "-",
    format: Annotated[str, typer.Option("--format", help="json, markdown or text.")] = "text",
) -> None:
    """Review a unified diff: findings, clinical safety, risk, policy, commit message, evidence."""
    if format not in ("json", "markdown", "text"):
        typer.echo(f"error: --format {format!r} is not one of json, markdown, text", err=True)
        _exit(2)
    from assistant.commands import review as command

    _exit(command.run(diff, format))


@app.command("commit-msg")
def commit_msg(
    staged: Annotated[bool, typer.Option("--staged", help="Describe the staged diff instead of the working tree.")] = False,
) -> None:
    """Print a conventional commit message with compliance trailers for the current change."""
    from assistant.commands import commit as command

    _exit(command.commit_msg(staged))


@hook_app.command("install")
def hook_install(
    force: Annotated[bool, typer.Option("--force", help="Replace a prepare-commit-msg hook that is not ours.")] = False,
) -> None:
    """Install gitops-health as this repository's prepare-commit-msg hook."""
    from assistant.commands import commit as command

    _exit(command.hook_install(force))


@app.command()
def evidence(
    rev: Annotated[str, typer.Option("--rev", help="Commit range, e.g. v1.2.0..HEAD.")],
    out: Annotated[Optional[str], typer.Option("--out", help="Output directory (default ./evidence).")] = None,
) -> None:
    """Write an evidence bundle (evidence.json, evidence.md, SHA256SUMS) for a commit range."""
    from assistant.commands import evidence as command

    _exit(command.run(rev, out))


@policy_app.command("test")
def policy_test(
    directory: Annotated[Optional[str], typer.Argument(help="Directory of .rego files (default: the bundled policies).")] = None,
) -> None:
    """Run the Rego tests (test_* rules in *_test.rego) of a policy directory."""
    from assistant.commands import policy as command

    _exit(command.test(directory))


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending database migration."""
    from assistant.commands import db as command

    _exit(command.upgrade())


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit log's hash chain; exit 1 naming the first bad record."""
    from assistant.commands import audit as command

    _exit(command.verify())


@audit_app.command("export")
def audit_export(
    format: Annotated[str, typer.Option("--format", help="Only jsonl for now.")] = "jsonl",
    out: Annotated[Optional[str], typer.Option("--out", help="File to write (default: standard output).")] = None,
) -> None:
    """Export the audit log for auditors, one JSON record per line, with its hashes."""
    from assistant.commands import audit as command

    _exit(command.export(format, out))
