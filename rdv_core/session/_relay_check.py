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


#: After a connect that went through: how long the conn gets to be reset. A server being
#: killed still completes handshakes for a moment (the kernel closes its conns, ours
#: among the first to notice, before its listening socket), then resets them; a live
#: one waits for a request in silence. Only a lost conn on a relay pays it, once.
SETTLE_S = 0.25
#: The longest :func:`relay_gone` takes: two probes and the wait between them.
CHECK_MAX_S = 2 * PROBE_TIMEOUT_S + SETTLE_S


async def relay_gone(server: Addr, *, again: bool = True) -> str | None:
    """Why the relay server at ``server`` looks gone (``connection refused``), or None
    when it still accepts a TCP connection (then the peer's side ended).

    A connect that went through and is reset within :data:`SETTLE_S` is asked once more:
    the first of the two peers to see a killed server connected to it while it died,
    and read "the peer hung up" where the other read "the relay server went away".
    """
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(str(server.ip), server.port)
    except TimeoutError:
        return f"no answer within {PROBE_TIMEOUT_S:g} s"
    except OSError as exc:
        if isinstance(exc, ConnectionResetError) and again:
            # Reset inside the connect: the handshake went through as the server died (as
            # below, one step earlier). Asked once more, a dead one refuses, as the other
            # peer was told (seen once in a full suite: "connection reset by peer" on one
            # side of test_a_dead_relay_server_is_named_on_both_sides, "refused" on the other).
            return await relay_gone(server, again=False)
        # asyncio's strerror is "Connect call failed ('127.0.0.1', 8080)": the errno says it.
        why = os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
        return why[:1].lower() + why[1:]
    ended = False
    try:
        async with asyncio.timeout(SETTLE_S):
            ended = not await reader.read(1)  # EOF: closed at once
    except TimeoutError:
        pass  # silent: alive, waiting for our request
    except OSError:
        ended = True  # reset: it was dying
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    if ended and again:
        return await relay_gone(server, again=False)
    return None


def relay_lost_text(server: Addr, why: str) -> str:
    """The session's end when the relay server went away."""
    return (
        f"the relay server went away ({server}: {why}); the transfer was cut there, "
        "the peer may still be running"
    )
