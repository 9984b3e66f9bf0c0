"""Plain HTTP sent to rdv's TLS port is answered with a plain ``400`` naming ``https://``.

Go's net/http (``Client sent an HTTP request to an HTTPS server.``) and nginx (``The plain
HTTP request was sent to HTTPS port``) answer so; rdv's TLS front closed the conn without a
byte, so ``curl http://`` printed ``Empty reply from server`` and ``rdv dial http://``
guessed "(if it serves TLS, use https://)". The front now peeks at the first byte before
the TLS wrap (docs/PROTOCOL.md section 3), the client and the doctor read that ``400`` as
the URL to use, and Go's close-delimited answer and nginx's page read the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rdv_core.doctor import run_doctor, summary
from rdv_core.errors import ServerConnectError
from rdv_core.events import Event, Rejected
from rdv_core.server._core import RdvServer
from rdv_core.server._native import NativeFront, start_native

from tests.race_support import client
from tests.test_server_tls import make_cert

#: Go's whole answer (net/http server.go, a TLS record header that looks like HTTP).
GO_ANSWER = b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"


@contextlib.asynccontextmanager
async def tls_front(tmp_path: Path, events: list[Event]) -> AsyncIterator[NativeFront]:
    cert, key = make_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = RdvServer(on_event=events.append)
    front = await start_native(server, host="127.0.0.1", port=0, ssl=context, prefix="/rdv")
    try:
        yield front
    finally:
        await front.close()
        await server.close()


async def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on a fresh conn and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        return await asyncio.wait_for(reader.read(), 20)
    finally:
        writer.close()


async def test_plain_http_gets_a_400_naming_the_https_url(tmp_path: Path) -> None:
    events: list[Event] = []
    async with tls_front(tmp_path, events) as front:
        answer = await exchange(
            front.port, f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\n\r\n".encode()
        )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    assert b"\r\nConnection: close\r\n" in head
    assert (
        body
        == (
            f"Client sent an HTTP request to an HTTPS server: use https://127.0.0.1:{front.port}"
            "/healthz\n"
        ).encode()
    )
    assert f"Content-Length: {len(body)}".encode() in head
    rejected = [e for e in events if isinstance(e, Rejected)]
    assert [(e.status, e.method) for e in rejected] == [(400, "GET")], rejected
    assert len(front.heads) == 0  # the conn's head slot came back


async def test_a_head_request_gets_no_body_and_odd_input_no_echo(tmp_path: Path) -> None:
    async with tls_front(tmp_path, []) as front:
        head_only = await exchange(front.port, b"HEAD / HTTP/1.0\r\n\r\n")
        garbage = await exchange(front.port, b"G\x00\x01 <script>\r\n\r\n")
        odd_host = await exchange(front.port, b"GET /x HTTP/1.1\r\nHost: <b>\r\n\r\n")
    assert head_only.startswith(b"HTTP/1.0 400 Bad Request\r\n")
    assert head_only.endswith(b"\r\n\r\n"), head_only
    for answer in (garbage, odd_host):
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
        assert answer.endswith(b"Client sent an HTTP request to an HTTPS server: use https://\n")


async def test_an_unfinished_plain_head_holds_a_head_slot_until_answered(tmp_path: Path) -> None:
    # The peek and the plain head count as an unfinished conn (slowloris, _head_slots.py).
    async with tls_front(tmp_path, []) as front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        try:
            writer.write(b"GET / HTTP/1.1\r\n")
            async with asyncio.timeout(20):
                while len(front.heads) != 1:  # noqa: ASYNC110 (polls server state)
                    await asyncio.sleep(0.01)
            writer.write(b"\r\n")
            answer = await asyncio.wait_for(reader.read(), 20)
        finally:
            writer.close()
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        async with asyncio.timeout(20):
            while len(front.heads):  # noqa: ASYNC110 (polls server state)
                await asyncio.sleep(0.01)


async def test_tls_and_a_proxy_header_on_the_tls_port(tmp_path: Path) -> None:
    events: list[Event] = []
    async with tls_front(tmp_path, events) as front:
        # A PROXY header (a balancer set up for it, rdv serve without): a bare close, as
        # the client behind it expects TLS, counted with its reason for the operator.
        try:
            proxied = await exchange(front.port, b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n")
        except ConnectionResetError:  # the header's bytes came after the close
            proxied = b""
        # TLS itself still works after the peek.
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", front.port, ssl=context, server_hostname="localhost"
        )
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        healthy = await asyncio.wait_for(reader.read(), 20)
        writer.close()
    assert proxied == b""
    assert healthy.startswith(b"HTTP/1.1 200 OK\r\n") and healthy.endswith(b"ok\n")
    assert [e.reason for e in events if isinstance(e, Rejected)] == [
        "a PROXY header on the TLS port: terminate TLS at the balancer"
    ]


async def test_the_client_names_the_https_url(tmp_path: Path) -> None:
    async with tls_front(tmp_path, []) as front:
        with pytest.raises(ServerConnectError) as caught:
            await asyncio.wait_for(client().dial(f"http://127.0.0.1:{front.port}/rdv", "tok"), 20)
    assert str(caught.value) == (
        f"the rdv server http://127.0.0.1:{front.port}/rdv speaks TLS (it refused plain "
        f"HTTP): use https://127.0.0.1:{front.port}/rdv"
    )


async def test_the_doctor_names_the_https_url(tmp_path: Path) -> None:
    # It said "the server closed the conn before answering ... (over TLS? then use
    # https://)", and with a close-delimited 400 "could not tell us our address".
    async with tls_front(tmp_path, []) as front:
        report = await run_doctor([f"http://127.0.0.1:{front.port}"])
    assert summary(report) == (
        f"TCP reached the server, but the rdv server http://127.0.0.1:{front.port} speaks TLS "
        f"(it refused plain HTTP): use https://127.0.0.1:{front.port}; nothing was measured."
    )
    assert report.servers[0].tls.value is False


async def _go_like(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(5)  # Go reads the 5 bytes of a record header, then answers
    writer.write(GO_ANSWER)
    await writer.drain()
    writer.close()


async def test_gos_close_delimited_answer_reads_the_same() -> None:
    listener = await asyncio.start_server(_go_like, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ServerConnectError) as caught:
            await asyncio.wait_for(client().dial(f"http://127.0.0.1:{port}", "tok"), 20)
        report = await run_doctor([f"http://127.0.0.1:{port}"])
    finally:
        listener.close()
        await listener.wait_closed()
    url = f"the rdv server http://127.0.0.1:{port} speaks TLS"
    assert str(caught.value).startswith(url), caught.value
    assert summary(report).startswith(f"TCP reached the server, but {url}"), summary(report)


async def _plain_then_tls(tmp_path: Path) -> tuple[bytes, bytes, int]:
    """A plain request's answer, then a TLS request's, and the head slots left."""
    async with tls_front(tmp_path, []) as front:
        plain = await exchange(front.port, b"GET / HTTP/1.1\r\nHost: h:1\r\n\r\n")
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", front.port, ssl=context, server_hostname="localhost"
        )
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        tls = await asyncio.wait_for(reader.read(), 20)
        writer.close()
        await asyncio.sleep(0)
        return plain, tls, len(front.heads)


def test_the_plain_400_on_uvloop(tmp_path: Path) -> None:
    # uvloop works on a duplicate of the descriptor (the front closes its own copy).
    uvloop = pytest.importorskip("uvloop")
    plain, tls, heads = uvloop.run(_plain_then_tls(tmp_path))
    assert plain.endswith(b"Client sent an HTTP request to an HTTPS server: use https://h:1/\n")
    assert tls.startswith(b"HTTP/1.1 200 OK\r\n")
    assert heads == 0
