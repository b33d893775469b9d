"""`gitops-health serve --workers N`: N server processes sharing one listening socket, under one supervisor.

One Python process serves deploy requests on one CPU at most (the GIL), so a
machine with more CPUs needs more processes. The supervisor checks and
migrates once (so workers never race a migration), then forks the workers;
each builds its own app, database pool and checkpoint store, and accepts
from the socket the supervisor bound (the kernel hands each connection to
one of them). Nothing a worker knows is needed by another: the database is
the truth for requests, votes and decisions (compare-and-set, one write
transaction each), outbox jobs are claimed by compare-and-set (Postgres
`FOR UPDATE SKIP LOCKED`; SQLite's single writer), and an approval thread is
resumed under a lock that holds across processes (graphs/approval.py).

/metrics stays truthful: with more than one worker every process writes its
counters to files in PROMETHEUS_MULTIPROC_DIR (a fresh private directory
unless the operator set one) and whichever worker answers a scrape reports
the SUM over all workers (prometheus_client's multiprocess mode); the outbox
gauges are read from the database at scrape time, so they are whole anyway.

SIGTERM or SIGINT to the supervisor is passed to every worker once (they are
in their own process group, so a terminal's Ctrl-C does not reach them
twice); each finishes its in-flight requests and exits, and the supervisor
exits 0 when all exited 0. A worker that dies on its own stops the others
and the supervisor exits 1: an orchestrator restarts the whole server rather
than running it short-handed. Workers die with the supervisor (SIGKILL
included: the kernel sends them SIGTERM).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sys
import tempfile
from types import FrameType
from typing import Any

__all__ = ["METRICS_DIR_ENV", "supervise"]

METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_PR_SET_PDEATHSIG = 1


def supervise(settings: Any, config: Any, sock: socket.socket, log: Any, workers: int) -> int:
    from assistant.commands.serve import _prepare, _start

    own_dir: str | None = None
    if not os.environ.get(METRICS_DIR_ENV):
        own_dir = tempfile.mkdtemp(prefix="gitops-health-metrics-")
        os.environ[METRICS_DIR_ENV] = own_dir
    if "prometheus_client" in sys.modules:  # its value class was chosen at import, before the variable was set
        log.warning("metrics_per_process", detail="prometheus_client was imported before the workers' metrics directory was set")
    try:
        prepared = _prepare(settings, migrate=True)  # fail fast, and migrate once for every worker
        if isinstance(prepared, int):
            return prepared
        prepared[2].dispose()  # the workers open their own connections; none may be shared across fork()

        children: dict[int, int] = {}
        stopping = False
        failed = False

        def forward(sig: int) -> None:
            for pid in list(children):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

        def on_signal(sig: int, frame: FrameType | None) -> None:
            nonlocal stopping
            if not stopping:
                stopping = True
                forward(signal.SIGTERM)

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            supervisor = os.getpid()
            for index in range(workers):
                pid = os.fork()
                if pid == 0:  # the worker
                    code = 1
                    try:
                        for sig in previous:
                            signal.signal(sig, signal.SIG_DFL)
                        os.setpgid(0, 0)
                        _die_with_parent(supervisor)
                        code = _start(settings, config, sock, log, migrate=False)
                    finally:
                        sys.stdout.flush()
                        sys.stderr.flush()
                        os._exit(code)
                children[pid] = index
            log.info("workers_started", workers=workers, pids=sorted(children), supervisor=os.getpid())
            while children:
                try:
                    pid, status = os.wait()
                except ChildProcessError:
                    break
                code = os.waitstatus_to_exitcode(status)
                children.pop(pid, None)
                if code != 0 or not stopping:
                    failed = True
                    if not stopping:
                        log.error("worker_exited", pid=pid, code=code, detail="stopping the other workers; restart the server")
                        stopping = True
                        forward(signal.SIGTERM)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info("workers_stopped", workers=workers, failed=failed)
        return 1 if failed else 0
    finally:
        if own_dir is not None:
            os.environ.pop(METRICS_DIR_ENV, None)
            shutil.rmtree(own_dir, ignore_errors=True)


def _die_with_parent(supervisor: int) -> None:
    """Linux: SIGTERM this worker when the supervisor dies (even by SIGKILL), so no worker outlives it."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != supervisor:  # the supervisor died before prctl took effect
        os._exit(1)
