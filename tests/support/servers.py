"""Real servers for tests, on free loopback ports: an ASGI app in a thread, a recording HTTP server, `gitops-health serve`.

Three shapes every adapter test needs, kept here once:

- ``running(app)``: uvicorn serving ``app`` (lifespan and all) in a thread on
  127.0.0.1:<free port>, with an httpx client bound to it.
- ``LoopbackHTTPServer``: the base of the recording fakes (Slack Web API, Bot
  Connector, OpenID metadata): a ThreadingHTTPServer in its own thread.
- ``ServeProcess``: ``gitops-health serve`` as a real subprocess with a clean
  environment, its JSON log lines read as events, waited for until /healthz
  answers, stopped with SIGTERM (and must exit 0).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import httpx

__all__ = ["CLI", "LoopbackHTTPServer", "ServeProcess", "clean_environ", "running"]

CLI = Path(sys.executable).with_name("gitops-health")
CHAT_ENV_PREFIXES = ("GITOPS_HEALTH_", "SLACK_", "TEAMS_")


@contextmanager
def running(app: Any, *, start_timeout: float = 20, stop_timeout: float = 15) -> Iterator[httpx.Client]:
    """Serve ``app`` (lifespan and all) with uvicorn on 127.0.0.1:<free port> until the block ends; yield a client bound to it."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(stop_timeout)
        sock.close()


class LoopbackHTTPServer:
    """A ThreadingHTTPServer on 127.0.0.1:<free port> in its own thread; use as a context manager or start()/stop()."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name=name, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def clean_environ(**values: str) -> dict[str, str]:
    """This process's environment without the developer's GITOPS_HEALTH_*/SLACK_*/TEAMS_* settings, plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CHAT_ENV_PREFIXES)}
    env.update(values)
    return env


class ServeProcess:
    """``gitops-health serve --port 0`` in ``cwd`` with ``env``; its stderr lines are kept, its JSON log records waited for.

    Use as a context manager: entering starts it and waits for ``serve_starting``
    (which names the port); ``wait_healthy()`` polls /healthz; ``stop()`` sends
    SIGTERM and returns the exit code; leaving kills it if it is still running.
    ``command`` replaces the CLI (a script that serves the app its own way).
    """

    def __init__(self, cwd: Path, env: dict[str, str], *args: str, command: list[str] | None = None) -> None:
        self.cwd, self.env = cwd, env
        self.command = command or [str(CLI), "serve", "--host", "127.0.0.1", "--port", "0", *args]
        self.lines: list[str] = []  # every stderr line read so far
        self._queue: queue.Queue[str | None] = queue.Queue()  # None: stderr closed (the process ended)
        self._reader: threading.Thread | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.port: int | None = None

    @property
    def base_url(self) -> str:
        assert self.port is not None, "the server has not said which port it took"
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServeProcess:
        self.proc = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        try:
            self.port = int(self.wait_event("serve_starting")["port"])
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self._queue.put(line)
        self._queue.put(None)

    def records(self) -> list[dict[str, Any]]:
        """The JSON log records among the lines read so far."""
        found = []
        for line in self.lines:
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return found

    def wait_event(self, name: str, timeout: float = 60) -> dict[str, Any]:
        """The next log record whose ``event`` is ``name``; fails with everything the server said if none comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"server exited before {name!r}:\n" + "".join(self.lines))
            self.lines.append(line)
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("event") == name:
                return record
        raise AssertionError(f"no {name!r} from the server within {timeout} s; it said:\n" + "".join(self.lines))

    def wait_healthy(self, http: httpx.Client, timeout: float = 30) -> httpx.Response:
        """Poll /healthz until it answers 200; that answer."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                answer = http.get("/healthz")
                if answer.status_code == 200:
                    return answer
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server never answered /healthz; it said:\n" + "".join(self.lines)
            time.sleep(0.05)

    def finish(self, timeout: float = 60) -> int:
        """Wait for the process to end, read the rest of what it said, and return its exit code."""
        assert self.proc is not None and self._reader is not None
        code = self.proc.wait(timeout)
        self._reader.join(5)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return code

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit code once it has shut down."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.finish(timeout)
