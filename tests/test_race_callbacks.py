"""The race's end is synchronous (client/_exchange.py, client/_accepting.py): what it must keep.

``dial()`` and ``accept()`` return in the loop turn of the pick; nothing the race started
may still hold the winner then, and every conn it started is closed or handed over.
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import socket
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

import rdv_core.client._exchange as exchange_module
import rdv_core.client._race as race_module
from rdv_core.client._accepting import ACCEPT_ERROR_PAUSE, Acceptor
from rdv_core.client._client import open_listeners
from rdv_core.client._conn import Conn
from rdv_core.client._pickers import Offers, Picker, PickFirst, WaitForP2P
from rdv_core.client._race import Race
from rdv_core.client._sockets import local_port
from rdv_core.events import Clock, Event, HandshakeFailed, HandshakeOk
from rdv_core.wire import ACCEPT, DIAL, Addr, AddrSpace

from tests.race_support import LOOP, client, exchange, of, pair

T = TypeVar("T")


class RelayAfter(Picker):
    """Takes the relay after a while (the direct conns are up by then)."""

    async def pick(self, offers: Offers[T]) -> T | None:
        await asyncio.sleep(0.1)
        return offers.relay

    def describe(self) -> str:
        return "relay-after"


async def test_the_winner_reads_at_once_relay_and_direct(url: str) -> None:
    """A read right after ``dial()`` returns, in the same loop turn, works.

    The dialer watched the relay with a read of its own until the pick: had that read still
    been pending (its task cancelled but not yet run), the application's first read would
    raise ``RuntimeError: read() called while another coroutine is already waiting``.
    """
    cases = [
        (AddrSpace.NONE, AddrSpace.NONE, None),
        (LOOP, LOOP, None),
        (LOOP, LOOP, PickFirst()),
        # The relay is picked after a wait, the dials long done: the dialer's relay watch
        # was under way then.
        (LOOP, LOOP, RelayAfter()),
    ]
    for spaces, theirs, picker in cases:
        token = f"now-{spaces}-{theirs}-{picker}"

        async def accept_and_write(token: str = token, spaces: AddrSpace = theirs) -> Conn:
            a = await client(spaces=spaces).accept(url, token)
            a.writer.write(b"hello")
            return a

        accepting = asyncio.create_task(accept_and_write())
        await asyncio.sleep(0.05)
        d = await client(spaces=spaces, picker=picker).dial(url, token)
        assert await d.reader.readexactly(5) == b"hello"  # the same turn as the pick
        a = await accepting
        async with d, a:
            await exchange(d, a)


async def test_every_direct_conn_ends_with_an_event_before_dial_returns(url: str) -> None:
    """Handshakes under way at the pick end as ``cancelled`` before ``dial()`` returns."""
    for _ in range(5):
        d_events: list[Event] = []
        a_events: list[Event] = []
        d, a = await pair(url, client(d_events), client(a_events), token="ends")
        n = len(d_events)
        async with d, a:
            await exchange(d, a)
        assert len(d_events) == n  # nothing comes after the return
        for events in (d_events, a_events):
            assert of(events, HandshakeOk)
            for failed in of(events, HandshakeFailed):
                assert failed.reason in ("cancelled", "misdial", "eof", "reset")


def loopback_races() -> tuple[Callable[[str], Race], list[list[socket.socket]]]:
    """Two races (dialer, accepter) on loopback without a server, as in test_race_direct."""
    listeners = {m: open_listeners() for m in (DIAL, ACCEPT)}
    ports = {m: local_port(listeners[m][0]) for m in (DIAL, ACCEPT)}
    ids = itertools.count(1)

    def race(method: str) -> Race:
        other = ACCEPT if method == DIAL else DIAL
        return Race(
            method=method,  # type: ignore[arg-type]
            token="tok",
            spaces=AddrSpace.LOOPBACK,
            picker=WaitForP2P(1.0),
            listeners=listeners[method],
            port=ports[method],
            peer_addrs=[Addr.parse(f"127.0.0.1:{ports[other]}")],
            relay=None,
            clock=Clock(),
            emit=lambda event: None,
            new_id=lambda: next(ids),
        )

    return race, list(listeners.values())


async def test_a_bug_in_a_dial_task_ends_the_race_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As a TaskGroup did: the error comes out of run() at once (not a hang until the timeout)."""

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the dialer")

    monkeypatch.setattr(race_module, "dial_candidate", broken)
    race, _ = loopback_races()
    with pytest.raises(RuntimeError, match="a bug in the dialer"):
        await asyncio.wait_for(race(DIAL).run(), 5)


async def test_a_bug_in_a_reader_callback_ends_the_race_with_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A callback's error would only be logged by the loop: the race raises it instead."""

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in the line check")

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()  # our header line
        writer.write(b"rdv/1 ACCEPT tok\n")  # checked in the dialer's reader callback
        await reader.read()
        writer.close()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(exchange_module, "check_header_line", broken)
    listeners = open_listeners()
    race = Race(
        method=DIAL,
        token="tok",
        spaces=AddrSpace.LOOPBACK,
        picker=WaitForP2P(1.0),
        listeners=listeners,
        port=local_port(listeners[0]),
        peer_addrs=[Addr.parse(f"127.0.0.1:{port}")],
        relay=None,
        clock=Clock(),
        emit=lambda event: None,
        new_id=itertools.count(1).__next__,
    )
    try:
        with pytest.raises(RuntimeError, match="a bug in the line check"):
            await asyncio.wait_for(race.run(), 5)
    finally:
        server.close()
    assert all(s.fileno() < 0 for s in listeners)  # the race closed them


async def test_a_failed_accept_pauses_then_accepts_again() -> None:
    """EMFILE and friends: the listener rests ACCEPT_ERROR_PAUSE, still counted as accepting."""

    class Flaky(socket.socket):
        failures = 1

        def accept(self) -> tuple[socket.socket, Any]:
            if self.failures:
                self.failures -= 1
                raise OSError(errno.EMFILE, "Too many open files")
            return super().accept()

    listener = Flaky(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    got: list[socket.socket] = []
    crashes: list[BaseException] = []
    acceptor = Acceptor([listener], lambda sock, _: got.append(sock), crashes.append)
    peer = socket.create_connection(listener.getsockname())
    try:
        await asyncio.sleep(ACCEPT_ERROR_PAUSE / 2)
        assert not got and acceptor.active  # resting, not done
        await asyncio.sleep(ACCEPT_ERROR_PAUSE * 2)
        assert len(got) == 1 and not got[0].getblocking() and not crashes
        acceptor.stop()
        assert not acceptor.active
    finally:
        acceptor.stop()
        for sock in (peer, listener, *got):
            sock.close()
