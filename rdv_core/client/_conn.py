"""The connection a successful ``dial()`` or ``accept()`` returns."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from rdv_core.events import Event
from rdv_core.wire import Addr

if TYPE_CHECKING:
    from rdv_core.client._upgrade import Upgrader


@dataclass(frozen=True, slots=True)
class Meta:
    """What the rendezvous told us (the Go implementation's ``Meta``).

    Attributes:
        method: ``DIAL`` or ``ACCEPT``.
        token: The token both peers used.
        observed_addr: Our address as the server saw it (None if it did not say).
        self_addrs: The addresses we reported (``Rdv-Self-Addrs``).
        peer_addrs: The peer's candidates the server gave us (``Rdv-Peer-Addrs``).
    """

    method: str
    token: str
    observed_addr: Addr | None
    self_addrs: tuple[Addr, ...]
    peer_addrs: tuple[Addr, ...]


@dataclass(slots=True, eq=False)
class Conn:
    """A TCP connection to the peer, direct (p2p) or through the server's relay.

    Application bytes start right after ``CONTINUE``; any that arrived with it are
    already in :attr:`reader`. Use as ``async with conn:`` (a clean exit raises what
    :meth:`aclose` raises), or call :meth:`aclose` (raises when the end was not clean) or
    :meth:`close` (never raises).

    Attributes:
        reader: Bytes from the peer.
        writer: Bytes to the peer (``write_eof()`` half-closes a direct conn; on the
            relay, an rdv server passes it on, the Go server ends the whole pair at the
            first EOF: docs/PROTOCOL.md section 8).
        is_relay: True when the bytes go through the server.
        local_addr: Our end of the TCP connection.
        remote_addr: The peer's end (the server's address for the relay).
        meta: What the rendezvous told us.
        events: Every event of the attempt, in order.
        elapsed_s: Seconds from the start of the attempt to the pick.
        upgrader: With fast start (docs/PROTOCOL.md section 16), what moves the conn
            from the relay to a direct path; ``is_relay`` and the addresses follow it.
    """

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    is_relay: bool
    local_addr: Addr
    remote_addr: Addr
    meta: Meta
    events: list[Event] = field(default_factory=list)
    elapsed_s: float = 0.0
    upgrader: Upgrader | None = None

    async def close(self) -> None:
        """Close the connection and wait until its sockets are released; never raises.

        Whether the close was clean (with fast start: whether the peer confirmed every
        byte we wrote) is not said here: use :meth:`aclose`, or :meth:`wait_closed`
        after this.
        """
        self.writer.close()
        with contextlib.suppress(OSError):
            # wait_closed re-raises the error that killed the transport, if any: the conn
            # is gone either way.
            await self._wait_closed()

    async def aclose(self) -> None:
        """Close the connection, wait until it is closed, and raise if the end was not clean.

        Raises:
            UnconfirmedDataError: fast start (docs/PROTOCOL.md 16.4): the connection to
                the peer was lost before it acknowledged our last bytes (``unconfirmed``
                of them), so they may never have arrived. Also a ``ConnectionResetError``.
            OSError: the error that broke the connection (a reset, a timeout), if any.
        """
        self.writer.close()
        await self._wait_closed()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (after :meth:`close`, or the peer's end);
        raises what :meth:`aclose` raises, as ``asyncio.StreamWriter.wait_closed`` does."""
        await self._wait_closed()

    async def _wait_closed(self) -> None:
        try:
            await self.writer.wait_closed()
        except asyncio.CancelledError:
            # A fast-start close waits for the peer's ACK: cancelled (a timeout around
            # the close), it must leave no socket or task behind waiting for it.
            self.writer.transport.abort()
            raise

    async def __aenter__(self) -> Conn:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # As a file's ``with`` block: a clean body ends with a truthful close (its error,
        # if any, is raised: the bytes written may not have arrived); after an error, the
        # body's error is the one the caller hears.
        if exc_type is None:
            await self.aclose()
            return
        if not issubclass(exc_type, Exception):
            # Cancelled (or interrupted): no end of stream, and nothing may wait for the
            # peer (fast start's close waits for its ACK: the cancelled task hung here).
            self.writer.transport.abort()
        await self.close()

    def __repr__(self) -> str:
        kind = "relay" if self.is_relay else "p2p"
        return f"<rdv Conn {kind} {self.local_addr} -> {self.remote_addr}>"
