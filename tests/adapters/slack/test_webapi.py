"""The card calls' HTTP client against real loopback servers: the Slack stand-in, and one that frames answers every legal way."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from adapters.slack.webapi import WebApiClient, WebApiError

Answer = Callable[[bytes], Awaitable[bytes | None]]  # request body -> raw answer (None: close without answering)


class RawServer:
    """A loopback HTTP/1.1 server whose every answer is written by the test, byte for byte."""

    def __init__(self, answer: Callable[[int, bytes], bytes | None], *, close_after_answer: bool = False) -> None:
        self.answer = answer
        self.close_after_answer = close_after_answer
        self.connections = 0
        self.requests: list[tuple[str, dict[str, str], bytes]] = []

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/api/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                lines = head.decode().split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers["content-length"]))
                self.requests.append((lines[0], headers, body))
                raw = self.answer(len(self.requests), body)
                if raw is None:
                    return
                writer.write(raw)
                await writer.drain()
                if self.close_after_answer:
                    return
        finally:
            writer.close()


def ok_json(data: dict[str, Any], extra: str = "") -> bytes:
    body = json.dumps(data).encode()
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s" % (extra.encode(), len(body), body)


def client(url: str, **kw: Any) -> WebApiClient:
    return WebApiClient(url, "xoxb-test", user_agent="gitops-health-test", **kw)


async def test_calls_reuse_one_connection_and_send_the_token_and_json():
    async with RawServer(lambda n, body: ok_json({"ok": True, "n": n})) as server:
        api = client(server.url)
        answers = [await api.call("chat.update", {"channel": "C1", "ts": "1.2", "text": "é"}) for _ in range(3)]
        await api.close()
    assert [a.data["n"] for a in answers] == [1, 2, 3] and answers[0].status == 200
    assert server.connections == 1
    line, headers, body = server.requests[0]
    assert line == "POST /api/chat.update HTTP/1.1"
    assert headers["authorization"] == "Bearer xoxb-test" and headers["content-type"].startswith("application/json")
    assert json.loads(body) == {"channel": "C1", "ts": "1.2", "text": "é"}


async def test_chunked_and_connection_delimited_answers_are_read_whole():
    chunked = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"ok\r\nb;x=y\r\n": true, "c\r\n6\r\nh": 1}\r\n0\r\n\r\n'
    async with RawServer(lambda n, body: chunked) as server:
        api = client(server.url)
        first, second = await api.call("chat.postMessage", {}), await api.call("chat.postMessage", {})
        await api.close()
    assert first.data == second.data == {"ok": True, "ch": 1} and server.connections == 1

    delimited = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"ok": true, "ts": "9.9"}'
    async with RawServer(lambda n, body: delimited, close_after_answer=True) as server:
        api = client(server.url)
        answers = [await api.call("chat.postMessage", {}) for _ in range(2)]
        await api.close()
    assert [a.data["ts"] for a in answers] == ["9.9", "9.9"] and server.connections == 2


async def test_a_connection_the_server_closed_while_idle_is_replaced_without_losing_the_call():
    async with RawServer(lambda n, body: ok_json({"ok": True, "n": n}, "Connection: keep-alive\r\n"), close_after_answer=True) as server:
        api = client(server.url)
        first = await api.call("chat.update", {})
        await asyncio.sleep(0.05)  # the server has closed the pooled connection by now
        second = await api.call("chat.update", {})
        await api.close()
    assert (first.data["n"], second.data["n"]) == (1, 2) and server.connections == 2


async def test_a_post_is_never_sent_twice_when_a_pooled_connection_dies_after_taking_it():
    """The server reads the second request and closes without answering: it may have posted the card. chat.update is
    sent again on a fresh connection (the same text twice changes nothing); chat.postMessage is not (a second card)."""

    def answer(n: int, body: bytes) -> bytes | None:
        return None if n == 2 else ok_json({"ok": True, "n": n}, "Connection: keep-alive\r\n")

    async with RawServer(answer) as server:
        api = client(server.url)
        await api.call("chat.postMessage", {"text": "card 1"})
        with pytest.raises(WebApiError, match="may have reached Slack, so it is not sent again"):
            await api.call("chat.postMessage", {"text": "card 2"})
        await api.close()
    assert [json.loads(body)["text"] for _, _, body in server.requests] == ["card 1", "card 2"]

    async with RawServer(answer) as server:
        api = client(server.url)
        await api.call("chat.update", {"text": "v1"})
        again = await api.call("chat.update", {"text": "v2"})
        await api.close()
    assert again.data["n"] == 3 and [json.loads(body)["text"] for _, _, body in server.requests] == ["v1", "v2", "v2"]


async def test_a_pooled_connection_the_server_closed_is_dropped_before_a_post_is_written_to_it():
    async with RawServer(lambda n, body: ok_json({"ok": True, "n": n}, "Connection: keep-alive\r\n"), close_after_answer=True) as server:
        api = client(server.url)
        first = await api.call("chat.postMessage", {"text": "card 1"})
        await asyncio.sleep(0.05)  # the server has closed the pooled connection by now
        second = await api.call("chat.postMessage", {"text": "card 2"})
        await api.close()
    assert (first.data["n"], second.data["n"]) == (1, 2) and server.connections == 2 and len(server.requests) == 2


async def test_errors_and_rate_limits_come_back_with_their_status_and_retry_after():
    limited = b'HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 37\r\n\r\n{"ok": false, "error": "ratelimited"}'
    async with RawServer(lambda n, body: limited) as server:
        api = client(server.url)
        answer = await api.call("chat.update", {})
        await api.close()
    assert (answer.status, answer.headers["retry-after"], answer.data["error"]) == (429, "7", "ratelimited")


async def test_no_answer_garbage_or_silence_is_a_web_api_error():
    async with RawServer(lambda n, body: None) as server:  # closes a fresh connection without answering
        api = client(server.url)
        with pytest.raises(WebApiError, match="without answering"):
            await api.call("chat.update", {})
        await api.close()
    async with RawServer(lambda n, body: b"SSH-2.0-OpenSSH\r\n\r\n") as server:
        api = client(server.url)
        with pytest.raises(WebApiError, match="not an HTTP answer"):
            await api.call("chat.update", {})
        await api.close()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        api = client(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/api/", timeout_s=0.2)
        with pytest.raises(WebApiError, match="no answer within 0.2 s"):
            await api.call("chat.update", {})
        await api.close()
    finally:
        server.close()
    with pytest.raises(ValueError, match="not an http"):
        client("ftp://example.org/api/")


async def test_against_the_loopback_slack_api(slack_api):
    api = client(slack_api.url)
    posted = await api.call("chat.postMessage", {"channel": "C0APPROVALS", "text": "card", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}]})
    updated = await api.call("chat.update", {"channel": posted.data["channel"], "ts": posted.data["ts"], "text": "card 2"})
    await api.close()
    assert posted.data["ok"] and updated.data["ok"]
    (card,) = slack_api.channel_messages("C0APPROVALS")
    assert card["text"] == "card 2"


def _self_signed(tmp_path: Any) -> tuple[str, str]:
    """A certificate for 127.0.0.1 signed by its own key; (cert file, key file)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(cert_file), str(key_file)


async def test_https_verifies_the_server_and_keeps_the_connection(tmp_path):
    import ssl

    cert, key = _self_signed(tmp_path)
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
                await reader.readexactly(length)
                writer.write(ok_json({"ok": True, "ts": "1.1"}))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=served)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/api/"
    try:
        trusted = ssl.create_default_context(cafile=cert)
        api = client(url, ssl_context=trusted)
        answers = [await api.call("chat.postMessage", {"text": "x"}) for _ in range(3)]
        await api.close()
        assert [a.data["ts"] for a in answers] == ["1.1"] * 3 and connections == 1

        untrusting = client(url, timeout_s=2)  # the system's certificates: a self-signed server is refused
        with pytest.raises(WebApiError, match="SSL|certificate"):
            await untrusting.call("chat.postMessage", {"text": "x"})
        await untrusting.close()
    finally:
        server.close()
