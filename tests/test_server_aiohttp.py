"""The aiohttp integration: what it leans on in aiohttp is pinned here.

- aiohttp's C parser rejects DIAL/ACCEPT (so the per-connection parser choice is needed);
- with :func:`allow_rdv_methods`, rdv conns get the pure-Python parser, others keep C;
- the takeover with ``transport.set_protocol`` leaves aiohttp's bookkeeping clean;
- rdv sits behind the user's middlewares, next to the user's routes, under a prefix.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import http_parser, web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_exceptions import BadHttpMethod

from rdv_core.server import _aiohttp as front_aiohttp
from rdv_core.server._core import RdvServer

from tests.server_support import AUTH, EOF, Env, rdv_request

# The env fixture (tests/conftest.py) on the aiohttp front only.
pytestmark = pytest.mark.fronts("aiohttp")


#: aiohttp's C parser class, or None: it exists only with the C extension (hence Any).
C_PARSER: Any = getattr(http_parser, "HttpRequestParserC", None)


@pytest.mark.skipif(C_PARSER is None, reason="aiohttp without its C extension")
def test_aiohttp_c_parser_still_rejects_rdv_methods() -> None:
    """Pins the aiohttp behaviour that makes allow_rdv_methods() necessary.

    If this starts failing, aiohttp accepts DIAL/ACCEPT natively and the parser
    swap in rdv_core.server._aiohttp can go.
    """
    loop = asyncio.new_event_loop()
    try:
        protocol = BaseProtocol(loop)  # the parser only stores it (no body here)
        parser = C_PARSER(protocol, loop, 2**16)
        with pytest.raises(BadHttpMethod):
            parser.feed_data(rdv_request("DIAL", "/tok"))
        python_parser = http_parser.HttpRequestParserPy(protocol, loop, 2**16)
        messages, _, _ = python_parser.feed_data(rdv_request("DIAL", "/tok"))
        assert messages[0][0].method == "DIAL"
    finally:
        loop.close()


async def test_mount_installs_the_per_connection_parser(env: Env) -> None:
    from aiohttp import web_protocol

    installed = web_protocol.HttpRequestParser  # type: ignore[attr-defined]
    assert getattr(installed, "_rdv_aware", False)
    front_aiohttp.allow_rdv_methods()  # idempotent
    assert web_protocol.HttpRequestParser is installed  # type: ignore[attr-defined]
    if C_PARSER is not None:
        # rdv's parser class: aiohttp's types do not know its attributes.
        assert getattr(installed, "_default") is C_PARSER  # noqa: B009


async def test_user_routes_and_middleware_around_rdv(env: Env) -> None:
    # The user's own route, on the C parser, behind the middleware.
    client = await env.raw(
        b"GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-secret\r\n\r\n"
    )
    status, _, body = await client.read_response()
    assert (status, body) == (200, b"hello from the app\n")
    # No auth header: the user's middleware answers; rdv never sees the request.
    client = await env.raw(rdv_request("DIAL", "/rdv/tok"))
    status, _, body = await client.read_response()
    assert (status, body) == (401, b"authorization required\n")
    assert env.server.stats().lobby == 0
    assert not [e for e in env.events if e.type == "PeerJoined"]
    # Outside the prefix: the app's 404.
    client = await env.raw(rdv_request("DIAL", "/elsewhere/tok", headers=[AUTH]))
    status, _, _ = await client.read_response()
    assert status == 404


async def test_request_split_into_single_bytes(env: Env) -> None:
    data = rdv_request("ACCEPT", "/rdv/split", headers=[AUTH])
    client = await env.connect()
    for i in range(len(data)):
        client.send(data[i : i + 1])
        await client.writer.drain()
        if i < 12:
            await asyncio.sleep(0.005)
    await env.wait_lobby(1)
    dialer = await env.request("DIAL", "split")
    assert (await client.read_head()).startswith(b"HTTP/1.1 101 ")
    assert (await dialer.read_head()).startswith(b"HTTP/1.1 101 ")


async def test_takeover_leaves_aiohttp_bookkeeping_clean(env: Env) -> None:
    assert env.app_runner is not None and env.app_runner.server is not None
    aio_server = env.app_runner.server
    dialer, accepter = await env.relayed_pair("book")
    assert len(aio_server.connections) == 2  # aiohttp still counts them while relaying
    await dialer.close()
    assert await accepter.read_for(2.0) == EOF.encode()
    await accepter.close()  # the second EOF ends the pair (docs/PROTOCOL.md section 8)
    await env.wait_for(lambda: not aio_server.connections)
    # The handlers returned: no aiohttp task is left waiting.
    await env.wait_for(lambda: len(asyncio.all_tasks()) == 1)


async def test_app_shutdown_closes_rdv() -> None:
    server = RdvServer()
    app = web.Application()
    front_aiohttp.mount(app, server, "rdv")
    runner = web.AppRunner(app, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    env = Env("aiohttp", server, port, "/rdv")
    waiting = await env.request("ACCEPT", "w")
    await env.wait_lobby(1)
    await runner.cleanup()
    assert server.closed
    assert (await waiting.read_until_eof()).endswith(b"rdv server shutting down, try again")


@pytest.mark.parametrize("spaces", ["none", "loopback4"], ids=["relay", "p2p"])
async def test_rdv_clients_through_the_mounted_server(env: Env, spaces: str) -> None:
    """Both halves of rdv together: the project's client, the aiohttp mount, the auth."""
    from rdv_core.client._client import Client
    from rdv_core.client._pickers import WaitForP2P
    from rdv_core.errors import ServerRejectedError
    from rdv_core.wire import parse_spaces

    url = f"http://127.0.0.1:{env.port}/rdv"
    client = Client(spaces=parse_spaces(spaces), picker=WaitForP2P(2.0), timeout=10, headers=[AUTH])
    async with asyncio.timeout(15):
        accepted, dialed = await asyncio.gather(client.accept(url, "e2e"), client.dial(url, "e2e"))
    try:
        assert dialed.is_relay is (spaces == "none")
        dialed.writer.write(b"from the dialer")
        assert await accepted.reader.readexactly(15) == b"from the dialer"
        accepted.writer.write(b"from the accepter")
        assert await dialed.reader.readexactly(17) == b"from the accepter"
    finally:
        await dialed.close()
        await accepted.close()
    stats = env.server.stats()
    assert (stats.relay_total, stats.p2p_total) == ((1, 0) if spaces == "none" else (0, 1))
    # Without the header the user's middleware answers, and the client says so.
    with pytest.raises(ServerRejectedError) as info:
        await Client(spaces=parse_spaces("none"), timeout=5).dial(url, "e2e")
    assert "401" in str(info.value)


def test_parser_choice_survives_calls_before_the_method_is_known() -> None:
    """aiohttp may call pause_reading() etc. while only "DI" has arrived."""
    front_aiohttp.allow_rdv_methods()
    loop = asyncio.new_event_loop()
    try:
        request = rdv_request("DIAL", "/rdv/tok", headers=[AUTH])
        for split in (1, 2, 4, 6):
            parser = front_aiohttp._RdvAwareRequestParser(web.BaseRequest, loop, 2**16)
            assert parser.feed_data(request[:split]) == ([], False, b"")
            parser.feed_data(b"")  # aiohttp re-feeds nothing after a pause
            assert callable(parser.feed_eof)  # chooses the parser before the method is known
            messages, _, _ = parser.feed_data(request[split:])
            assert messages[0][0].method == "DIAL"
            assert messages[0][0].path == "/rdv/tok"
        parser = front_aiohttp._RdvAwareRequestParser(web.BaseRequest, loop, 2**16)
        messages, _, _ = parser.feed_data(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert messages[0][0].method == "GET"
        assert type(parser._impl) is front_aiohttp._RdvAwareRequestParser._default
    finally:
        loop.close()
