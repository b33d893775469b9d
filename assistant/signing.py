"""The webhook signature of CONTRACTS.md, in the core: outgoing callbacks are signed exactly like incoming webhooks.

``X-GitOps-Timestamp: <unix seconds>`` and
``X-GitOps-Signature: v1=<hex HMAC-SHA256(secret, "v1:" + timestamp + ":" + raw body)>``.
The timestamp is inside the MAC, so a receiver that checks it is within
:data:`MAX_SKEW_SECONDS` of its clock cannot be fed a replay later. This
module has no web-framework imports; the HTTP adapter turns
:class:`SignatureError` into its 401.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr

from assistant import clock

__all__ = [
    "MAX_SKEW_SECONDS",
    "SECRET_ENV",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignatureError",
    "compute_signature",
    "sign",
    "verify",
]

TIMESTAMP_HEADER = "X-GitOps-Timestamp"
SIGNATURE_HEADER = "X-GitOps-Signature"
MAX_SKEW_SECONDS = 300
SECRET_ENV = "GITOPS_HEALTH_WEBHOOK_SECRET"
_VERSION = "v1"

Secret = str | bytes | SecretStr


class SignatureError(ValueError):
    """The signature headers do not authenticate the body; the message says which part failed and how to fix it."""


def _secret_bytes(secret: Secret) -> bytes:
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    raw = secret.encode() if isinstance(secret, str) else secret
    if not raw:
        raise ValueError(f"the signing secret is empty; set {SECRET_ENV}")
    return raw


def compute_signature(secret: Secret, timestamp: str | int, body: bytes) -> str:
    """``v1=<hex>`` for this timestamp and raw body."""
    message = f"{_VERSION}:{timestamp}:".encode() + body
    return f"{_VERSION}=" + hmac.new(_secret_bytes(secret), message, hashlib.sha256).hexdigest()


def sign(secret: Secret, timestamp: int | str | None = None, body: bytes = b"") -> dict[str, str]:
    """The two headers that authenticate ``body``; ``timestamp`` defaults to now (sign each send anew)."""
    if timestamp is None:
        timestamp = int(clock.now().timestamp())
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: compute_signature(secret, timestamp, body)}


def verify(secret: Secret, timestamp: str | None, signature: str | None, body: bytes, *, now: float | None = None) -> None:
    """Raise SignatureError unless the headers authenticate ``body`` at ``now`` (default: the clock)."""
    if not timestamp or not signature:
        missing = [name for name, value in ((TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature)) if not value]
        raise SignatureError(
            f"missing {' and '.join(missing)} header; sign the request: {TIMESTAMP_HEADER}: <unix seconds>, "
            f'{SIGNATURE_HEADER}: v1=<hex HMAC-SHA256(secret, "v1:" + timestamp + ":" + raw body)>'
        )
    ts = timestamp.strip()
    if not ts.isascii() or not ts.isdigit() or len(ts) > 12:
        raise SignatureError(f"{TIMESTAMP_HEADER} must be the current time in whole unix seconds (e.g. 1767600000)")
    current = clock.now().timestamp() if now is None else now
    skew = int(ts) - current
    if abs(skew) > MAX_SKEW_SECONDS:
        direction = "in the future" if skew > 0 else "old"
        raise SignatureError(
            f"{TIMESTAMP_HEADER} is {abs(int(skew))} s {direction}; it must be within {MAX_SKEW_SECONDS} s of the "
            "receiver's clock. Sign each request when sending it and check the sender's clock (NTP)"
        )
    scheme, sep, hex_digest = signature.strip().partition("=")
    if not sep or scheme != _VERSION or not hex_digest:
        raise SignatureError(f"{SIGNATURE_HEADER} must look like v1=<64 hex digits>; only scheme v1 is supported")
    expected = compute_signature(secret, ts, body)
    # Constant time over the encoded strings; the caller's hex is lower-cased so upper-case senders pass.
    if not hmac.compare_digest(expected.encode(), f"{_VERSION}={hex_digest.lower()}".encode()):
        raise SignatureError(
            f"{SIGNATURE_HEADER} does not match the body; sign the exact raw body bytes with the shared secret "
            f'({SECRET_ENV}) as HMAC-SHA256 over "v1:" + timestamp + ":" + body'
        )
