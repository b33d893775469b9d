"""`gitops-health serve`: check everything the server needs, then serve until SIGTERM.

Start-up fails fast and says why (bad config, broken policy, database that
cannot be migrated, port in use) instead of serving requests it would fail;
exit 2 means "fix your configuration", 1 "the environment is not there".
On SIGTERM/SIGINT uvicorn stops accepting, lets in-flight requests finish
(up to GRACEFUL_TIMEOUT_S), then we dispose of the database pool and exit 0.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import sys
from types import FrameType
from typing import Any

__all__ = ["GRACEFUL_TIMEOUT_S", "run"]

GRACEFUL_TIMEOUT_S = 30
# How long a busy thread (a review, a vote) may hold the GIL while the event loop waits for it.
# Python's 5 ms default means every socket call the loop makes (each releases the GIL) can cost
# it 5 ms behind a worker thread: an ack that needs a handful of them then takes tens of ms.
SWITCH_INTERVAL_S = 0.0005
LOG_LEVEL_ENV = "GITOPS_HEALTH_LOG_LEVEL"
MAX_WORKERS = 64


def _error(line: str) -> None:
    print(f"error: {line}", file=sys.stderr, flush=True)


def _bind(host: str, port: int) -> socket.socket:
    """Bind before anything else listens, so "port in use" is one clear line, not a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def run(host: str, port: int, workers: int = 1) -> int:
    """Serve until SIGTERM; ``workers`` > 1 forks that many server processes sharing the one listening socket."""
    from assistant.logging import configure_logging, get_logger

    try:
        configure_logging(os.environ.get(LOG_LEVEL_ENV, "INFO"), json=True)
    except ValueError as exc:
        _error(str(exc))
        return 2
    log = get_logger("gitops_health.serve")

    if not 0 <= port <= 65535:
        _error(f"--port {port} is not a TCP port; use a number from 1 to 65535 (0 picks a free one)")
        return 2
    if not 1 <= workers <= MAX_WORKERS:
        _error(f"--workers {workers} is not a number of server processes; use 1 to {MAX_WORKERS} (about one per CPU)")
        return 2

    from assistant.config import ConfigError, load_config, load_settings

    try:
        settings = load_settings()
        config = load_config(settings)
    except ConfigError as exc:
        for problem in exc.problems:
            _error(f"{exc.source}: {problem}")
        return 2

    # The port next: the cheapest thing to check and the commonest to be wrong.
    try:
        sock = _bind(host, port)
    except OSError as exc:
        _error(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; fix: pick another "
            "--port or stop the process using it"
        )
        return 1
    try:
        if workers == 1:
            return _start(settings, config, sock, log)
        from assistant.commands import serve_workers

        return serve_workers.supervise(settings, config, sock, log, workers)
    finally:
        sock.close()


def _start(settings: Any, config: Any, sock: socket.socket, log: Any, *, migrate: bool = True) -> int:
    """Everything after the port is ours: policies, database, app, then serve.

    ``migrate=False``: a worker process whose supervisor migrated the database already.
    """
    prepared = _prepare(settings, migrate=migrate)
    if isinstance(prepared, int):
        return prepared
    engine, outbox_options, db = prepared
    try:
        from adapters.http.app import create_app

        app = create_app(settings, config, db, policy_engine=engine)
        from adapters.http.background import install_outbox

        install_outbox(app, options=outbox_options)  # callbacks, chat cards, expiry: started/stopped with the server
        code = _serve(app, sock, log)
    finally:
        db.dispose()
    if code == 0:
        log.info("shutdown", detail="in-flight requests finished; database connections closed")
    return code


def _prepare(settings: Any, *, migrate: bool = True) -> tuple[Any, Any, Any] | int:
    """Policies, outbox options and the migrated database, or the exit code saying what is wrong."""
    from assistant.logging import scrub_secrets

    # Policies before the database: a broken policy should not migrate anything.
    from assistant.policy import PolicyEngine, PolicyError

    try:
        engine = PolicyEngine.load()
    except PolicyError as exc:
        _error(f"policy {exc}; fix the policy and start again")
        return 2

    from assistant.outbox_worker import WorkerOptions

    try:
        outbox_options = WorkerOptions.from_env()
    except ValueError as exc:
        _error(f"{exc}; fix the variable or unset it for the default")
        return 2

    from assistant.config import data_dir
    from assistant.storage import Database, DatabaseUnavailable

    try:
        if settings.database_url is None:
            data_dir(settings)  # created owner-only before SQLite creates files in it
        db = Database(settings.sqlalchemy_url)
    except OSError as exc:
        _error(
            f"GITOPS_HEALTH_DATA_DIR: cannot create {settings.data_dir}: {exc.strerror or exc}; "
            "fix: point it at a writable directory"
        )
        return 2
    except DatabaseUnavailable as exc:
        _error(f"GITOPS_HEALTH_DATABASE_URL: {exc}")
        return 2
    if migrate:
        try:
            db.upgrade()
        except Exception as exc:  # noqa: BLE001 - any driver/migration failure stops start-up
            db.dispose()
            detail = scrub_secrets(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
            _error(
                f"cannot open and migrate the database at {db.safe_url}: {type(exc).__name__}: "
                f"{detail}; fix: check GITOPS_HEALTH_DATABASE_URL (or GITOPS_HEALTH_DATA_DIR) "
                "and that the database is up and writable"
            )
            return 1
    return engine, outbox_options, db


def _serve(app: Any, sock: socket.socket, log: Any) -> int:
    import uvicorn

    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,  # our middleware writes one line per request, with the route template
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_TIMEOUT_S,
        lifespan="on",
        # loop/http "auto": uvloop and httptools (dependencies) when importable -- the HTTP stack's
        # own cost per request is a fraction of asyncio + h11's -- else the pure-Python ones.
    )
    server = uvicorn.Server(config)
    stop_signals: list[str] = []

    def _remember(sig: int, frame: FrameType | None) -> None:
        # uvicorn restores the previous handler after its graceful shutdown
        # and re-raises the signal; this one makes that a no-op so a SIGTERM
        # ends in a clean exit 0 instead of death by signal.
        stop_signals.append(signal.Signals(sig).name)

    previous = {sig: signal.signal(sig, _remember) for sig in (signal.SIGTERM, signal.SIGINT)}
    host, port = sock.getsockname()[:2]
    log.info("serve_starting", host=host, port=port, pid=os.getpid())
    # Start-up builds a large, permanent object graph (FastAPI, pydantic
    # schemas, graphs, policies). Freezing it keeps it out of every GC pass
    # while serving, and out of the full collection at interpreter exit, which
    # otherwise takes seconds after a SIGTERM.
    gc.freeze()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        log.error("serve_failed", detail="the server did not start; see the lines above")
        return 1
    log.info("server_stopped", signal=",".join(stop_signals) or None)
    gc.freeze()  # what serving allocated is about to be torn down anyway
    return 0
