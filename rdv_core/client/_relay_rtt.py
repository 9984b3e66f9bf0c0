"""Fast start: the relay's round trip, by ``PING``/``PONG`` (docs/PROTOCOL.md 16.3, 16.5).

The dialer times each upgrade attempt with it, as libp2p DCUtR does: it sends ``SYNC``,
waits half a round trip and dials (:mod:`rdv_core.client._upgrade`). Kept apart from the
upgrader, which only hands this the ``PONG`` frames that come back.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Final

from rdv_core.events import Clock
from rdv_core.faststart import Kind
from rdv_core.faststart._frames import u64_frame

PING_TIMEOUT: Final = 5.0
PINGS: Final = 3


class RelayRtt:
    """Sends ``PING``s on the relay and times their ``PONG``s."""

    def __init__(self, send: Callable[[bytes], None], clock: Clock) -> None:
        self._send = send
        self._clock = clock
        self._pings: dict[int, asyncio.Future[None]] = {}

    async def least(self) -> float | None:
        """The least of a few round trips, one after the other (None: no PONG came).

        A busy peer, or bulk data queued ahead of a ``PING``, inflates single samples,
        and an inflated RTT/2 would send our SYNs late.
        """
        samples = [r for r in [await self.ping() for _ in range(PINGS)] if r is not None]
        return min(samples) if samples else None

    async def ping(self) -> float | None:
        """One round trip in seconds, or None when no ``PONG`` came in time."""
        token = int.from_bytes(os.urandom(4), "big")
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pings[token] = waiter
        sent = self._clock()
        self._send(u64_frame(Kind.PING, token))
        try:
            async with asyncio.timeout(PING_TIMEOUT):
                await waiter
        except TimeoutError:
            return None
        finally:
            self._pings.pop(token, None)
        return self._clock() - sent

    def on_pong(self, token: int) -> None:
        """A ``PONG`` came back: the ping it answers (if still waiting) is done."""
        waiter = self._pings.get(token)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
