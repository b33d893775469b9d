"""The CI callback: POST the decided deployment to its ``callback_url``, signed like our webhooks, until a 2xx.

Runs as the outbox handler of ``deployment.callback`` (enqueued by the
approval service in the decision's transaction), so it is retried with
backoff until the receiver answers 2xx, across restarts. Every attempt is
an audit record (attempt number, sanitized URL, status or error, duration),
so "did CI hear about it, and when" has an answer an auditor can check.

The body is the deployment as ``GET /api/deployments/{id}`` returns it,
read when the attempt starts. Headers: the signature pair
(``X-GitOps-Timestamp``/``X-GitOps-Signature``, signed anew per attempt so
a receiver's 300 s window holds on a late retry), ``X-GitOps-Event:
deployment.decided``, ``X-GitOps-Delivery: <outbox job id>`` (the same on
every retry, so a receiver can drop the duplicate that an at-least-once
delivery may bring after a crash) and ``X-GitOps-Attempt``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from pydantic import SecretStr

from assistant import audit, outbox
from assistant.outbox import GiveUp, Job, RetryLater
from assistant.signing import SECRET_ENV, sign
from assistant.storage import Database

__all__ = ["KIND", "CallbackSender", "register_callbacks", "safe_url"]

KIND = "deployment.callback"
ACTOR = "gitops-health"
DEFAULT_TIMEOUT_S = 10.0
MAX_RETRY_AFTER_S = 3600.0


def safe_url(url: str) -> str:
    """The URL without credentials, query or fragment: what may go into the audit log and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class CallbackSender:
    """The ``deployment.callback`` handler (an async callable taking a Job)."""

    def __init__(
        self,
        db: Database,
        secret: SecretStr | str | None | Callable[[], SecretStr | str | None],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.db = db
        self._secret = secret
        self.timeout_s = timeout_s
        self._transport = transport
        self._user_agent = f"gitops-health/{_version()} (+callback)"

    def secret(self) -> SecretStr | str | None:
        value = self._secret() if callable(self._secret) else self._secret
        if isinstance(value, SecretStr):
            return value if value.get_secret_value() else None
        return value or None

    async def __call__(self, job: Job) -> None:
        from assistant.approvals import UnknownDeployment, callback_url, load_view

        deployment_id = job.payload.get("deployment_id")
        if not isinstance(deployment_id, str) or not deployment_id:
            raise GiveUp(f"job payload has no deployment_id: {sorted(job.payload)}")
        try:
            url = await _in_thread(callback_url, self.db, deployment_id)
            view = await _in_thread(load_view, self.db, deployment_id)
        except UnknownDeployment as exc:
            raise GiveUp(str(exc)) from None
        if url is None:
            return  # the pipeline polls instead; nothing to send
        if job.attempt > 1:
            await _in_thread(self._audit_lost_attempts, job, deployment_id, url)
        if not view.decided:
            raise GiveUp(f"{deployment_id} is still {view.status}; a callback is only sent for a decision")
        secret = self.secret()
        if secret is None:
            await self._audit(job, deployment_id, url, outcome="failed", error=f"{SECRET_ENV} is not set; callbacks are signed with it", status=None, took=0.0)
            raise RetryLater(f"{SECRET_ENV} is not set, so the callback cannot be signed; set it and restart")

        body = view.model_dump_json().encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": self._user_agent,
            "X-GitOps-Event": "deployment.decided",
            "X-GitOps-Delivery": str(job.id),
            "X-GitOps-Attempt": str(job.attempt),
            **sign(secret, None, body),
        }
        started = time.perf_counter()
        status: int | None = None
        retry_after: float | None = None
        error: str | None = None
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False, transport=self._transport, trust_env=False) as client:
                response = await client.post(url, content=body, headers=headers)
            status = response.status_code
            if not 200 <= status < 300:
                error = f"answered {status} {response.reason_phrase}".strip()
                retry_after = _retry_after(response)
        except httpx.TimeoutException:
            error = f"no answer within {self.timeout_s:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        took = time.perf_counter() - started
        await self._audit(job, deployment_id, url, outcome="failed" if error else "delivered", error=error, status=status, took=took)
        if error:
            raise RetryLater(f"callback to {safe_url(url)} {error}", delay=retry_after)

    async def _audit(self, job: Job, deployment_id: str, url: str, *, outcome: str, error: str | None, status: int | None, took: float) -> None:
        data: dict[str, Any] = {
            "url": safe_url(url),
            "attempt": job.attempt,
            "delivery": job.id,
            "outcome": outcome,
            "status": status,
            "duration_ms": round(took * 1000, 1),
        }
        if error:
            data["error"] = error

        def write() -> None:
            with self.db.session() as session:
                audit.append(session, ACTOR, "deployment.callback_attempt", deployment_id, data)

        await _in_thread(write)


    def _audit_lost_attempts(self, job: Job, deployment_id: str, url: str) -> None:
        """Attempts cut short (the server died or stopped mid-call) get their audit record now, so none is missing."""
        from sqlalchemy import select

        from assistant.storage.outbox_tables import outbox_attempts
        from assistant.storage.tables import audit_log

        a = outbox_attempts.c
        with self.db.session() as session:
            lost = session.execute(
                select(a.attempt, a.worker, a.started_at, a.finished_at)
                .where(a.job_id == job.id, a.outcome == "lost", a.attempt < job.attempt)
                .order_by(a.attempt)
            ).all()
            if not lost:
                return
            audited = set()
            for (body,) in session.execute(
                select(audit_log.c.body).where(audit_log.c.subject == deployment_id, audit_log.c.action == "deployment.callback_attempt")
            ):
                data = json.loads(body).get("data", {})
                if data.get("delivery") == job.id:
                    audited.add(data.get("attempt"))
            for row in lost:
                if row.attempt in audited:
                    continue
                audit.append(
                    session,
                    ACTOR,
                    "deployment.callback_attempt",
                    deployment_id,
                    {
                        "url": safe_url(url),
                        "attempt": row.attempt,
                        "delivery": job.id,
                        "outcome": "lost",
                        "status": None,
                        "error": "no answer was recorded: the server stopped or died during this attempt",
                    },
                )


def _retry_after(response: httpx.Response) -> float | None:
    """A receiver's Retry-After in seconds (numeric form only), bounded; None leaves the backoff to decide."""
    raw = response.headers.get("retry-after", "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def register_callbacks(db: Database, settings: Any, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> CallbackSender:
    """Make this process's outbox worker send ``deployment.callback`` jobs with the settings' webhook secret."""
    sender = CallbackSender(db, lambda: getattr(settings, "webhook_secret", None), timeout_s=timeout_s)
    outbox.register(KIND, sender)
    return sender


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gitops-health")
    except PackageNotFoundError:
        return "0+unknown"
