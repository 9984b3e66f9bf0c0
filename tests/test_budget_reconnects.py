"""A hostile or flapping server (or HTTP proxy) cannot make the client reconnect in a loop.

docs/PROTOCOL.md sections 17.1 and 18, README "The worst a hostile peer or server can
cause". Counting listeners on loopback stand in for the server and the proxy; each test
runs a real :class:`~rdv_core.Client` with a rejoin policy against them and counts the
conns each one got, and when:

- a server that answers ``503 ... try again`` at once: ``N + 1`` conns, paced by the
  policy's pauses (0.5 s, 1 s, ...), then the error;
- a server that redirects (``307`` with a ``Location`` on another address): one conn to
  it, none to where it points (the client follows no redirect);
- a proxy that opens the tunnel, holds the request and closes it, then refuses every
  ``CONNECT``: ``N + 1`` ``CONNECT`` s, paced the same; a proxy that answers ``CONNECT``
  with an error at once: one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from rdv_core import Client, RejoinPolicy
from rdv_core.errors import RdvError, ServerRejectedError
from rdv_core.session import _connect, connect_session, generate_code
from rdv_core.session._connect import MAX_FRESH_CODES, MAX_REPLACED_RETRIES
from rdv_core.wire import AddrSpace

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


class Counting:
    """A loopback listener that logs when each conn came and runs ``handler`` on it."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.times: list[float] = []
        self.server: asyncio.Server | None = None

    async def start(self, host: str = "127.0.0.1") -> int:
        self.server = await asyncio.start_server(self._conn, host, 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.times.append(time.monotonic())
        try:
            await self.handler(reader, writer, len(self.times))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]


async def _accept(url: str, rejoins: int, proxy: str = "none") -> tuple[BaseException, float]:
    client = Client(
        spaces=AddrSpace.NONE,
        rejoin=RejoinPolicy(rejoins=rejoins),
        proxy=proxy,
        trust_env=False,
        timeout=20,
    )
    started = time.monotonic()
    with pytest.raises(RdvError) as caught:
        await client.accept(url, "flap")
    return caught.value, time.monotonic() - started


async def _shutting_down(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int
) -> None:
    await reader.readuntil(b"\r\n\r\n")
    body = b"rdv server shutting down, try again\n"
    writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: %d\r\n\r\n" % len(body))
    writer.write(body)
    await writer.drain()


async def test_a_server_that_is_always_going_away_gets_n_plus_one_paced_conns() -> None:
    server = Counting(_shutting_down)
    port = await server.start()
    try:
        error, _ = await _accept(f"http://127.0.0.1:{port}", rejoins=1)
    finally:
        server.close()
    assert len(server.times) == 2, server.times
    policy = RejoinPolicy()
    assert all(gap >= policy.pause(n) - 0.01 for n, gap in enumerate(server.gaps(), 1)), (
        server.gaps()
    )
    assert "did not come back: 1 rejoin over" in str(error)


async def test_a_redirect_is_never_followed() -> None:
    elsewhere = Counting(_shutting_down)
    other = await elsewhere.start("127.0.0.2")

    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.2:%d/flap\r\n"
            b"Content-Length: 0\r\n\r\n" % other
        )
        await writer.drain()

    server = Counting(redirect)
    port = await server.start()
    try:
        error, _ = await _accept(f"http://127.0.0.1:{port}", rejoins=6)
    finally:
        server.close()
        elsewhere.close()
    assert (len(server.times), len(elsewhere.times)) == (1, 0), error
    assert "307" in str(error)


async def test_a_flapping_proxy_gets_n_plus_one_paced_connects() -> None:
    async def flapping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"CONNECT ")
        if n > 1:  # the server is gone now, says the proxy
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")  # the rdv request, held
        await asyncio.sleep(0.6)  # past RejoinPolicy.held_s: a lost conn, not an answer

    proxy = Counting(flapping)
    port = await proxy.start()
    try:
        error, _ = await _accept("http://rdv.invalid:80", 1, f"http://127.0.0.1:{port}")
    finally:
        proxy.close()
    assert len(proxy.times) == 2, (proxy.times, error)
    assert proxy.gaps()[0] >= 0.6 + RejoinPolicy().pause(1) - 0.01
    assert "did not come back" in str(error)


async def test_a_proxy_that_refuses_connect_gets_one() -> None:
    async def refusing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    proxy = Counting(refusing)
    port = await proxy.start()
    try:
        error, _ = await _accept("http://rdv.invalid:80", 6, f"http://127.0.0.1:{port}")
    finally:
        proxy.close()
    assert len(proxy.times) == 1, (proxy.times, error)


async def _replaced(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    await reader.readuntil(b"\r\n\r\n")
    body = b"replaced by another conn\n"
    writer.write(b"HTTP/1.1 409 Conflict\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()


async def test_a_session_multiplies_the_streak_by_its_409_retries_and_no_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``rdv receive CODE``: a 409 starts a fresh attempt after a pause, at most
    MAX_REPLACED_RETRIES more, each with its own rejoin streak (PROTOCOL.md 12.1, 18)."""
    monkeypatch.setattr(_connect, "RETRY_PAUSE_S", 0.2)  # (short: the gap matters, not 0.5)

    async def flapping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await (_shutting_down if n % 2 else _replaced)(reader, writer, n)

    server = Counting(flapping)
    port = await server.start()
    policy = RejoinPolicy(rejoins=1, first_s=0.1, max_s=0.1)  # (short: the count matters)
    client = Client(spaces=AddrSpace.NONE, rejoin=policy, trust_env=False)
    try:
        with pytest.raises(ServerRejectedError) as caught:
            await connect_session(
                f"http://127.0.0.1:{port}",
                generate_code(),
                role="receive",
                client=client,
                on_notice=lambda text: None,
            )
    finally:
        server.close()
    assert caught.value.status == 409
    assert len(server.times) == (MAX_REPLACED_RETRIES + 1) * 2, server.times
    # The policy's pause after each 503; RETRY_PAUSE_S after each 409 (it was none: a
    # server answering 409 got the next connect within a millisecond).
    assert all(gap >= policy.first_s - 0.01 for gap in server.gaps()[::2]), server.gaps()
    assert all(gap >= 0.2 - 0.01 for gap in server.gaps()[1::2]), server.gaps()


async def test_a_made_code_comes_back_after_a_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """``rdv send`` (its own code): a 409 (or a squatter) costs the code, and the next
    code's connect waits RETRY_PAUSE_S, at most MAX_FRESH_CODES connects in all."""
    monkeypatch.setattr(_connect, "RETRY_PAUSE_S", 0.2)
    server = Counting(_replaced)
    port = await server.start()
    client = Client(spaces=AddrSpace.NONE, rejoin=RejoinPolicy(rejoins=0), trust_env=False)
    try:
        with pytest.raises(RdvError, match="gave up after"):
            await connect_session(
                f"http://127.0.0.1:{port}",
                None,
                role="send",
                client=client,
                on_notice=lambda text: None,
            )
    finally:
        server.close()
    assert len(server.times) == MAX_FRESH_CODES, server.times
    assert all(gap >= 0.2 - 0.01 for gap in server.gaps()), server.gaps()
