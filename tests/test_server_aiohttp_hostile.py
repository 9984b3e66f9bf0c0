"""The aiohttp mount against hostile clients and cancelled handlers (defects found and fixed).

Once :meth:`RdvServer.admit` took a conn, the core owns it (docs/PROTOCOL.md sections 5 and 8):
aiohttp must write nothing more into it, and the server's own end of a relayed pair is a reset.
Real aiohttp applications on loopback, real sockets.

- a middleware's timeout cancelled the rdv handler of a relayed pair: aiohttp wrote its
  ``HTTP/1.1 504 Gateway Timeout`` into the peer's relayed stream, then a FIN;
- with ``rdv_handler`` (no ``mount``), the app's shutdown ended relayed pairs with a FIN
  after its shutdown timeout (copy relay), or left them relaying after the app was gone
  (splice relay);
- a request with a body: aiohttp's body reader swallowed the bytes and the request waited in
  the lobby, where the native front answers ``400`` (any byte after the head);
- ``Expect: 100-continue``: aiohttp wrote ``HTTP/1.1 100 Continue`` to a lobby conn;
- a lobby conn had aiohttp's TCP keepalive (the kernel's 2 h), not the server's 2 min.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from rdv_core.server._aiohttp import allow_rdv_methods, mount, rdv_handler
from rdv_core.server._core import PairHandler, PeerInfo, RdvServer
from rdv_core.server._keepalive import KEEPALIVE_COUNT, KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S

from tests.server_support import EOF, Env, RawClient, parse_head, rdv_request

SHUTTING_DOWN = b"rdv server shutting down, try again"
IDLE_VIOLATION = b"conn must idle while waiting for response header"


@asynccontextmanager
async def app_with(
    server: RdvServer,
    middlewares: list[Any] | None = None,
    route: Callable[[web.Application, RdvServer], None] | None = None,
    **runner_kwargs: Any,
) -> AsyncIterator[tuple[Env, web.AppRunner]]:
    """An aiohttp app on 127.0.0.1 serving ``server`` at ``/rdv`` (``mount`` by default)."""
    app = web.Application(middlewares=middlewares or [])
    if route is None:
        mount(app, server, "/rdv")
    else:
        route(app, server)
    runner = web.AppRunner(app, **{"shutdown_timeout": 5.0, **runner_kwargs})
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    env = Env("aiohttp", server, runner.addresses[0][1], "/rdv", app_runner=runner)
    try:
        yield env, runner
    finally:
        await server.close()
        await runner.cleanup()


def own_route(app: web.Application, server: RdvServer) -> None:
    """The README's other way: the user routes rdv with ``rdv_handler``, no ``mount``."""
    allow_rdv_methods()
    app.router.add_route("*", "/rdv/{token}", rdv_handler(server, "/rdv"))


@web.middleware
async def deadline(request: web.Request, handler: Any) -> web.StreamResponse:
    """A common middleware: every request gets 0.3 s (aiohttp answers 504 past it)."""
    async with asyncio.timeout(0.3):
        response: web.StreamResponse = await handler(request)
        return response


async def ending(client: RawClient, within: float = 3.0) -> tuple[bytes, str]:
    """Everything the conn receives, and how it ends: ``reset``, ``eof`` or ``open``."""
    got = b""
    try:
        async with asyncio.timeout(within):
            while chunk := await client.reader.read(1 << 20):
                got += chunk
    except ConnectionResetError:
        return got, "reset"
    except TimeoutError:
        return got, "open"
    return got, "eof"


@pytest.mark.parametrize("splice", [False, True], ids=["copy", "splice"])
async def test_a_middleware_timeout_resets_a_relayed_pair(splice: bool) -> None:
    """Before: the accepter read ``helloHTTP/1.1 504 Gateway Timeout...`` then EOF (copy
    relay), or the pair relayed on while aiohttp had counted its request done (splice)."""
    async with app_with(RdvServer(splice=splice), [deadline]) as (env, _):
        dialer, accepter = await env.relayed_pair("slow")
        dialer.send(b"hello")
        assert await accepter.read_exactly(5) == b"hello"
        assert await ending(accepter) == (b"", "reset")
        assert await ending(dialer) == (b"", "reset")
        assert env.server.open_conns == 0


async def test_a_middleware_timeout_answers_a_waiting_request_in_rdv_framing() -> None:
    """The lobby conn is the core's: its end is a section 5 answer, not aiohttp's 504."""
    async with app_with(RdvServer(), [deadline]) as (env, _):
        waiting = await env.request("ACCEPT", "slow")
        await env.wait_lobby(1)
        got = await waiting.read_until_eof()
        assert got.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), got
        assert got.endswith(SHUTTING_DOWN), got
        assert env.server.stats().rejects_by_status == {503: 1}


@pytest.mark.parametrize("splice", [False, True], ids=["copy", "splice"])
async def test_own_route_app_shutdown_resets_relayed_pairs(splice: bool) -> None:
    """``rdv_handler`` without ``mount`` (nothing closes the server on the app's shutdown):
    aiohttp cancels the handlers after twice its shutdown timeout. Before: ``eof`` for
    both (copy relay) or the pair still open after the app was gone (splice)."""
    server = RdvServer(splice=splice)
    async with app_with(server, route=own_route, shutdown_timeout=0.1) as (env, runner):
        dialer, accepter = await env.relayed_pair("pair")
        await runner.cleanup()
        assert await ending(accepter, 2.0) == (b"", "reset")
        assert await ending(dialer, 2.0) == (b"", "reset")
        assert server.open_conns == 0


@pytest.mark.parametrize(
    "framing, body",
    [(b"Content-Length: 5", b"hello"), (b"Transfer-Encoding: chunked", b"5\r\nhello\r\n0\r\n\r\n")],
    ids=["content-length", "chunked"],
)
async def test_a_request_body_is_a_lobby_violation(framing: bytes, body: bytes) -> None:
    """As on the native front, a byte after the head gets the 400 (section 5). Before: the
    body went to aiohttp's body reader and the request waited in the lobby."""
    async with app_with(RdvServer()) as (env, _):
        head = rdv_request("ACCEPT", "/rdv/body")
        client = await env.raw(head[:-2] + framing + b"\r\n\r\n" + body)
        got = await client.read_until_eof()
        assert parse_head(got)[0] == 400 and got.endswith(IDLE_VIOLATION), got
        assert env.server.stats().lobby == 0


def own_route_no_continue(app: web.Application, server: RdvServer) -> None:
    """``rdv_handler`` routed by the user with the exported ``no_continue``, as the README
    says (it was private: a user routing rdv had no way to stop aiohttp's 100)."""
    from rdv_core.server import no_continue

    allow_rdv_methods()
    app.router.add_route(
        "*", "/rdv/{token}", rdv_handler(server, "/rdv"), expect_handler=no_continue
    )


@pytest.mark.parametrize("route", [None, own_route_no_continue], ids=["mount", "rdv_handler"])
async def test_expect_100_continue_gets_no_interim_response(
    route: Callable[[web.Application, RdvServer], None] | None,
) -> None:
    """A lobby conn receives no bytes until its ``101`` (section 8). Before: ``HTTP/1.1 100
    Continue`` at once, written by aiohttp before any middleware."""
    async with app_with(RdvServer(), route=route) as (env, _):
        expect = [("Expect", "100-continue")]
        accepter = await env.request("ACCEPT", "ask", headers=expect)
        await env.wait_lobby(1)
        assert await accepter.read_for(0.2) == b""
        dialer = await env.request("DIAL", "ask", headers=expect)
        assert parse_head(await dialer.read_head())[0] == 101
        assert parse_head(await accepter.read_head())[0] == 101


async def test_handler_cancellation_on_leaves_the_relay_semantics_alone() -> None:
    """aiohttp's ``handler_cancellation=True`` cancels a handler when its conn closes: the
    conn is then gone and the cut does nothing (the half-close still passes on)."""
    async with app_with(RdvServer(), handler_cancellation=True) as (env, _):
        dialer, accepter = await env.relayed_pair("half")
        dialer.half_close()
        assert await accepter.read_for(0.3) == EOF.encode()
        accepter.send(b"after your EOF")
        assert await dialer.read_exactly(14) == b"after your EOF"
        await accepter.close()
        assert await dialer.read_for(1.0) == EOF.encode()
        await env.wait_for(lambda: env.server.open_conns == 0)
        assert env.server.stats().rejects_by_status == {}


async def test_lobby_conns_get_the_servers_tcp_keepalive() -> None:
    """A lobby client whose machine vanished is found out within ~2 minutes, as on the
    native front (section 8). Before: aiohttp's SO_KEEPALIVE with the kernel's timings,
    first probe after 7200 s."""
    async with app_with(RdvServer()) as (env, _):
        _waiting = await env.request("ACCEPT", "ka")
        await env.wait_lobby(1)
        sock = env.server._lobby["ka"].transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == KEEPALIVE_IDLE_S
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == KEEPALIVE_INTERVAL_S
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == KEEPALIVE_COUNT


@pytest.mark.parametrize(
    "headers",
    [[(f"X-Pad-{n}", "v" * 1000) for n in range(17)], [(f"X-{n}", "v") for n in range(101)]],
    ids=["17-KiB", "101-lines"],
)
async def test_a_head_over_the_native_bound_is_refused(headers: list[tuple[str, str]]) -> None:
    """16 KiB or 100 header lines, as on the native front (section 3, row 1). Before: aiohttp
    takes 128 lines of 8190 bytes, and the lobby conn kept them: 100 requests of 960 KiB
    from one address, within its lobby cap, grew the app by 284 MiB."""
    async with app_with(RdvServer()) as (env, _):
        client = await env.request("ACCEPT", "big", headers=headers)
        got = await client.read_until_eof()
        assert parse_head(got)[0] == 431, got[:200]
        assert got.endswith(b"\r\n\r\n431 Request Header Fields Too Large"), got[-200:]
        assert env.server.stats().lobby == 0
        assert env.server.stats().rejects_by_status == {431: 1}
        fits = [(f"X-Pad-{n}", "v" * 1000) for n in range(14)]
        accepter = await env.request("ACCEPT", "fits", headers=fits)
        await env.wait_lobby(1)
        dialer = await env.request("DIAL", "fits")
        assert parse_head(await dialer.read_head())[0] == 101
        assert parse_head(await accepter.read_head())[0] == 101


class SlowMatch(PairHandler):
    """An ``on_match`` hook that decides after the middleware's deadline."""

    def on_match(self, pair_id: int, dialer: PeerInfo, accepter: PeerInfo) -> Awaitable[None]:
        return asyncio.sleep(0.6)


async def test_a_cancelled_handler_while_on_match_decides_answers_both_503() -> None:
    async with app_with(RdvServer(handler=SlowMatch()), [deadline]) as (env, _):
        accepter = await env.request("ACCEPT", "hook")
        await env.wait_lobby(1)
        dialer = await env.request("DIAL", "hook")
        for client in (accepter, dialer):
            got = await client.read_until_eof()
            assert got.startswith(b"HTTP/1.1 503 ") and got.endswith(SHUTTING_DOWN), got
        await env.wait_for(lambda: env.server.open_conns == 0)
        await asyncio.sleep(0.4)  # the hook's late decision writes nothing, raises nothing
        assert env.server.stats().pairs == []
