"""Refuse request bodies over the limit before they are held in memory.

Pure ASGI so it sees the byte stream: a declared ``Content-Length`` over the
limit is refused before the app runs; a chunked body is counted as it arrives
and cut off the moment it passes the limit, whatever the route does with it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.errors import ApiError, error_response

__all__ = ["MAX_BODY_BYTES", "BodyLimitMiddleware", "BodyTooLarge"]

MAX_BODY_BYTES = 5 * 1024 * 1024


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            "body_too_large",
            f"the request body is over {_human(limit)}; send a smaller body "
            "(split the diff, or drop generated and binary files from it)",
        )


def _human(n: int) -> str:
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    return f"{n} bytes"


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared: int | None = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                break
        if declared is not None and declared < 0:
            response = error_response(
                400,
                "bad_request",
                "the Content-Length header is not a non-negative integer; fix or drop it",
            )
            await response(scope, receive, send)
            return
        if declared is not None and declared > self.max_bytes:
            await error_response(413, "body_too_large", BodyTooLarge(self.max_bytes).message)(
                scope, receive, send
            )
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge(self.max_bytes)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, replaced
            if message["type"] == "http.response.start":
                if exceeded and message.get("status") != 413:
                    # The route turned our error into something else (e.g. a
                    # 400 "could not parse body"); the real cause is the size.
                    replaced = True
                    return
                started = True
            elif replaced:
                return
            await send(message)

        replaced = False
        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await error_response(413, exc.code, exc.message)(scope, receive, send)
            return
        if replaced:
            too_large = BodyTooLarge(self.max_bytes)
            await error_response(413, too_large.code, too_large.message)(scope, receive, send)
