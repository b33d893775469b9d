"""A loopback CI endpoint for callbacks: records every request and answers from a script.

The script is a list of answers for the first calls (a status code, or
``("hang", seconds)`` to hold the connection open, or ``(status,
{"Retry-After": "2"})``); every call after the script gets 200. Tests use it
to make the first N callbacks fail, to time out, or to hang while the server
that sends them is killed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.servers import LoopbackHTTPServer

__all__ = ["CiSink", "Received"]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int | None  # None: the call was held open (hang) and never answered


@dataclass
class CiSink(LoopbackHTTPServer):
    script: list[Any] = field(default_factory=list)
    calls: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._release = threading.Event()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                answer = sink._next_answer()
                status, headers = 200, {}
                if isinstance(answer, tuple) and answer[0] == "hang":
                    sink._record(self, body, None)
                    sink._release.wait(answer[1])
                    self.close_connection = True
                    return
                if isinstance(answer, tuple):
                    status, headers = answer
                elif answer is not None:
                    status = int(answer)
                sink._record(self, body, status)
                payload = b'{"ok": true}' if 200 <= status < 300 else b'{"error": "scripted failure"}'
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                return

        LoopbackHTTPServer.__init__(self, Handler, "ci-sink")

    @property
    def url(self) -> str:
        return f"{self.base}/hooks/gitops"

    def _next_answer(self) -> Any:
        with self._lock:
            index = len(self.calls)
            return self.script[index] if index < len(self.script) else None

    def _record(self, handler: BaseHTTPRequestHandler, body: bytes, status: int | None) -> None:
        with self._arrived:
            self.calls.append(Received(handler.path, {k: v for k, v in handler.headers.items()}, body, time.time(), status))
            self._arrived.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until at least ``count`` calls arrived; the calls so far."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.calls) >= count, timeout):
                raise AssertionError(f"CI sink got {len(self.calls)} calls within {timeout} s, expected {count}")
            return list(self.calls)

    def delivered(self) -> list[Received]:
        with self._lock:
            return [c for c in self.calls if c.answered is not None and 200 <= c.answered < 300]

    def __exit__(self, *exc: object) -> None:
        self._release.set()  # let held ("hang") calls end before the server goes
        self.stop()
