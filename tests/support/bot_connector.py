"""A real loopback Bot Framework connector (the ``serviceUrl`` Teams gives a bot) that records every activity.

Point ``teams.service_url`` at ``connector.url``: the bot's proactive posts
(``POST /v3/conversations/{id}/activities``), replies
(``POST .../activities/{reply_to}``) and card updates
(``PUT .../activities/{id}``) arrive here, are answered the way the Bot
Connector answers (``{"id": ...}``; 404 for an activity it never saw) and kept,
so a test reads the card in a conversation as it stands after every update.
Failures can be scheduled per operation (``fail("update", times=2, status=503)``).

The same module plays the Bot Framework's token side for JWT tests:
``TokenIssuer`` is a loopback OpenID metadata document + JWKS (set
``TEAMS_OPENID_METADATA_URL`` to ``issuer.metadata_url``) and signs tokens
with its own RSA key the way the Bot Framework does (``iss``
https://api.botframework.com, ``aud`` the bot's app id, ``serviceurl``).
``invoke_action`` and ``message`` build the activities Teams sends.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.servers import LoopbackHTTPServer

__all__ = ["BotConnector", "ConnectorCall", "TokenIssuer", "bot_added", "invoke_action", "message"]

BOT_ID = "28:gitops-health-bot"
ISSUER = "https://api.botframework.com"
_MEMBER = re.compile(r"^/v3/conversations/(?P<conv>[^/]+)/members/(?P<member>[^/]+)/?$")
_ACTIVITIES = re.compile(r"^/v3/conversations/(?P<conv>[^/]+)/activities(?:/(?P<act>[^/]+))?/?$")


@dataclass(frozen=True)
class ConnectorCall:
    operation: str  # "send" (new post), "reply", "update", "get_member"
    conversation: str
    activity_id: str | None
    body: dict[str, Any]
    authorization: str | None
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Failure:
    times: int
    status: int
    retry_after: int | None


class BotConnector(LoopbackHTTPServer):
    """The loopback connector; use as a context manager or call start()/stop()."""

    def __init__(self) -> None:
        self.calls: list[ConnectorCall] = []
        self.activities: dict[tuple[str, str], dict[str, Any]] = {}  # (conversation, activity id) -> latest activity
        self._failures: dict[str, list[_Failure]] = {}
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        super().__init__(_connector_handler(self), "bot-connector")

    @property
    def url(self) -> str:
        """The serviceUrl: set teams.service_url (and incoming activities' serviceUrl) to this."""
        return f"{self.base}/"

    # ------------------------------------------------------------------ test controls

    def fail(self, operation: str, *, times: int = 1, status: int = 503, retry_after: int | None = None) -> None:
        """Make the next ``times`` calls of ``operation`` ("send", "reply", "update") answer HTTP ``status``."""
        with self._cond:
            self._failures.setdefault(operation, []).append(_Failure(times, status, retry_after))

    def calls_to(self, operation: str) -> list[ConnectorCall]:
        with self._cond:
            return [c for c in self.calls if c.operation == operation]

    def wait_until(self, predicate: Callable[[BotConnector], bool], timeout: float = 10.0, what: str = "condition") -> None:
        """Block until ``predicate(connector)`` is true (checked after every call)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.operation, c.conversation) for c in self.calls]
                    raise AssertionError(f"timed out after {timeout}s waiting for {what}; connector calls: {seen}")
                self._cond.wait(left)

    def wait_for(self, operation: str, count: int = 1, timeout: float = 10.0) -> list[ConnectorCall]:
        self.wait_until(lambda c: len([x for x in c.calls if x.operation == operation]) >= count, timeout, f"{count} {operation} call(s)")
        return self.calls_to(operation)

    def conversation(self, conversation: str) -> list[dict[str, Any]]:
        """The activities in ``conversation`` as they stand now, oldest first."""
        with self._cond:
            return [dict(a) for (conv, _), a in self.activities.items() if conv == conversation]

    # ------------------------------------------------------------------ the connector's behaviour

    def _answer(self, method: str, path: str, body: dict[str, Any], authorization: str | None) -> tuple[int, dict[str, Any], dict[str, str]]:
        member = _MEMBER.match(path.split("?")[0])
        if member is not None and method == "GET":  # TeamsInfo.get_member: who joined
            from urllib.parse import unquote

            with self._cond:
                self.calls.append(ConnectorCall("get_member", unquote(member["conv"]), None, {"member": unquote(member["member"])}, authorization))
                self._cond.notify_all()
            return 200, {"id": unquote(member["member"]), "name": unquote(member["member"])}, {}
        match = _ACTIVITIES.match(path.split("?")[0])
        if match is None:
            return 404, {"error": {"code": "NotFound", "message": f"no such endpoint {path}"}}, {}
        from urllib.parse import unquote

        conv, act = unquote(match["conv"]), unquote(match["act"]) if match["act"] else None
        if method == "POST":
            operation = "reply" if act else "send"
        elif method == "PUT" and act:
            operation = "update"
        else:
            return 405, {"error": {"code": "MethodNotAllowed", "message": method}}, {}
        with self._cond:
            self.calls.append(ConnectorCall(operation, conv, act, body, authorization))
            try:
                queue = self._failures.get(operation)
                if queue:
                    head = queue[0]
                    head.times -= 1
                    if head.times <= 0:
                        queue.pop(0)
                    headers = {"Retry-After": str(head.retry_after)} if head.retry_after is not None else {}
                    return head.status, {"error": {"code": "ServiceError", "message": "scheduled failure"}}, headers
                if operation == "update":
                    assert act is not None
                    if (conv, act) not in self.activities:
                        return 404, {"error": {"code": "ActivityNotFound", "message": f"no activity {act} in {conv}"}}, {}
                    self.activities[(conv, act)] = {**body, "id": act}
                    return 200, {"id": act}, {}
                new_id = f"1:{next(self._ids)}"
                self.activities[(conv, new_id)] = {**body, "id": new_id}
                return 200, {"id": new_id}, {}
            finally:
                self._cond.notify_all()


def _connector_handler(connector: BotConnector) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                body = {"_raw": raw.decode("utf-8", "replace")}
            status, answer, headers = connector._answer(self.command, self.path, body, self.headers.get("Authorization"))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_POST = _handle
        do_PUT = _handle
        do_GET = _handle

    return Handler


# --------------------------------------------------------------------------- tokens


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenIssuer(LoopbackHTTPServer):
    """A loopback OpenID metadata document and JWKS, and RS256 tokens signed with its key, like the Bot Framework's."""

    def __init__(self, *, endorsements: tuple[str, ...] = ("msteams",)) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = f"test-{uuid.uuid4().hex[:8]}"
        self.endorsements = list(endorsements)
        self.fetches = 0
        super().__init__(_issuer_handler(self), "openid-metadata")

    @property
    def metadata_url(self) -> str:
        """Set TEAMS_OPENID_METADATA_URL to this."""
        return f"{self.base}/v1/.well-known/openidconfiguration"

    def jwks(self) -> dict[str, Any]:
        from jwt.algorithms import RSAAlgorithm

        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, use="sig", alg="RS256", endorsements=self.endorsements)
        return {"keys": [jwk]}

    def token(self, *, audience: str, service_url: str, issuer: str = ISSUER, expires_in: float = 3600, key: Any = None, kid: str | None = None) -> str:
        """A Bot Framework token for ``audience``; ``expires_in`` < 0 gives an expired one, ``key`` another signer."""
        import jwt

        now = int(time.time())
        claims = {"iss": issuer, "aud": audience, "serviceurl": service_url, "nbf": now - 60, "iat": now - 60, "exp": int(now + expires_in)}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid})

    def unsigned(self, *, audience: str, service_url: str) -> str:
        """The same claims with ``alg: none`` and no signature: must never be accepted."""
        now = int(time.time())
        header = {"alg": "none", "typ": "JWT", "kid": self.kid}
        claims = {"iss": ISSUER, "aud": audience, "serviceurl": service_url, "nbf": now - 60, "exp": now + 3600}
        return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."


def _issuer_handler(issuer: TokenIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.startswith("/v1/.well-known/openidconfiguration"):
                issuer.fetches += 1
                answer: dict[str, Any] = {"issuer": ISSUER, "jwks_uri": f"{issuer.base}/v1/.well-known/keys",
                                          "id_token_signing_alg_values_supported": ["RS256"]}
            elif self.path.startswith("/v1/.well-known/keys"):
                answer = issuer.jwks()
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


# --------------------------------------------------------------------------- activities Teams sends


def _base(service_url: str, user_id: str, aad_object_id: str | None, conversation: str, recipient: str) -> dict[str, Any]:
    return {
        "id": f"f:{uuid.uuid4().hex[:12]}",
        "channelId": "msteams",
        "serviceUrl": service_url,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "from": {"id": user_id, "name": user_id, **({"aadObjectId": aad_object_id} if aad_object_id else {})},
        "recipient": {"id": recipient, "name": "gitops-health"},
        "conversation": {"id": conversation, "isGroup": True, "conversationType": "channel", "tenantId": "tenant-1"},
        "channelData": {"tenant": {"id": "tenant-1"}},
    }


def invoke_action(
    *,
    user_id: str,
    verb: str,
    deployment_id: str,
    service_url: str,
    reason: str | None = None,
    aad_object_id: str | None = None,
    conversation: str = "19:approvals@thread.tacv2",
    reply_to: str | None = None,
    recipient: str = BOT_ID,
) -> dict[str, Any]:
    """The ``adaptiveCard/action`` invoke Teams sends when someone clicks an ``Action.Execute`` on our card."""
    data: dict[str, Any] = {"deployment_id": deployment_id}
    if reason is not None:
        data["reason"] = reason  # Teams merges the card's inputs into the action's data
    activity = _base(service_url, user_id, aad_object_id, conversation, recipient)
    activity.update(type="invoke", name="adaptiveCard/action", value={"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"})
    if reply_to:
        activity["replyToId"] = reply_to
    return activity


def message(*, user_id: str, text: str, service_url: str, conversation: str = "a:personal-chat", recipient: str = BOT_ID) -> dict[str, Any]:
    """A message typed to the bot (personal chat)."""
    activity = _base(service_url, user_id, None, conversation, recipient)
    activity.update(type="message", text=text)
    activity["conversation"]["conversationType"] = "personal"
    activity["conversation"]["isGroup"] = False
    return activity


def bot_added(*, service_url: str, conversation: str = "19:newchannel@thread.tacv2", recipient: str = BOT_ID) -> dict[str, Any]:
    """The conversationUpdate Teams sends when the bot is added to a team (the bot is among membersAdded)."""
    activity = _base(service_url, "29:installer", None, conversation, recipient)
    activity.update(type="conversationUpdate", membersAdded=[{"id": recipient}])
    activity["channelData"] = {"eventType": "teamMemberAdded", "team": {"id": conversation, "name": "Release"}, "tenant": {"id": "tenant-1"}}
    return activity
