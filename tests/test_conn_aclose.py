"""A library's truthful close of a fast-start conn (docs/PROTOCOL.md 16.4, the close).

``await conn.close()`` swallowed fast start's close error: a program that wrote its data
and closed a conn whose peer was lost before it acknowledged the tail heard nothing and
believed the data arrived (pipe mode reported it since stop 37, the library did not).
Now ``await conn.aclose()`` (and ``async with conn:`` leaving cleanly, and
``conn.wait_closed()``) raise :class:`UnconfirmedDataError`; ``close()`` still never
raises. Real peers through a real server on loopback: the lost peer is played by hand
(its ``HELLO``, its ``EOF``, then a reset and no ``ACK``), the good one is a library peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from rdv_core import AddrSpace, Client, Conn, PickFirst, UnconfirmedDataError
from rdv_core.faststart import FrameParser, Kind
from rdv_core.faststart._frames import hello_frame, u64_frame

from tests.server_support import RawClient, running_server
from tests.test_readme_examples import _netns_prefix

FAST = [("Rdv-Extensions", "fast-start/1")]
PAYLOAD = os.urandom(65536)


def _client(spaces: AddrSpace = AddrSpace.NONE) -> Client:
    return Client(spaces=spaces, picker=PickFirst(), fast_start=True, timeout=10)


@asynccontextmanager
async def _dialed_to_a_hand_peer(token: str) -> AsyncIterator[tuple[Conn, RawClient]]:
    """Our library dialer, fast start on the relay; the accepter played by hand, which
    sent its HELLO and its EOF and has read our HELLO, our 64 KiB and our EOF (no ACK)."""
    async with running_server("native") as env:
        accepter = await env.request("ACCEPT", token, headers=FAST)
        conn = await _client().dial(f"http://127.0.0.1:{env.port}", token)
        try:
            assert b"fast-start/1" in await accepter.read_head(10)
            assert await accepter.read_exactly(9, 10) == b"CONTINUE\n"
            accepter.send(hello_frame(b"A", os.urandom(16)) + u64_frame(Kind.EOF, 0))
            conn.writer.write(PAYLOAD)
            conn.writer.close()  # the close's wait for the peer's ACK begins
            parser, ended = FrameParser(), False
            async with asyncio.timeout(10):
                while not ended:
                    chunk = await accepter.reader.read(65536)
                    assert chunk, "the dialer's stream ended before its EOF frame"
                    ended = any(f.kind is Kind.EOF for f in parser.feed(chunk))
            yield conn, accepter
        finally:
            conn.writer.transport.abort()
            accepter.writer.transport.abort()


def _reset(peer: RawClient) -> None:
    sock = peer.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.writer.transport.abort()


async def test_aclose_raises_when_the_peer_never_confirmed_the_tail() -> None:
    async with _dialed_to_a_hand_peer("lib-unconfirmed") as (conn, accepter):
        _reset(accepter)  # gone before it acknowledged our bytes
        with pytest.raises(UnconfirmedDataError, match=r"before it confirmed \d+ bytes") as info:
            async with asyncio.timeout(10):
                await conn.aclose()
        assert 0 < info.value.unconfirmed <= len(PAYLOAD) + 4096  # 64 KiB, framing aside
        assert isinstance(info.value, ConnectionResetError)
        with pytest.raises(UnconfirmedDataError):  # asked again, the same answer
            await conn.wait_closed()
        await conn.close()  # the quiet close stays quiet


async def test_async_with_raises_it_too_on_a_clean_exit() -> None:
    async with _dialed_to_a_hand_peer("lib-unconfirmed-with") as (conn, accepter):
        with pytest.raises(UnconfirmedDataError):
            async with asyncio.timeout(10):
                async with conn:
                    _reset(accepter)


@pytest.mark.parametrize("close", ["aclose", "close"])
async def test_a_cancelled_close_leaves_no_socket_waiting_for_the_ack(close: str) -> None:
    """The peer is alive and never acknowledges: the close would wait for ever. A
    timeout around it ends the conn (the peer sees its end) and no task is left (before:
    the relay conn stayed open, waiting for the ACK, after ``close()`` was cancelled)."""
    async with _dialed_to_a_hand_peer(f"lib-cancelled-{close}") as (conn, accepter):
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await getattr(conn, close)()
        async with asyncio.timeout(5):  # the relay passes our end on (section 8)
            with contextlib.suppress(ConnectionResetError):
                while await accepter.reader.read(65536):
                    pass
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {asyncio.current_task()}


@pytest.mark.parametrize(
    ("spaces", "moves"),
    [(AddrSpace.NONE, False), (AddrSpace.LOOPBACK4, True)],
    ids=["relay", "direct"],
)
async def test_aclose_is_quiet_when_the_peer_confirmed_every_byte(
    spaces: AddrSpace, moves: bool
) -> None:
    """On the relay, and across the switch to a direct path on loopback (the close may
    come while the stream moves: it still waits for the ACK, on whichever path)."""
    async with running_server("native") as env:
        url, token = f"http://127.0.0.1:{env.port}", f"lib-delivered-{moves}"
        accepting = asyncio.create_task(_client(spaces).accept(url, token))
        while env.server.stats().lobby == 0:  # noqa: ASYNC110 (polls server state)
            await asyncio.sleep(0.01)
        dialer = await _client(spaces).dial(url, token)
        accepter = await accepting
        assert dialer.upgrader is not None and accepter.upgrader is not None
        payload = PAYLOAD * (16 if moves else 1)  # 1 MiB: still moving at the close
        dialer.writer.write(payload)
        closing = asyncio.create_task(dialer.aclose())
        async with asyncio.timeout(10):
            assert await accepter.reader.read() == payload
            async with accepter:
                pass
            await closing  # no error: the peer acknowledged every byte
        if moves:
            assert dialer.upgrader.direct is not None, "the stream never moved direct"


async def test_a_task_cancelled_inside_async_with_ends_at_once() -> None:
    """Cancelled in its body, ``async with conn`` closed gracefully: with fast start that
    waits for the peer's ACK, so a cancelled task whose peer never confirmed hung in its
    ``__aexit__`` (``task.cancel()`` then ``await task`` never returned). Now a cancelled
    body aborts the conn, as pipe mode does on Ctrl-C (no FIN: it is no end of stream)."""
    async with _dialed_to_a_hand_peer("lib-cancelled-body") as (conn, accepter):
        started = asyncio.Event()

        async def user() -> None:
            async with conn:
                started.set()
                await asyncio.sleep(30)

        task = asyncio.create_task(user())
        await started.wait()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=2)  # (a timeout would cancel it again)
        assert done, "the cancelled task still waits in its async with"
        assert task.cancelled()
        async with asyncio.timeout(2):
            with contextlib.suppress(ConnectionResetError):
                while await accepter.reader.read(65536):
                    pass


def test_aclose_ends_naming_the_silence_when_the_direct_path_goes_dark() -> None:
    """Direct for good (the relay retired), then a blackhole (no RST) while the close
    waits for the ACK: the silence watch stopped at the close, so ``aclose()`` waited for
    TCP's own timeout (about 15 minutes). Now it ends after the silence limit (2 s here,
    docs/PROTOCOL.md 16.10), naming the bytes and the silence. In a fresh namespace."""
    if shutil.which("nft") is None:
        pytest.skip("needs nft")
    result = subprocess.run(
        [*_netns_prefix(), "sh", "-c", 'ip link set lo up && exec "$@"', "sh", sys.executable,
         str(Path(__file__).with_name("conn_close_silent_driver.py"))],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["error"] == (
        "UnconfirmedDataError: the connection to the peer was lost before it confirmed "
        f"{report.get('unconfirmed')} bytes (they may be lost): the direct path went silent for "
        "2 s (no answer from the peer)"
    ), report
    assert 0 < report["unconfirmed"] < 100, report
    assert report["ended_s"] < 6, report
