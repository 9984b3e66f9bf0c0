"""How a pipe ends: who ended a relayed pipe (the peer, or the server that relayed it),
and a killed process's conn ending with a reset, never a FIN.

A relayed rdv/1 conn is raw TCP after the ``101`` (docs/PROTOCOL.md section 8): when the
server resets it (shut down, killed), pipe mode said "connection lost: Connection reset by
peer" on one side and "the peer's side probably ended first" on the other, so each user
blamed the other. One TCP connect to the relay's address tells them apart, as for
``rdv send``/``rdv receive`` (``rdv_core.session._relay_check``, section 12.10).
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from rdv_core.client import Conn

#: ``struct linger``: ``{1, 0}`` makes any close of the socket a reset; ``{0, 0}`` is the
#: default (a FIN after what is queued).
_RESET_ON_CLOSE: Final = struct.pack("ii", 1, 0)
_FIN_ON_CLOSE: Final = struct.pack("ii", 0, 0)


class UnsentInput(Exception):
    """The conn ended while our stdin still had bytes for the peer (a classic relay).

    ``reset``: bytes were in flight when it ended (no count of them is known): the relay's
    reset, or a write or half-close that failed on the conn it had closed."""

    def __init__(self, unsent: int, complete: bool, *, reset: bool = False) -> None:
        more = "" if complete else " (at least; stdin had not ended)"
        if reset:
            what = (
                "the relay ended the conn while our stdin was still being sent (the "
                "peer's side probably ended first): the bytes of stdin in flight and after "
                "them were not delivered"
            )
        else:
            what = (
                "the peer's side ended first and the relay closed the conn: "
                f"{unsent} bytes of stdin were not delivered{more}"
            )
        super().__init__(
            f"{what}. A relayed rdv/1 conn may not carry a half-close "
            "(docs/PROTOCOL.md section 8): use --fast-start on both sides, or keep the "
            "peer's stdin open until ours has ended"
        )
        self.unsent, self.reset = unsent, reset


def reset_if_killed(conn: Conn, armed: bool) -> None:
    """``armed``: the conn's socket ends with a TCP RST if this process dies; disarmed
    before an orderly close (a FIN again).

    A plain rdv/1 conn is raw TCP (docs/PROTOCOL.md section 8): the kernel closes a killed
    process's sockets with a FIN, which the peer cannot tell from the end of our stdin, so
    ``kill -9`` of ``rdv dial < disk.iso`` left ``rdv accept > copy.iso`` exiting 0 with a
    cut copy. A half-close (``shutdown``) still sends its FIN: only a close is a reset.
    A fast-start stream hides its sockets (its end is in band, section 16.4): nothing to do.
    """
    transport = conn.writer.transport
    sock = transport.get_extra_info("socket")
    # Not on a transport that is closing: abort()'s reset may still be on its way out.
    if sock is not None and not transport.is_closing():
        with contextlib.suppress(OSError):  # closed already: nothing left to end
            option = _RESET_ON_CLOSE if armed else _FIN_ON_CLOSE
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, option)


async def relay_server_gone(conn: Conn) -> str | None:
    """``the relay server went away (ADDR: why)`` when ``conn`` is on a relay whose server
    no longer answers; None on a direct conn or when the server is still there."""
    if not conn.is_relay:
        return None  # direct: the server carries nothing
    from rdv_core.session._relay_check import relay_gone

    why = await relay_gone(conn.remote_addr)
    return None if why is None else f"the relay server went away ({conn.remote_addr}: {why})"


def lost_text(exc: OSError) -> str:
    """``connection lost: WHY`` for the error that broke the conn, said once.

    asyncio's own errors say it already: a write under a reset conn read
    ``connection lost: Connection lost``.
    """
    why = str(exc.strerror or exc).strip()
    said, _, rest = why.partition("the connection to the peer was lost")
    if not said and rest:  # fast start's close: "... before it confirmed N bytes"
        return f"connection lost{rest}"
    if not why or ("connection" in why.lower() and "lost" in why.lower()):
        return "connection lost"
    return f"connection lost: {why}"
