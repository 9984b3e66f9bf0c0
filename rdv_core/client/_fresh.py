"""Fresh port pairs for fast start's quick retries, and the precise wait before the dials.

docs/PROTOCOL.md section 16.5. The first upgrade attempt dials from the shared port P,
whose NAT mappings the server saw. Each quick retry dials from a fresh port pair instead:
the dialer opens listeners on a new port and announces it over the relay (``PORT``), the
accepter does the same and answers with its own port, and both race from there, to the
peer's 101 addresses with the port replaced (a port-preserving NAT maps a new local port
to the same public one). So a failed draw, whatever state it left in a router's conntrack
table, cannot decide the next one.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Final

from rdv_core.client._sockets import local_port
from rdv_core.faststart._frames import port_frame

logger = logging.getLogger("rdv.client")

#: asyncio's timers wake up to a millisecond late (epoll's resolution): the last stretch
#: of the RTT/2 wait before the dials spins instead, so both peers' SYNs leave together.
SPIN: Final = 0.002

#: How long the dialer waits for the accepter's PORT answer.
ANSWER_TIMEOUT: Final = 5.0

#: One attempt's fresh port pair: our listeners (their port is ours) and the peer's port.
Fresh = tuple[list[socket.socket], int]
Listen = Callable[[int], list[socket.socket]]
Send = Callable[[bytes], None]


class FreshPorts:
    """Both sides of the ``PORT`` exchange; ``send`` writes a frame on the relay."""

    def __init__(self, listen: Listen, send: Send) -> None:
        self._listen = listen
        self._send = send
        self._answers: dict[int, asyncio.Future[int]] = {}  # dialer: the peer's PORT
        self._waiting: dict[int, Fresh] = {}  # accepter: pairs waiting for SYNC

    async def offer(self, attempt: int) -> Fresh | str:
        """Dialer: open listeners on a fresh port, announce it, wait for the peer's.

        Returns the pair, or why there is none.
        """
        try:
            listeners = self._listen(0)
        except OSError as exc:
            return f"no fresh port: {exc}"
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._answers[attempt] = answer
        self._send(port_frame(attempt, local_port(listeners[0])))
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                peer_port = await answer
        except TimeoutError:
            peer_port = 0
        finally:
            self._answers.pop(attempt, None)
        if not peer_port:
            close_all(listeners)
            return "the peer announced no fresh port"
        return listeners, peer_port

    def on_answer(self, attempt: int, port: int) -> None:
        """Dialer: the accepter's ``PORT`` (0: it has none)."""
        answer = self._answers.get(attempt)
        if answer is not None and not answer.done():
            answer.set_result(port)

    def on_offer(self, attempt: int, port: int, *, direct_allowed: bool) -> None:
        """Accepter: open our own fresh port for ``attempt`` and answer with it."""
        for old in [k for k in self._waiting if k <= attempt]:
            close_all(self._waiting.pop(old)[0])
        ours = 0
        if port and direct_allowed:
            try:
                listeners = self._listen(0)
            except OSError as exc:
                logger.debug("fast start: no fresh port for attempt %d: %s", attempt, exc)
            else:
                self._waiting[attempt] = (listeners, port)
                ours = local_port(listeners[0])
        self._send(port_frame(attempt, ours))

    def take(self, attempt: int) -> Fresh | None:
        """Accepter: the pair of ``attempt`` (its SYNC arrived), if one was agreed."""
        return self._waiting.pop(attempt, None)

    def drop(self, attempt: int) -> None:
        """Accepter: ``attempt`` is over before it raced."""
        pair = self._waiting.pop(attempt, None)
        if pair is not None:
            close_all(pair[0])

    def close(self) -> None:
        """Close every pair still waiting (the stream ended)."""
        for listeners, _ in self._waiting.values():
            close_all(listeners)
        self._waiting.clear()


def close_all(sockets: list[socket.socket]) -> None:
    """Close every socket."""
    for sock in sockets:
        sock.close()


async def sleep_until(when: float) -> None:
    """Sleep until ``time.perf_counter()`` reaches ``when``, to a few microseconds: the
    event loop's timer for the most of it, then spinning (at most :data:`SPIN`)."""
    coarse = when - SPIN - time.perf_counter()
    if coarse > 0:
        await asyncio.sleep(coarse)
    while time.perf_counter() < when:
        pass
