"""Per-request context: request id, access log line, metrics, and the last-resort 500.

Pure ASGI (not BaseHTTPMiddleware) so streaming bodies pass through
untouched. The route template for logs and metrics is matched from a copy of
the scope taken before routing, never the concrete path.
Unexpected exceptions end here: logged once (through the redacting logger,
so no PHI from the exception text), answered as the contract's JSON 500 with
the request id to quote, never a stack trace or echo of the body.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterable

import structlog
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.errors import error_response
from adapters.http.metrics import HttpMetrics, route_template

__all__ = ["REQUEST_ID_HEADER", "RequestContextMiddleware", "accept_request_id"]

REQUEST_ID_HEADER = "X-Request-Id"
# Only ids that cannot smuggle text into logs (or PHI into them) are taken as given.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_access = structlog.stdlib.get_logger("gitops_health.access")
_errors = structlog.stdlib.get_logger("gitops_health.http")


def accept_request_id(value: str | None) -> str:
    """The caller's request id when it is a safe token, else a fresh uuid4 hex."""
    if value and _REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, metrics: HttpMetrics, routes: Callable[[], Iterable[BaseRoute]]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        given = None
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = accept_request_id(given)
        scope.setdefault("state", {})["request_id"] = request_id
        pristine = {k: scope[k] for k in ("type", "path", "root_path", "method", "headers") if k in scope}
        method = str(scope.get("method", ""))
        started = time.perf_counter()
        status = 500
        response_started = False
        header = (REQUEST_ID_HEADER.lower().encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                headers = [h for h in message.get("headers", []) if h[0].lower() != header[0]]
                headers.append(header)
                message = {**message, "headers": headers}
            await send(message)

        route: str | None = None
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:  # noqa: BLE001 - the last resort: answer and log, never leak
                status = 500
                if not response_started:
                    # Answer first: rendering a traceback must not keep the caller waiting.
                    await error_response(
                        500,
                        "internal_error",
                        "the server failed while handling this request; nothing about it "
                        f"was committed unless its state says so. Quote request id {request_id} "
                        "to the operators",
                        {REQUEST_ID_HEADER: request_id},
                    )(scope, receive, send)
                _errors.error(
                    "unhandled_error",
                    method=method,
                    route=(route := route_template(self.routes(), pristine)),
                    error_type=type(exc).__name__,
                    exc_info=exc,
                )
            finally:
                elapsed = time.perf_counter() - started
                if route is None:
                    route = route_template(self.routes(), pristine)
                self.metrics.observe(method, route, status, elapsed)
                _access.info(
                    "http_request",
                    method=method,
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
