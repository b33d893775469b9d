"""HMAC authentication of ``/api/*`` webhooks, exactly as CONTRACTS.md specifies.

A request carries ``X-GitOps-Timestamp: <unix seconds>`` and
``X-GitOps-Signature: v1=<hex HMAC-SHA256(secret, "v1:" + timestamp + ":" + raw body)>``.
The timestamp is inside the MAC and must be within 300 s of our clock, so a
captured request cannot be replayed later. Routes depend on
:func:`verified_body` and get the raw bytes only after the check passed, so
nothing is parsed or stored for an unauthenticated caller. :func:`sign` is
the other half, for tests, CI examples and the callback sender.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Header, Request
from pydantic import SecretStr

from adapters.http.errors import ApiError
from assistant import clock

__all__ = [
    "MAX_SKEW_SECONDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookAuthError",
    "check_headers",
    "check_mac",
    "compute_signature",
    "sign",
    "verified_body",
    "verify",
]

TIMESTAMP_HEADER = "X-GitOps-Timestamp"
SIGNATURE_HEADER = "X-GitOps-Signature"
MAX_SKEW_SECONDS = 300
_VERSION = "v1"
_SECRET_ENV = "GITOPS_HEALTH_WEBHOOK_SECRET"


class WebhookAuthError(ApiError):
    """401: the caller could not be authenticated; the message says which part failed."""

    def __init__(self, message: str) -> None:
        super().__init__(401, "unauthorized", message)


def _secret_bytes(secret: str | bytes | SecretStr) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return secret.encode() if isinstance(secret, str) else secret


def compute_signature(secret: str | bytes | SecretStr, timestamp: str | int, body: bytes) -> str:
    """``v1=<hex>`` for this timestamp and raw body."""
    message = f"{_VERSION}:{timestamp}:".encode() + body
    digest = hmac.new(_secret_bytes(secret), message, hashlib.sha256).hexdigest()
    return f"{_VERSION}={digest}"


def sign(
    secret: str | bytes | SecretStr, timestamp: int | str | None = None, body: bytes = b""
) -> dict[str, str]:
    """The two headers that authenticate ``body``; ``timestamp`` defaults to now."""
    if timestamp is None:
        timestamp = int(clock.now().timestamp())
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: compute_signature(secret, timestamp, body),
    }


def check_headers(timestamp: str | None, signature: str | None, *, now: float | None = None) -> tuple[str, str]:
    """Validate presence, form and freshness of the two headers; returns (timestamp, hex digest).

    Runs before the body is read, so a stale or unsigned request costs nothing.
    """
    if not timestamp or not signature:
        missing = [
            name
            for name, value in ((TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature))
            if not value
        ]
        raise WebhookAuthError(
            f"missing {' and '.join(missing)} header; sign the request: "
            f"{TIMESTAMP_HEADER}: <unix seconds>, {SIGNATURE_HEADER}: "
            f"v1=<hex HMAC-SHA256(secret, \"v1:\" + timestamp + \":\" + raw body)>"
        )
    ts = timestamp.strip()
    if not ts.isascii() or not ts.isdigit() or len(ts) > 12:
        raise WebhookAuthError(
            f"{TIMESTAMP_HEADER} must be the current time in whole unix seconds (e.g. 1767600000)"
        )
    current = clock.now().timestamp() if now is None else now
    skew = int(ts) - current
    if abs(skew) > MAX_SKEW_SECONDS:
        direction = "in the future" if skew > 0 else "old"
        raise WebhookAuthError(
            f"{TIMESTAMP_HEADER} is {abs(int(skew))} s {direction}; it must be within "
            f"{MAX_SKEW_SECONDS} s of the server's clock. Sign each request when sending it "
            "and check the sender's clock (NTP)"
        )
    scheme, sep, hex_digest = signature.strip().partition("=")
    if not sep or scheme != _VERSION or not hex_digest:
        raise WebhookAuthError(
            f"{SIGNATURE_HEADER} must look like v1=<64 hex digits>; only scheme v1 is supported"
        )
    return ts, hex_digest


def check_mac(secret: str | bytes | SecretStr, timestamp: str, hex_digest: str, body: bytes) -> None:
    expected = compute_signature(secret, timestamp, body)
    # Constant time over equal-length ASCII strings; lower-case the caller's
    # hex so upper-case senders are not refused for spelling.
    given = f"{_VERSION}={hex_digest.lower()}"
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise WebhookAuthError(
            f"{SIGNATURE_HEADER} does not match the body; sign the exact raw body bytes you send "
            f"with the shared secret ({_SECRET_ENV}) as HMAC-SHA256 over "
            "\"v1:\" + timestamp + \":\" + body"
        )


def verify(
    secret: str | bytes | SecretStr,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float | None = None,
) -> None:
    """Raise WebhookAuthError unless the headers authenticate ``body`` right now."""
    ts, hex_digest = check_headers(timestamp, signature, now=now)
    check_mac(secret, ts, hex_digest, body)


def _configured_secret(request: Request) -> SecretStr | None:
    settings = request.app.state.settings
    secret: SecretStr | None = getattr(settings, "webhook_secret", None)
    if secret is None or not secret.get_secret_value():
        return None
    return secret


async def verified_body(
    request: Request,
    timestamp: Annotated[
        str | None,
        Header(
            alias=TIMESTAMP_HEADER,
            description="Unix seconds when the request was signed; within 300 s of the server's clock.",
        ),
    ] = None,
    signature: Annotated[
        str | None,
        Header(
            alias=SIGNATURE_HEADER,
            description='v1=<hex HMAC-SHA256(secret, "v1:" + timestamp + ":" + raw body)>; '
            "GET requests sign the empty body.",
        ),
    ] = None,
) -> bytes:
    """FastAPI dependency: the raw body, once the request is proven to come from a holder of the secret.

    Declared as header parameters so every route using it documents the
    signature headers in /openapi.json. GET requests are signed over their
    (empty) body like any other.
    """
    secret = _configured_secret(request)
    if secret is None:
        raise ApiError(
            503,
            "webhook_secret_missing",
            f"webhooks are disabled because no secret is configured; set {_SECRET_ENV} "
            "in the server's environment (or .env) and restart it",
        )
    ts, hex_digest = check_headers(timestamp, signature)
    body = await request.body()
    check_mac(secret, ts, hex_digest, body)
    return body
