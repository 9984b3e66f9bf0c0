"""Who ended a session on a relay: the peer, or the server that relayed it.

Through a relay, a peer that dies and a server that dies look the same on our conn:
the server's socket ends (a FIN, or a reset), and the session read "the peer hung up".
A user whose server went down then restarted the peer's side, or waited for a peer
that was fine. The one thing that tells them apart is the server itself: if a fresh
TCP connect to the address our relay conn went to is refused (or unanswered), the
server is gone, and the session's end names it (docs/PROTOCOL.md section 12.10).
On a direct conn the server carries nothing: it is never asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from rdv_core.wire import Addr

#: How long the server gets to answer the check: a live one answers a TCP connect in one
#: round trip; only a lost conn on a relay pays it, once.
PROBE_TIMEOUT_S = 2.0


async def relay_gone(server: Addr) -> str | None:
    """Why the relay server at ``server`` looks gone (``connection refused``), or None
    when it still accepts a TCP connection (then the peer's side ended)."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            _, writer = await asyncio.open_connection(str(server.ip), server.port)
    except TimeoutError:
        return f"no answer within {PROBE_TIMEOUT_S:g} s"
    except OSError as exc:
        # asyncio's strerror is "Connect call failed ('127.0.0.1', 8080)": the errno says it.
        why = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
        return why[:1].lower() + why[1:]
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


def relay_lost_text(server: Addr, why: str) -> str:
    """The session's end when the relay server went away."""
    return (
        f"the relay server went away ({server}: {why}); the transfer was cut there, "
        "the peer may still be running"
    )
