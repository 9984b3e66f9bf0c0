"""The wrong scheme for the server's TLS is said at once, as the URL to use instead.

``https://`` to a plain-HTTP rdv server: the server's head parser waited for a blank line
that a TLS ClientHello never holds, so the client hung until the server's 30 s head
timeout and then printed ``TLS ... failed:`` with nothing after it. The server now answers
the ClientHello's first byte with a 400 (docs/PROTOCOL.md section 3), which the client's
OpenSSL reads as ``wrong version number``. ``http://`` to a TLS server that closes
without a byte (OpenSSL's way): the client names the likely cause.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from rdv_core.doctor import run_doctor, summary
from rdv_core.errors import RdvProtocolError, ServerConnectError
from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native

from tests.race_support import client
from tests.test_server_tls import make_cert


def client_hello() -> bytes:
    """The bytes a real TLS client sends first (Python's OpenSSL, through memory BIOs)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ssl.create_default_context().wrap_bio(incoming, outgoing, server_hostname="x")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


async def test_https_to_a_plain_server_names_the_http_url() -> None:
    front = await start_native(RdvServer(), host="127.0.0.1", port=0, prefix="/rdv")
    try:
        with pytest.raises(ServerConnectError) as caught:
            await client().dial(f"https://127.0.0.1:{front.port}/rdv", "tok")
    finally:
        await front.close()
    assert str(caught.value) == (
        f"the rdv server https://127.0.0.1:{front.port}/rdv does not speak TLS "
        f"(it answered, but not in TLS): use http://127.0.0.1:{front.port}/rdv"
    )


async def test_the_plain_server_answers_a_client_hello_at_once() -> None:
    server = RdvServer()
    front = await start_native(server, host="127.0.0.1", port=0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(client_hello())
        answer = await asyncio.wait_for(reader.read(), 20)  # EOF after it: the conn closed
        writer.close()
    finally:
        await front.close()
        await server.close()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def bare_tls_server(tmp_path: Path) -> asyncio.Server:
    """A TLS server that closes a plain-HTTP conn without a byte, as OpenSSL behind most
    TLS servers does (rdv's own answers a plain 400: tests/test_front_plain_on_tls.py)."""
    cert, key = make_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return await asyncio.start_server(_silent, "127.0.0.1", 0, ssl=context)


async def test_http_to_a_tls_server_suggests_https(tmp_path: Path) -> None:
    listener = await bare_tls_server(tmp_path)
    port = listener.sockets[0].getsockname()[1]
    try:
        with pytest.raises(RdvProtocolError) as caught:
            await client().dial(f"http://127.0.0.1:{port}", "tok")
    finally:
        listener.close()
        await listener.wait_closed()
    assert str(caught.value) == (
        "the server closed the connection before answering (if it serves TLS, use https://)"
    )


async def test_the_doctor_names_the_http_url_too() -> None:
    # It said "TLS failed ([SSL: WRONG_VERSION_NUMBER] ...): check the server's
    # certificate, or the trusted CAs here": no certificate was ever involved.
    server = RdvServer()
    front = await start_native(server, host="127.0.0.1", port=0)
    try:
        report = await run_doctor([f"https://127.0.0.1:{front.port}"])
    finally:
        await front.close()
        await server.close()
    assert summary(report) == (
        f"TCP reached the server, but the rdv server https://127.0.0.1:{front.port} does not "
        f"speak TLS (it answered, but not in TLS): use http://127.0.0.1:{front.port}; nothing "
        "was measured."
    )
    assert "WRONG_VERSION_NUMBER" not in report.finding("filtering").reason


async def test_the_doctor_over_http_to_a_tls_server_suggests_https(tmp_path: Path) -> None:
    # OpenSSL closes the plain conn without a byte; the doctor called that "closed the
    # conn mid-answer" and asked only whether it was an rdv server.
    listener = await bare_tls_server(tmp_path)
    try:
        report = await run_doctor([f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}"])
    finally:
        listener.close()
        await listener.wait_closed()
    assert summary(report) == (
        "TCP reached the server but it answered nothing (GET /.rdv/probes: the server closed "
        "the conn before answering): is it an rdv server (over TLS? then use https://), or "
        "does something between us hold the conn?"
    )
