"""Every error the server answers, in the contract's one JSON shape.

Callers (CI pipelines, monitors, people with curl) get
``{"error": "<code>", "message": "<what was wrong and how to fix it>"}`` for
every failure, whether FastAPI, Starlette or our own routes raised it, so they
never have to parse a framework's default ``{"detail": ...}`` body. Messages
never echo request bodies: a body may carry PHI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = [
    "ApiError",
    "error_body",
    "error_response",
    "install_error_handlers",
    "validation_message",
]


class ApiError(StarletteHTTPException):
    """An error a route (or dependency) raises to answer with the contract shape.

    It subclasses Starlette's HTTPException so FastAPI passes it through body
    parsing and dependency solving untouched instead of turning it into a 400.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status, detail=message, headers=dict(headers or {}) or None)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def error_body(code: str, message: str) -> dict[str, str]:
    return {"error": code, "message": message}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=dict(headers or {}))


# Codes and default messages for errors raised by the framework itself (routing,
# method matching) rather than by our routes.
_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the request could not be understood; check its syntax and headers"),
    401: ("unauthorized", "the request is not authenticated; sign it as CONTRACTS.md describes"),
    403: ("forbidden", "this caller may not do that"),
    409: ("conflict", "the request conflicts with the current state; fetch it and retry"),
    413: ("body_too_large", "the request body is over 5 MiB; send a smaller body"),
    415: ("unsupported_media_type", "send the body as application/json"),
    503: ("unavailable", "the service is not ready; retry later"),
}


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    status = exc.status_code
    headers = dict(exc.headers or {})
    if isinstance(exc, ApiError):
        return error_response(status, exc.code, exc.message, headers)
    if status == 404:
        return error_response(
            404,
            "not_found",
            f"no resource at {request.url.path}; check the path "
            "(the API is described at /openapi.json)",
            headers,
        )
    if status == 405:
        allowed = headers.get("Allow") or headers.get("allow") or ""
        hint = f"use one of: {allowed}" if allowed else "see /openapi.json for the allowed methods"
        return error_response(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed on {request.url.path}; {hint}",
            headers,
        )
    code, default = _DEFAULTS.get(status, ("http_error", "the request failed"))
    detail = exc.detail if isinstance(exc.detail, str) else ""
    # Starlette's default details are just the reason phrase; ours say how to fix.
    message = detail if detail and detail not in _REASON_PHRASES else default
    return error_response(status, code, message, headers)


_REASON_PHRASES = {
    "Bad Request",
    "Unauthorized",
    "Forbidden",
    "Not Found",
    "Method Not Allowed",
    "Conflict",
    "Content Too Large",
    "Request Entity Too Large",
    "Unsupported Media Type",
    "Service Unavailable",
}


def _field_path(loc: Sequence[Any]) -> str:
    """``("body", "votes", 0, "person")`` -> ``votes[0].person``."""
    parts = list(loc)
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        where = parts.pop(0)
        if not parts:
            return "body" if where == "body" else where
        if where != "body":
            parts[0] = f"{where} parameter {parts[0]}"
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def validation_message(errors: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
    """Turn pydantic/FastAPI errors into (code, message) naming each field path.

    Only ``loc`` and ``msg`` are used: ``input`` is the caller's data and may
    hold PHI, so it is never echoed back.
    """
    for err in errors:
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            loc = list(err.get("loc") or ())
            pos = loc[1] if len(loc) > 1 else None
            where = f" at character {pos}" if isinstance(pos, int) else ""
            reason = ctx.get("error") or "malformed JSON"
            return (
                "bad_json",
                f"the body is not valid JSON ({reason}{where}); send a JSON object "
                "with Content-Type: application/json",
            )
    problems = []
    for err in errors:
        path = _field_path(err.get("loc") or ())
        msg = str(err.get("msg") or "is invalid")
        if err.get("type") == "missing":
            msg = "is required; add it"
        elif err.get("type") == "extra_forbidden":
            msg = "is not a known field; remove it or check its spelling"
        problems.append(f"{path}: {msg}")
    if not problems:
        problems = ["the body does not match the schema"]
    return "invalid_request", "; ".join(problems) + " (the schema is at /openapi.json)"


_NOT_AN_OBJECT = frozenset({"model_attributes_type", "dict_type", "model_type"})


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    whole_body = [e for e in errors if tuple(e.get("loc") or ()) == ("body",)]
    if whole_body and whole_body[0].get("type") in _NOT_AN_OBJECT:
        content_type = request.headers.get("content-type", "")
        if "json" not in content_type.lower():
            got = f"got {content_type.split(';')[0]!r}" if content_type else "none was given"
            return error_response(
                400,
                "bad_json",
                f"the body must be JSON sent with Content-Type: application/json ({got}); "
                "set the header",
            )
        return error_response(
            400, "invalid_request", "the body must be a JSON object ({...}); see /openapi.json"
        )
    code, message = validation_message(errors)
    return error_response(400, code, message)


async def _starlette_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _http_error(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Make every framework and route error answer in the contract shape.

    Unexpected exceptions (500) are turned into JSON by the request-context
    middleware, which also logs them once, redacted.
    """
    app.add_exception_handler(StarletteHTTPException, _starlette_http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
