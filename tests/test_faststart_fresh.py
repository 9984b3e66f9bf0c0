"""Fast start's fresh port pairs (docs/PROTOCOL.md section 16.5): the PORT exchange between
a dialer and an accepter, on real listening sockets, and the precise wait before the dials."""

from __future__ import annotations

import asyncio
import socket
import time

from rdv_core.client._client import open_listeners
from rdv_core.client._fresh import FreshPorts, sleep_until
from rdv_core.client._sockets import local_port
from rdv_core.faststart import FrameParser, Kind


def _frame_of(raw: bytes) -> tuple[int, int]:
    (frame,) = FrameParser().feed(raw)
    assert frame.kind == Kind.PORT
    return frame.value, frame.path


def _is_open(sock: socket.socket) -> bool:
    return sock.fileno() != -1


async def test_both_sides_open_fresh_ports_and_learn_each_others() -> None:
    shared = open_listeners()  # stands for the shared port P
    dialer: FreshPorts
    accepter: FreshPorts

    def to_accepter(raw: bytes) -> None:
        attempt, port = _frame_of(raw)
        accepter.on_offer(attempt, port, direct_allowed=True)

    def to_dialer(raw: bytes) -> None:
        dialer.on_answer(*_frame_of(raw))

    dialer = FreshPorts(open_listeners, to_accepter)
    accepter = FreshPorts(open_listeners, to_dialer)
    try:
        pair = await dialer.offer(2)
        assert not isinstance(pair, str), pair
        ours, peer_port = pair
        waiting = accepter.take(2)
        assert waiting is not None
        theirs, dialer_port = waiting
        assert dialer_port == local_port(ours[0]) and peer_port == local_port(theirs[0])
        ports = {local_port(shared[0]), dialer_port, peer_port}
        assert len(ports) == 3, "every attempt gets its own port on each side"
        assert all(_is_open(s) for s in ours + theirs)
        assert accepter.take(2) is None  # taken once
        # A later offer replaces a pair that never raced; close() reaps what is left.
        later = [await dialer.offer(k) for k in (3, 4)]
        assert accepter.take(3) is None
        fourth = accepter.take(4)
        assert fourth is not None
        later.append(await dialer.offer(5))
        accepter.drop(5)
        assert accepter.take(5) is None
        later.append(await dialer.offer(6))  # left waiting: close() below
        for sock in ours + theirs + fourth[0]:
            sock.close()
        for offered in later:
            assert not isinstance(offered, str)
            for sock in offered[0]:
                sock.close()
    finally:
        accepter.close()
        for sock in shared:
            sock.close()


async def test_an_accepter_without_direct_spaces_answers_no_port() -> None:
    dialer: FreshPorts
    sent: list[bytes] = []

    def to_accepter(raw: bytes) -> None:
        attempt, port = _frame_of(raw)
        accepter.on_offer(attempt, port, direct_allowed=False)

    def to_dialer(raw: bytes) -> None:
        sent.append(raw)
        dialer.on_answer(*_frame_of(raw))

    dialer = FreshPorts(open_listeners, to_accepter)
    accepter = FreshPorts(open_listeners, to_dialer)
    assert await dialer.offer(2) == "the peer announced no fresh port"
    assert [_frame_of(raw) for raw in sent] == [(2, 0)]
    assert accepter.take(2) is None


async def test_sleep_until_is_never_early() -> None:
    loop = asyncio.get_running_loop()
    for wait in (0.0, 0.0003, 0.004):
        when = time.perf_counter() + wait
        await sleep_until(when)
        assert time.perf_counter() >= when
    ticked: list[bool] = []
    loop.call_soon(ticked.append, True)
    await sleep_until(time.perf_counter() + 0.01)  # the coarse part yields to the loop
    assert ticked == [True]
