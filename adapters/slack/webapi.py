"""A small keep-alive HTTP/1.1 client for the two Web API calls a card makes (chat.postMessage, chat.update).

Why not aiohttp (or slack_sdk over it): a card post or update is one small
JSON POST and one small JSON answer, and aiohttp's general machinery (request
and response objects, tracing hooks, payload registry, cookie jar, timeouts
as tasks) cost about 1 ms of CPU per call -- a quarter of a card, at a few
hundred cards a second on two shared cores. Here a call is one write on a
pooled connection and one framed read. Everything else (Bolt, ephemeral
messages, modals, Socket Mode) still goes through slack_sdk.

Connections are kept per client, at most ``max_connections`` at a time. A
pooled connection the server has closed while idle (Slack closes idle
keep-alive connections) is dropped before anything is written to it. If a
pooled connection still gives no answer at all, the request may or may not
have reached Slack: an idempotent call (``chat.update``: the same text again)
is made again on a fresh connection, but any other call is not -- a second
``chat.postMessage`` would be a second card -- and fails with
:class:`WebApiError` instead (the card handler's retry then looks for the card
before posting; see adapters/slack/notifier.py). Answers are
framed by Content-Length, chunked transfer coding, or the end of the
connection. Failures surface as :class:`WebApiError` (status 0: no answer).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["WebApiClient", "WebApiError", "WebApiAnswer"]

MAX_ANSWER_BYTES = 4 * 1024 * 1024
# Calls whose repetition changes nothing: the only ones sent again when a pooled connection gave no answer.
IDEMPOTENT_METHODS = frozenset({"chat.update"})


class WebApiError(Exception):
    """No usable answer: the connection failed, timed out, or the answer was not HTTP."""


@dataclass(frozen=True, slots=True)
class WebApiAnswer:
    status: int
    headers: dict[str, str]  # lower-cased names
    data: Any  # the decoded JSON body ({} when it was not JSON)


class _Stale(Exception):
    """A pooled connection gave no answer at all: closed by the server while idle."""


class WebApiClient:
    """POST JSON to ``<base_url><method>`` with a bot token; one instance per event loop."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        user_agent: str,
        timeout_s: float = 10.0,
        max_connections: int = 8,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context``: for https, the certificates to trust (default: the system's, with hostname checks)."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the Slack Web API URL {base_url!r} is not an http(s) URL")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        self.path = parts.path if parts.path.endswith("/") else parts.path + "/"
        host_header = self.host if parts.port is None else f"{self.host}:{parts.port}"
        self._head = (
            f"Host: {host_header}\r\nAuthorization: Bearer {token}\r\nUser-Agent: {user_agent}\r\n"
            "Content-Type: application/json;charset=utf-8\r\nAccept: application/json\r\n"
        ).encode()
        self.timeout_s = timeout_s
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._slots = asyncio.Semaphore(max_connections)
        self._ssl: ssl.SSLContext | None = (ssl_context or ssl.create_default_context()) if self.tls else None
        self._closed = False

    async def call(self, method: str, args: dict[str, Any]) -> WebApiAnswer:
        body = json.dumps(args, separators=(",", ":"), ensure_ascii=False).encode()
        request = b"POST %s%s HTTP/1.1\r\n%sContent-Length: %d\r\n\r\n%s" % (self.path.encode(), method.encode(), self._head, len(body), body)
        async with self._slots:
            try:
                async with asyncio.timeout(self.timeout_s):
                    while self._idle:
                        conn = self._idle.pop()
                        if conn[0].at_eof() or conn[1].is_closing():
                            conn[1].close()  # closed by the server while idle: nothing was sent on it
                            continue
                        try:
                            return await self._exchange(conn, request)
                        except _Stale:
                            if method not in IDEMPOTENT_METHODS:
                                raise WebApiError(
                                    f"{method}: the connection closed without an answer after the request was sent; it may have "
                                    "reached Slack, so it is not sent again"
                                ) from None
                            continue  # nothing was answered and sending it again changes nothing: try the next
                    try:
                        return await self._exchange(await self._connect(), request)
                    except _Stale:
                        raise WebApiError("the server closed the connection without answering") from None
            except TimeoutError:
                raise WebApiError(f"no answer within {self.timeout_s:g} s") from None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                raise WebApiError(f"{type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()
        for _, writer in idle:
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port, ssl=self._ssl, server_hostname=self.host if self.tls else None)

    async def _exchange(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes) -> WebApiAnswer:
        reader, writer = conn
        keep = False
        try:
            writer.write(request)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                if not exc.partial:
                    raise _Stale() from None
                raise
            except ConnectionResetError:
                raise _Stale() from None
            lines = head.decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            if not version.startswith("HTTP/1."):
                raise ValueError(f"not an HTTP answer: {lines[0][:80]!r}")
            status = int(rest[:3])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            raw = await _body(reader, headers)
            keep = headers.get("connection", "").lower() != "close" and version == "HTTP/1.1"
        finally:
            if keep and not self._closed:
                self._idle.append(conn)
            else:
                writer.close()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return WebApiAnswer(status, headers, data)


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        size = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            n = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if n == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            size += n
            if size > MAX_ANSWER_BYTES:
                raise ValueError("answer too large")
            parts.append(await reader.readexactly(n))
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is not None:
        n = int(length)
        if n > MAX_ANSWER_BYTES:
            raise ValueError("answer too large")
        return await reader.readexactly(n)
    headers["connection"] = "close"  # framed by the end of the connection: it cannot be reused
    data = await reader.read(MAX_ANSWER_BYTES + 1)
    while True:
        more = await reader.read(MAX_ANSWER_BYTES + 1)
        if not more:
            break
        data += more
        if len(data) > MAX_ANSWER_BYTES:
            raise ValueError("answer too large")
    return data
