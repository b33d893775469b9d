"""A real loopback HTTP server that speaks the part of Slack's Web API we use, and records every call.

Point slack_sdk / Bolt at it with ``SLACK_API_URL=<server.url>`` (it ends in
``/api/`` like Slack's own). It answers the way Slack does: ``{"ok": true, ...}``
on HTTP 200, ``{"ok": false, "error": "<code>"}`` for a bad call (missing
channel, unknown message, bad token), and it keeps the messages it was sent so
a test can read the card as it stands after every ``chat.update``. Failures can
be scheduled per method (``fail("chat.update", times=2, status=500)``) to
exercise retries. ``response_url`` posts (slash commands, interactivity) are
accepted at ``<server.base>/response/<anything>`` and recorded as method
``response_url``.

Thread-safe: the server runs in its own thread; ``wait_for`` blocks the test
until the expected calls have arrived (the app works after its ack, so calls
come later than the HTTP answer to the click).

Besides the server, this module builds real v0-signed Slack requests
(``signed_headers``) and the payload shapes Slack sends (``block_action``,
``view_submission``, ``slash_command``) for tests and bench scripts.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from tests.support.servers import LoopbackHTTPServer

__all__ = [
    "ApiCall",
    "SlackApiServer",
    "block_action",
    "running_slack_api",
    "signed_headers",
    "slash_command",
    "view_submission",
]

BOT_USER_ID = "U0GITOPSBOT"
TEAM_ID = "T0GITOPS"

# Arguments Slack sends JSON-encoded inside form posts; decoded so tests compare structures.
_JSON_ARGS = ("blocks", "attachments", "view", "metadata")


@dataclass(frozen=True)
class ApiCall:
    method: str  # "chat.postMessage", ... or "response_url"
    args: dict[str, Any]
    token: str | None
    path: str
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Failure:
    times: int
    status: int
    error: str | None
    retry_after: int | None


class SlackApiServer(LoopbackHTTPServer):
    """The loopback Web API; use as a context manager or call start()/stop()."""

    def __init__(self, *, socket_mode_url: str | None = None) -> None:
        self.calls: list[ApiCall] = []
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self.socket_mode_url = socket_mode_url
        self._failures: dict[str, list[_Failure]] = {}
        self._holds: dict[str, threading.Event] = {}
        # Message timestamps as Slack makes them (unix seconds), one second apart so they stay unique.
        self._ts = itertools.count(int(time.time()))
        self._views = itertools.count(1)
        self._cond = threading.Condition()
        super().__init__(_handler_for(self), "slack-api")

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """The Web API base URL: set SLACK_API_URL to this."""
        return f"{self.base}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.base}/response/{name}"

    # ------------------------------------------------------------------ test controls

    def fail(self, method: str, *, times: int = 1, status: int = 200, error: str | None = "internal_error", retry_after: int | None = None) -> None:
        """Make the next ``times`` calls of ``method`` fail: an HTTP ``status`` (429 with Retry-After, 5xx) or ``ok: false`` with ``error``."""
        with self._cond:
            self._failures.setdefault(method, []).append(_Failure(times, status, error, retry_after))

    def hold(self, method: str) -> threading.Event:
        """Keep answers to ``method`` waiting until the returned event is set (the call is recorded at once)."""
        gate = threading.Event()
        with self._cond:
            self._holds[method] = gate
        return gate

    def calls_to(self, method: str) -> list[ApiCall]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[ApiCall]:
        """Block until at least ``count`` calls of ``method`` have arrived; return them all."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self.calls if c.method == method]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = ", ".join(c.method for c in self.calls) or "nothing"
                    raise AssertionError(f"expected {count} {method} call(s) within {timeout}s, got {len(found)}; calls so far: {seen}")
                self._cond.wait(left)

    def wait_until(self, predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
        """Block until ``predicate(server)`` is true (checked after every call)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}; calls: {[c.method for c in self.calls]}")
                self._cond.wait(left)

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        with self._cond:
            return dict(self.messages[(channel, ts)])

    def channel_messages(self, channel: str) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(m) for (ch, _), m in self.messages.items() if ch == channel]

    # ------------------------------------------------------------------ Slack's behaviour

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        head = queue[0]
        head.times -= 1
        if head.times <= 0:
            queue.pop(0)
        return head

    def _answer(self, method: str, args: dict[str, Any], token: str | None) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(HTTP status, JSON body, extra headers) as Slack would answer; called under the lock."""
        failure = self._take_failure(method)
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            body = {"ok": False, "error": failure.error or "internal_error"}
            return failure.status, body, headers
        if method == "response_url":
            return 200, {"ok": True}, {}
        if method == "apps.connections.open":
            if not (token or "").startswith("xapp-"):
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            if self.socket_mode_url is None:
                return 200, {"ok": False, "error": "socket_mode_not_enabled"}, {}
            return 200, {"ok": True, "url": self.socket_mode_url}, {}
        if not (token or "").startswith("xoxb-"):
            return 200, {"ok": False, "error": "not_authed" if not token else "invalid_auth"}, {}
        if method == "auth.test":
            return 200, {"ok": True, "url": "https://gitops-test.slack.com/", "team": "GitOps Test", "user": "gitops-health",
                         "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": "B0GITOPSBOT"}, {"x-oauth-scopes": "chat:write,commands"}
        if method == "chat.postMessage":
            channel = args.get("channel")
            if not channel:
                return 200, {"ok": False, "error": "channel_not_found"}, {}
            if not args.get("text") and not args.get("blocks"):
                return 200, {"ok": False, "error": "no_text"}, {}
            ts = f"{next(self._ts)}.000100"
            message = {"channel": channel, "ts": ts, "text": args.get("text", ""), "blocks": args.get("blocks") or [],
                       "thread_ts": args.get("thread_ts"), "metadata": args.get("metadata"), "updates": 0}
            self.messages[(channel, ts)] = message
            return 200, {"ok": True, "channel": channel, "ts": ts, "message": {"text": message["text"], "blocks": message["blocks"], "ts": ts}}, {}
        if method == "chat.update":
            key = (str(args.get("channel")), str(args.get("ts")))
            if not args.get("channel"):
                return 200, {"ok": False, "error": "channel_not_found"}, {}
            if key not in self.messages:
                return 200, {"ok": False, "error": "message_not_found"}, {}
            if not args.get("text") and not args.get("blocks"):
                return 200, {"ok": False, "error": "no_text"}, {}
            message = self.messages[key]
            message.update(text=args.get("text", ""), blocks=args.get("blocks") or [], updates=message["updates"] + 1)
            return 200, {"ok": True, "channel": key[0], "ts": key[1], "text": message["text"]}, {}
        if method == "conversations.history":
            channel = str(args.get("channel") or "")
            if not channel:
                return 200, {"ok": False, "error": "channel_not_found"}, {}
            oldest = float(args.get("oldest") or 0)
            limit = int(args.get("limit") or 100)
            with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
            found = sorted((m for (ch, _), m in self.messages.items() if ch == channel and float(m["ts"]) > oldest),
                           key=lambda m: float(m["ts"]), reverse=True)  # newest first, as Slack answers
            page = [{"type": "message", "ts": m["ts"], "text": m["text"], "blocks": m["blocks"],
                     **({"metadata": m["metadata"]} if with_metadata and m.get("metadata") else {})} for m in found[:limit]]
            return 200, {"ok": True, "messages": page, "has_more": len(found) > limit, "response_metadata": {"next_cursor": ""}}, {}
        if method == "chat.postEphemeral":
            if not args.get("channel"):
                return 200, {"ok": False, "error": "channel_not_found"}, {}
            if not args.get("user"):
                return 200, {"ok": False, "error": "user_not_in_channel"}, {}
            if not args.get("text") and not args.get("blocks"):
                return 200, {"ok": False, "error": "no_text"}, {}
            return 200, {"ok": True, "message_ts": f"{next(self._ts)}.000200"}, {}
        if method == "views.open":
            if not args.get("trigger_id"):
                return 200, {"ok": False, "error": "invalid_trigger_id"}, {}
            view = args.get("view")
            if not isinstance(view, dict) or view.get("type") != "modal":
                return 200, {"ok": False, "error": "invalid_arguments"}, {}
            return 200, {"ok": True, "view": {**view, "id": f"V{next(self._views):08d}"}}, {}
        return 200, {"ok": False, "error": "unknown_method"}, {}

    def _record(self, call: ApiCall) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self._cond:
            self.calls.append(call)
            self._cond.notify_all()
            gate = self._holds.get(call.method)
        if gate is not None:
            gate.wait(30)
        with self._cond:
            return self._answer(call.method, call.args, call.token)


def _decode_args(raw: bytes, content_type: str, query: str) -> dict[str, Any]:
    args: dict[str, Any] = {k: v[0] for k, v in parse_qs(query).items()}
    if raw:
        text = raw.decode("utf-8")
        if "json" in content_type or text.lstrip().startswith("{"):
            args.update(json.loads(text))
        else:
            args.update({k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()})
    for key in _JSON_ARGS:
        value = args.get(key)
        if isinstance(value, str) and value[:1] in "[{":
            args[key] = json.loads(value)
    return args


def _handler_for(server: SlackApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet test output
            pass

        def _handle(self) -> None:
            parsed = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if parsed.path.startswith("/api/"):
                method = parsed.path[len("/api/"):]
            elif parsed.path.startswith("/response/"):
                method = "response_url"
            else:
                self._send(404, {"ok": False, "error": "not_found"}, {})
                return
            try:
                args = _decode_args(raw, self.headers.get("Content-Type", ""), parsed.query)
            except (UnicodeDecodeError, json.JSONDecodeError):
                self._send(200, {"ok": False, "error": "invalid_json"}, {})
                return
            auth = self.headers.get("Authorization", "")
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else args.pop("token", None)
            status, body, headers = server._record(ApiCall(method=method, args=args, token=token, path=parsed.path))
            self._send(status, body, headers)

        def _send(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = _handle
        do_POST = _handle

    return Handler


@contextmanager
def running_slack_api(**kwargs: Any) -> Iterator[SlackApiServer]:
    with SlackApiServer(**kwargs) as server:
        yield server


# ---------------------------------------------------------------------- requests as Slack sends them


def signed_headers(signing_secret: str, body: bytes | str, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a real v0-signed Slack request: HMAC-SHA256 over "v0:<ts>:<body>" with the signing secret."""
    raw = body.encode() if isinstance(body, str) else body
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(signing_secret.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def _interactive_body(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    return body, {"Content-Type": "application/x-www-form-urlencoded"}


def block_action(*, user: str, action_id: str, value: str, channel: str = "C0APPROVALS", message_ts: str = "1700000001.000100",
                 trigger_id: str = "1337.42.abcd", response_url: str = "http://127.0.0.1:9/response/none") -> tuple[bytes, dict[str, str]]:
    """A ``block_actions`` interaction: someone clicked a button on a message. Returns (body, content headers)."""
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM_ID, "domain": "gitops-test"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0GITOPS",
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": trigger_id,
        "channel": {"id": channel, "name": "approvals"},
        "message": {"type": "message", "ts": message_ts, "text": "card", "user": BOT_USER_ID},
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": action_id, "block_id": "deploy_actions", "value": value,
                     "text": {"type": "plain_text", "text": action_id}, "action_ts": f"{time.time():.6f}"}],
    }
    return _interactive_body(payload)


def view_submission(*, user: str, callback_id: str, private_metadata: str, values: dict[str, dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    """A ``view_submission``: someone pressed Submit on a modal; ``values`` is state.values (block_id -> action_id -> value)."""
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "gitops-test"},
        "user": {"id": user, "username": user.lower(), "team_id": TEAM_ID},
        "api_app_id": "A0GITOPS",
        "token": "legacy-verification-token",
        "trigger_id": "1337.43.efgh",
        "view": {"id": "V00000001", "type": "modal", "callback_id": callback_id, "private_metadata": private_metadata,
                 "state": {"values": values}, "team_id": TEAM_ID, "app_id": "A0GITOPS"},
    }
    return _interactive_body(payload)


def slash_command(*, user: str, text: str, command: str = "/gitops", channel: str = "C0APPROVALS",
                  response_url: str = "http://127.0.0.1:9/response/none") -> tuple[bytes, dict[str, str]]:
    """A slash command invocation as Slack posts it (form-encoded)."""
    body = urlencode({
        "token": "legacy-verification-token", "team_id": TEAM_ID, "team_domain": "gitops-test", "channel_id": channel,
        "channel_name": "approvals", "user_id": user, "user_name": user.lower(), "command": command, "text": text,
        "api_app_id": "A0GITOPS", "response_url": response_url, "trigger_id": "1337.44.ijkl",
    }).encode()
    return body, {"Content-Type": "application/x-www-form-urlencoded"}


# ---------------------------------------------------------------------- Socket Mode


class SocketModeServer:
    """A loopback Socket Mode endpoint: says hello, sends envelopes on demand, records the app's acks.

    Give ``ws_url`` to ``SlackApiServer(socket_mode_url=...)``: ``apps.connections.open``
    hands it to the app, which connects here instead of to Slack. ``send(type, payload)``
    delivers an envelope the way Slack does; ``wait_ack(envelope_id)`` returns the
    app's acknowledgement (``{"envelope_id": ..., "payload": ...}``).
    """

    def __init__(self) -> None:
        import asyncio

        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._cond = threading.Condition()
        self.acks: list[dict[str, Any]] = []
        self.connections = 0
        self._sockets: list[Any] = []
        self._runner: Any = None
        self._port = 0
        self._thread = threading.Thread(target=self._serve, name="slack-socket-mode", daemon=True)
        self._ids = itertools.count(1)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/link"

    def _serve(self) -> None:
        import asyncio

        from aiohttp import WSMsgType, web

        async def link(request: Any) -> Any:
            ws = web.WebSocketResponse(autoping=True)
            await ws.prepare(request)
            with self._cond:
                self._sockets.append(ws)
                self.connections += 1
                self._cond.notify_all()
            await ws.send_str(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0GITOPS"}}))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    with self._cond:
                        self.acks.append(json.loads(msg.data))
                        self._cond.notify_all()
            with self._cond:
                self._sockets.remove(ws)
            return ws

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/link", link)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()

        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def start(self) -> SocketModeServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        import asyncio

        async def shutdown() -> None:
            for ws in list(self._sockets):
                await ws.close()
            await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> SocketModeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_connected(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._sockets:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the app did not open a Socket Mode connection")
                self._cond.wait(left)

    def send(self, envelope_type: str, payload: dict[str, Any]) -> str:
        """Deliver an envelope (``interactive``, ``slash_commands``, ``events_api``); returns its envelope_id."""
        import asyncio

        envelope_id = f"env-{next(self._ids)}"
        message = {"envelope_id": envelope_id, "type": envelope_type, "payload": payload, "accepts_response_payload": envelope_type != "events_api", "retry_attempt": 0, "retry_reason": ""}
        with self._cond:
            ws = self._sockets[-1]
        asyncio.run_coroutine_threadsafe(ws.send_str(json.dumps(message)), self._loop).result(10)
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for ack in self.acks:
                    if ack.get("envelope_id") == envelope_id:
                        return ack
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no ack for {envelope_id}; acks so far: {self.acks}")
                self._cond.wait(left)


def block_action_payload(body: bytes) -> dict[str, Any]:
    """The JSON payload inside a form-encoded interaction body (what Socket Mode delivers as-is)."""
    return json.loads(parse_qs(body.decode())["payload"][0])
