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
    already in :attr:`reader`. Use as ``async with conn:`` or call :meth:`close`.

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
        """Close the connection and wait until the socket is released."""
        self.writer.close()
        with contextlib.suppress(OSError):
            # wait_closed re-raises the error that killed the transport, if any: the conn
            # is gone either way.
            await self.writer.wait_closed()

    async def __aenter__(self) -> Conn:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        kind = "relay" if self.is_relay else "p2p"
        return f"<rdv Conn {kind} {self.local_addr} -> {self.remote_addr}>"
