"""HMAC authentication of ``/api/*`` webhooks, exactly as CONTRACTS.md specifies.

A request carries ``X-GitOps-Timestamp: <unix seconds>`` and
``X-GitOps-Signature: v1=<hex HMAC-SHA256(secret, "v1:" + timestamp + ":" + raw body)>``.
The timestamp is inside the MAC and must be within 300 s of our clock, so a
captured request cannot be replayed later. Routes depend on
:func:`verified_body` and get the raw bytes only after the check passed, so
nothing is parsed or stored for an unauthenticated caller.

The formula and its checks live in :mod:`assistant.signing` (the core signs
outgoing callbacks with it); this module only turns them into a FastAPI
dependency and 401s. ``sign`` is re-exported for tests and CI examples.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Request
from pydantic import SecretStr

from adapters.http.errors import ApiError
from assistant import signing
from assistant.signing import (
    MAX_SKEW_SECONDS,
    SECRET_ENV,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    compute_signature,
    sign,
)

__all__ = [
    "MAX_SKEW_SECONDS",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookAuthError",
    "SIGNATURE_PARAMETERS",
    "check_headers",
    "compute_signature",
    "sign",
    "read_verified_body",
    "verified_body",
    "verify",
]

Secret = str | bytes | SecretStr


class WebhookAuthError(ApiError):
    """401: the caller could not be authenticated; the message says which part failed."""

    def __init__(self, message: str) -> None:
        super().__init__(401, "unauthorized", message)


def verify(
    secret: Secret,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float | None = None,
) -> None:
    """Raise WebhookAuthError unless the headers authenticate ``body`` right now."""
    try:
        signing.verify(secret, timestamp, signature, body, now=now)
    except SignatureError as exc:
        raise WebhookAuthError(str(exc)) from None


def check_headers(
    secret: Secret, timestamp: str | None, signature: str | None, *, now: float | None = None
) -> None:
    """Refuse, before the body is read, what no body could make valid.

    Missing headers and a malformed or stale timestamp fail whatever was
    sent, so an unsigned or replayed request costs us no body read. The
    rules are the core's: we run its ``verify`` over an empty body with the
    signature that an empty body would have, so only the header checks can
    fail here; the caller's own signature is checked once the body is in.
    """
    probe = signature
    if timestamp and signature:
        probe = compute_signature(secret, timestamp.strip(), b"")
    verify(secret, timestamp, probe, b"", now=now)


def _configured_secret(request: Request) -> SecretStr | None:
    settings = request.app.state.settings
    secret: SecretStr | None = getattr(settings, "webhook_secret", None)
    if secret is None or not secret.get_secret_value():
        return None
    return secret


# The two headers as OpenAPI parameters, for routes that read them with `read_verified_body` (no FastAPI
# dependency: solving one per request -- sub-dependency, header aliases, pydantic per header -- cost
# ~0.3 ms CPU of a POST /api/deployments, more than the HMAC; bench/approvals.py).
SIGNATURE_PARAMETERS: tuple[dict[str, object], ...] = (
    {
        "name": TIMESTAMP_HEADER,
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "Unix seconds when the request was signed; within 300 s of the server's clock.",
    },
    {
        "name": SIGNATURE_HEADER,
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": 'v1=<hex HMAC-SHA256(secret, "v1:" + timestamp + ":" + raw body)>; GET requests sign the empty body.',
    },
)


async def read_verified_body(request: Request) -> bytes:
    """The raw body, once the request's signature headers prove it comes from a holder of the secret.

    The same checks as the `verified_body` dependency, called from a route
    (document the headers with SIGNATURE_PARAMETERS in its openapi_extra).
    """
    headers = request.headers
    return await _verified(request, headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER))


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
    return await _verified(request, timestamp, signature)


async def _verified(request: Request, timestamp: str | None, signature: str | None) -> bytes:
    secret = _configured_secret(request)
    if secret is None:
        raise ApiError(
            503,
            "webhook_secret_missing",
            f"webhooks are disabled because no secret is configured; set {SECRET_ENV} "
            "in the server's environment (or .env) and restart it",
        )
    check_headers(secret, timestamp, signature)
    body = await request.body()
    verify(secret, timestamp, signature, body)
    return body
