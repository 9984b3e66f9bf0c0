"""docs/PROTOCOL.md section 3: every server check before the upgrade, through raw sockets.

Each row runs through both fronts. The native front must match the reference bytes
(vectors/go-v0.0.6-wire.md) exactly, Date aside; the aiohttp front is the user's app,
so only the status and body are the protocol's.
"""

from __future__ import annotations

import pytest

from tests.server_support import Env, normalize_date, parse_head, running_server


def plain(status: int, reason: str, body: str, version: str = "HTTP/1.1") -> bytes:
    data = body.encode()
    return (
        f"{version} {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"X-Content-Type-Options: nosniff\r\nDate: X\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode() + data


TOO_MANY = ", ".join(f"10.0.0.{i}:1000" for i in range(1, 11))

# (request bytes with a /path target, status, body), from the reference's answers.
ROWS = [
    pytest.param(
        b"GET /tok HTTP/1.1\r\nHost: 127.0.0.1:18080\r\n\r\n",
        426,
        "invalid rdv upgrade: requires connection upgrade\n",
        id="no-connection-upgrade",
    ),
    pytest.param(
        b"DIAL /tok HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n\r\n",
        426,
        "invalid rdv upgrade: missing upgrade header\n",
        id="missing-upgrade",
    ),
    pytest.param(
        b"DIAL /tok HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: \r\n\r\n",
        426,
        "invalid rdv upgrade: missing upgrade header\n",
        id="empty-upgrade",
    ),
    pytest.param(
        b"DIAL /tok HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n"
        b"Upgrade: websocket\r\n\r\n",
        426,
        "invalid rdv upgrade: bad upgrade websocket\n",
        id="upgrade-websocket",
    ),
    pytest.param(
        b"DIAL /tok HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: keep-alive, Upgrade\r\n"
        b"Upgrade: rdv/1\r\n\r\n",
        426,
        "invalid rdv upgrade: requires connection upgrade\n",
        id="connection-keep-alive-upgrade",
    ),
    pytest.param(
        b"GET /tok HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n"
        b"Upgrade: rdv/1\r\nRdv-Self-Addrs: \r\n\r\n",
        400,
        "unknown rdv method [GET]\n",
        id="method-get",
    ),
    pytest.param(
        b"DIAL / HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n"
        b"Rdv-Self-Addrs: \r\n\r\n",
        400,
        "missing rdv token\n",
        id="empty-token",
    ),
    pytest.param(
        b"DIAL /tok-bad-self HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n"
        b"Upgrade: rdv/1\r\nRdv-Self-Addrs: foo\r\n\r\n",
        400,
        "invalid self addrs [foo]\n",
        id="bad-self-addrs",
    ),
    pytest.param(
        b"DIAL /tok-tc HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n"
        b"Upgrade: rdv/1\r\nRdv-Self-Addrs: 1.2.3.4:5,\r\n\r\n",
        400,
        "invalid self addrs [1.2.3.4:5,]\n",
        id="self-addrs-trailing-comma",
    ),
    pytest.param(
        b"DIAL /tok-many HTTP/1.1\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n"
        b"Upgrade: rdv/1\r\nRdv-Self-Addrs: " + TOO_MANY.encode() + b"\r\n\r\n",
        400,
        f"too many self addrs [{TOO_MANY}]\n",
        id="ten-self-addrs",
    ),
]


@pytest.mark.parametrize(("request_bytes", "status", "body"), ROWS)
async def test_rejected_request_rows(
    env: Env, request_bytes: bytes, status: int, body: str
) -> None:
    client = await env.raw(env.with_auth(env.raw_path(request_bytes)))
    got_status, headers, got_body = await client.read_response()
    assert (got_status, got_body.decode()) == (status, body)
    assert headers["content-type"] == "text/plain; charset=utf-8"
    if env.kind == "native":
        # Byte for byte as the reference, and the conn stays open (keep-alive).
        raw = normalize_date(
            plain(status, {400: "Bad Request", 426: "Upgrade Required"}[status], body)
        )
        client2 = await env.raw(request_bytes)
        assert normalize_date(await client2.read_for(0.3)) == raw
        await client2.close()
    assert env.server.stats().rejects_by_status[status] >= 1
    await client.close()


async def test_native_keeps_the_conn_alive_after_plain_answers() -> None:
    async with running_server("native") as env:
        client = await env.raw(b"GET /tok HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = await client.read_response()
        assert status == 426
        # Same conn: a valid rdv request now enters the lobby.
        client.send(
            b"ACCEPT /tok HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n\r\n"
        )
        await env.wait_lobby(1)
        assert await client.read_for(0.1) == b""


async def test_http10_gets_426_and_close(env: Env) -> None:
    request = (
        b"DIAL /tok HTTP/1.0\r\nHost: 127.0.0.1:18080\r\nConnection: upgrade\r\n"
        b"Upgrade: rdv/1\r\nRdv-Self-Addrs: \r\n\r\n"
    )
    client = await env.raw(env.with_auth(env.raw_path(request)))
    data = await client.read_until_eof()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 426 ")
    assert body == b"invalid rdv upgrade: bad http version for upgrade HTTP/1.0\n"
    if env.kind == "native":
        assert normalize_date(data) == normalize_date(
            plain(
                426,
                "Upgrade Required",
                "invalid rdv upgrade: bad http version for upgrade HTTP/1.0\n",
                "HTTP/1.0",
            )
        )


async def test_native_missing_host_is_answered_like_go() -> None:
    async with running_server("native") as env:
        client = await env.raw(
            b"DIAL /tok HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n\r\n"
        )
        assert await client.read_until_eof() == (
            b"HTTP/1.1 400 Bad Request: missing required Host header\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
            b"400 Bad Request: missing required Host header"
        )


async def test_native_lowercase_method() -> None:
    async with running_server("native") as env:
        client = await env.raw(
            b"dial /tok HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n\r\n"
        )
        assert normalize_date(await client.read_for(0.3)) == normalize_date(
            plain(400, "Bad Request", "unknown rdv method [dial]\n")
        )


async def test_native_malformed_request_gets_400_and_close() -> None:
    async with running_server("native") as env:
        client = await env.raw(b"DIAL\r\n\r\n")
        assert await client.read_until_eof() == (
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Connection: close\r\n\r\n400 Bad Request"
        )
        client = await env.raw(b"DIAL /x HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 40000)
        data = await client.read_until_eof()
        assert data.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


async def test_native_prefix_404_and_token_under_prefix() -> None:
    from rdv_core.server._core import RdvServer
    from rdv_core.server._native import start_native

    server = RdvServer()
    front = await start_native(server, prefix="/rdv/")
    try:
        assert front.url.endswith("/rdv")
        env = Env("native", server, front.port, "/rdv")
        client = await env.raw(
            b"DIAL /elsewhere/tok HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n"
            b"Upgrade: rdv/1\r\n\r\n"
        )
        status, _, body = await client.read_response()
        assert (status, body) == (404, b"404 page not found\n")
        lobby_client = await env.request("DIAL", "a b/c")
        await env.wait_lobby(1)
        assert list(server._lobby) == ["a b/c"]
        await lobby_client.close()
    finally:
        await server.close()
        await front.close()


async def test_shut_down_server_answers_503(env: Env) -> None:
    await env.server.close()
    client = await env.request("DIAL", "tok")
    status, _, body = await client.read_response()
    assert (status, body) == (503, b"rdv is closed\n")
    if env.kind == "native":
        client = await env.request("DIAL", "tok")
        assert normalize_date(await client.read_for(0.3)) == normalize_date(
            plain(503, "Service Unavailable", "rdv is closed\n")
        )


ACCEPTED = [
    pytest.param(
        "DIAL /tok-nine HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n"
        "Rdv-Self-Addrs: " + ",".join(f"10.0.0.{i}:1000" for i in range(1, 10)) + "\r\n\r\n",
        "tok-nine",
        id="nine-self-addrs",
    ),
    pytest.param(
        "DIAL /tok-noself HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n\r\n",
        "tok-noself",
        id="no-self-addrs-header",
    ),
    pytest.param(
        "ACCEPT /tok-ci HTTP/1.1\r\nHost: x\r\nconnection: Upgrade\r\nupgrade:  RDV/1 \r\n\r\n",
        "tok-ci",
        id="case-insensitive-values",
    ),
    pytest.param(
        "DIAL /tok-z HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n"
        "Rdv-Self-Addrs: [::ffff:1.2.3.4]:7 ,  [fe80::1%25eth0]:5\r\n\r\n",
        "tok-z",
        id="mapped-and-zone",
    ),
    pytest.param(
        "ACCEPT /x%2Fy%20z HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: rdv/1\r\n\r\n",
        "x/y z",
        id="escaped-token",
    ),
]


@pytest.mark.parametrize(("request_text", "token"), ACCEPTED)
async def test_accepted_requests_wait_silently(env: Env, request_text: str, token: str) -> None:
    client = await env.raw(env.with_auth(env.raw_path(request_text.encode())))
    await env.wait_lobby(1)
    assert list(env.server._lobby) == [token]
    assert await client.read_for(0.2) == b""


async def test_native_absolute_form_target() -> None:
    async with running_server("native") as env:
        client = await env.raw(
            b"DIAL http://127.0.0.1:18080/abs-tok HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n"
            b"Upgrade: rdv/1\r\nRdv-Self-Addrs: [fe80::1%eth0]:5\r\n\r\n"
        )
        await env.wait_lobby(1)
        assert list(env.server._lobby) == ["abs-tok"]
        assert await client.read_for(0.1) == b""


async def test_native_health_and_metrics() -> None:
    async with running_server("native") as env:
        client = await env.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = await client.read_response()
        assert (status, body) == (200, b"ok\n")
        _waiting = await env.request("ACCEPT", "m")
        await env.wait_lobby(1)
        client.send(
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        status, headers, body = await client.read_response()
        assert status == 200
        assert headers["content-type"].startswith("text/plain; version=0.0.4")
        text = body.decode()
        assert "\nrdv_lobby_peers 1\n" in text
        assert "# TYPE rdv_pairs_total counter" in text
        head = await client.read_head()
        assert parse_head(head)[0] == 200
        assert await client.read_for(0.1) == b""  # HEAD: no body
        await env.server.close()
        client.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = await client.read_response()
        assert (status, body) == (503, b"rdv is closed\n")


async def test_native_enables_tcp_keepalive_on_client_conns() -> None:
    import socket

    async with running_server("native") as env:
        _waiting = await env.request("ACCEPT", "ka")
        await env.wait_lobby(1)
        sock = env.server._lobby["ka"].transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 60
        # On Linux they come from the listeners (set once: server/_keepalive.py).
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 15
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 4
