"""Requests Go's net/http refuses before the rdv handler runs, through raw sockets.

A bad percent escape in the path, a target that is neither origin nor absolute form and
an HTTP major version other than 1 never reach the reference's handler: Go writes its
bare public error (status line tail = body, no Content-Length, no newline) and closes the
conn, even on HTTP/1.1 keep-alive. The native front must send those bytes exactly; the
aiohttp front is the user's app, so there only the status, the body and the close are
the protocol's.
"""

from __future__ import annotations

import pytest

from tests.server_support import parse_head, running_server

UPGRADE_HEADERS = b"Host: x\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\nRdv-Self-Addrs: \r\n\r\n"
BAD_REQUEST = "400 Bad Request"
BAD_VERSION = "505 HTTP Version Not Supported: unsupported protocol version"

# (request line, Go's public error); the request asks for keep-alive (HTTP/1.x, no close).
ROWS = [
    pytest.param(b"DIAL /a%zz HTTP/1.1", BAD_REQUEST, id="bad-escape"),
    pytest.param(b"DIAL tok HTTP/1.1", BAD_REQUEST, id="target-without-slash"),
    pytest.param(b"DIAL /tok HTTP/2.0", BAD_VERSION, id="http-2.0"),
]


def go_http_error(public: str) -> bytes:
    return (
        f"HTTP/1.1 {public}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Connection: close\r\n\r\n{public}"
    ).encode()


@pytest.mark.parametrize(("request_line", "public"), ROWS)
async def test_native_answers_like_go_and_closes(request_line: bytes, public: str) -> None:
    async with running_server("native") as env:
        # A second, valid-looking request pipelined behind: Go never reads it.
        pipelined = b"DIAL /next HTTP/1.1\r\n" + UPGRADE_HEADERS
        client = await env.raw(request_line + b"\r\n" + UPGRADE_HEADERS + pipelined)
        try:
            assert await client.read_until_eof() == go_http_error(public)
        finally:
            await client.close()
        assert env.server.stats().lobby == 0


@pytest.mark.parametrize(
    ("request_line", "public"),
    [
        pytest.param(b"DIAL /rdv/a%zz HTTP/1.1", BAD_REQUEST, id="bad-escape"),
        pytest.param(b"DIAL /rdv/tok HTTP/2.0", BAD_VERSION, id="http-2.0"),
    ],
)
async def test_aiohttp_answers_gos_status_and_body_and_closes(
    request_line: bytes, public: str
) -> None:
    async with running_server("aiohttp") as env:
        client = await env.raw(env.with_auth(request_line + b"\r\n" + UPGRADE_HEADERS))
        try:
            data = await client.read_until_eof()
        finally:
            await client.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status, _ = parse_head(head + b"\r\n\r\n")
        assert status == int(public[:3])
        assert body == public.encode()  # and read_until_eof proved the close
        assert env.server.stats().lobby == 0


async def test_aiohttp_target_without_slash_is_refused_by_aiohttp_and_closed() -> None:
    # aiohttp's own parser refuses it before routing, as Go's net/http does.
    async with running_server("aiohttp") as env:
        client = await env.raw(env.with_auth(b"DIAL tok HTTP/1.1\r\n" + UPGRADE_HEADERS))
        try:
            data = await client.read_until_eof()
        finally:
            await client.close()
        status, _ = parse_head(data.partition(b"\r\n\r\n")[0] + b"\r\n\r\n")
        assert status == 400
        assert env.server.stats().lobby == 0


async def test_native_control_byte_in_header_value_is_answered_like_go() -> None:
    # Go's readRequest: badRequestError("invalid header value"), detail included.
    async with running_server("native") as env:
        client = await env.raw(b"DIAL /tok HTTP/1.1\r\nX-Bad: a\x01b\r\n" + UPGRADE_HEADERS)
        try:
            assert await client.read_until_eof() == go_http_error(
                "400 Bad Request: invalid header value"
            )
        finally:
            await client.close()
