"""Bodies over 5 MiB are refused with 413, declared or streamed, before the route holds them."""

from __future__ import annotations

import socket
from collections.abc import Iterator

from fastapi import APIRouter, Request

from adapters.http.body_limit import MAX_BODY_BYTES

MIB = 1024 * 1024


def _router(seen: list[int]) -> APIRouter:
    router = APIRouter()

    @router.post("/api/upload")
    async def upload(request: Request) -> dict[str, int]:
        body = await request.body()
        seen.append(len(body))
        return {"bytes": len(body)}

    @router.post("/api/stream")
    async def stream(request: Request) -> dict[str, int]:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
        seen.append(total)
        return {"bytes": total}

    return router


def _app(make_app, seen: list[int]):  # type: ignore[no-untyped-def]
    app = make_app()
    app.include_router(_router(seen))
    return app


def _chunks(total: int, size: int = 256 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        sent += n
        yield b"x" * n


def test_a_body_just_under_the_limit_is_accepted(make_app, serve) -> None:
    seen: list[int] = []
    with serve(_app(make_app, seen)) as client:
        response = client.post("/api/upload", content=b"a" * MAX_BODY_BYTES)
    assert response.status_code == 200
    assert response.json() == {"bytes": MAX_BODY_BYTES}


def test_a_declared_6_mib_body_is_refused_before_the_route_runs(make_app, serve) -> None:
    seen: list[int] = []
    with serve(_app(make_app, seen)) as client:
        response = client.post("/api/upload", content=b"a" * (6 * MIB))
        after = client.get("/healthz")  # the server is still serving
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert "5 MiB" in response.json()["message"]
    assert seen == []
    assert after.status_code == 200
    assert len(response.headers["x-request-id"]) == 32  # refused requests are still traceable


def test_a_chunked_body_without_content_length_is_cut_off_at_the_limit(make_app, serve) -> None:
    seen: list[int] = []
    with serve(_app(make_app, seen)) as client:
        response = client.post("/api/upload", content=_chunks(6 * MIB))
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert seen == []


def test_a_route_streaming_the_body_is_stopped_too(make_app, serve) -> None:
    seen: list[int] = []
    with serve(_app(make_app, seen)) as client:
        response = client.post("/api/stream", content=_chunks(6 * MIB))
        small = client.post("/api/stream", content=_chunks(MIB))
    assert response.status_code == 413
    assert small.status_code == 200
    assert seen == [MIB]


def test_413_is_answered_from_the_headers_alone(make_app, serve) -> None:
    """A client that declares 6 MiB and sends nothing still gets its answer: nothing was awaited."""
    seen: list[int] = []
    with serve(_app(make_app, seen)) as client:
        host, port = client.base_url.host, client.base_url.port
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(
                b"POST /api/upload HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n"
                + f"Content-Length: {6 * MIB}\r\n\r\n".encode()
            )
            data = b""
            while b"body_too_large" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            reply = data.decode("latin-1")
    assert reply.startswith("HTTP/1.1 413")
    assert "body_too_large" in reply
    assert seen == []
