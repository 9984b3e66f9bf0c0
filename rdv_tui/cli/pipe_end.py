"""Who ended a relayed pipe: the peer, or the server that relayed it.

A relayed rdv/1 conn is raw TCP after the ``101`` (docs/PROTOCOL.md section 8): when the
server resets it (shut down, killed), pipe mode said "connection lost: Connection reset by
peer" on one side and "the peer's side probably ended first" on the other, so each user
blamed the other. One TCP connect to the relay's address tells them apart, as for
``rdv send``/``rdv receive`` (``rdv_core.session._relay_check``, section 12.10).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rdv_core.client import Conn


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
    if not why or ("connection" in why.lower() and "lost" in why.lower()):
        return "connection lost"
    return f"connection lost: {why}"
