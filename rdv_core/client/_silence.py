"""Conns that go silent: noticed in bounded time, not TCP's 15 minutes.

docs/PROTOCOL.md sections 16.10 and 16.11. A path can be blackholed rather than reset (a
NAT mapping expires, Wi-Fi roams, a firewall starts dropping): no RST, no FIN, so TCP only
gives up after its retransmissions (``tcp_retries2``, about 15 minutes), and an idle conn
never. So each conn the application gets (fast start's direct paths and its relay path; a
classic conn, direct or relayed: :func:`guard`) gets kernel keepalive (an idle conn is
probed, the other end's kernel answers) and a watch that asks the kernel, once a second,
how long the other end has left us unanswered
(:func:`~rdv_core.tcpinfo.tcp_unanswered`): in-flight bytes or probes and no ACK
since. Nothing of this is on the wire of the protocol: keepalive probes are TCP's own, and
the one ``PING`` a fast-start switch writes on its new path is 16.3's.

Not ``TCP_USER_TIMEOUT``: on Linux it also ends a conn whose peer answers every
zero-window probe but does not read (measured on 6.18: a reader paused for longer than
the timeout lost its conn), and a receiver piped into a pager does just that.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import socket
from typing import Final

from rdv_core.faststart import RELAY, Kind, MigratingStream
from rdv_core.faststart._frames import u64_frame
from rdv_core.tcpinfo import RTO_MAX_RANGE, cap_backoff, tcp_rtt, tcp_unanswered

#: Before the relay is retired a silent direct path costs nothing to give up (the stream
#: goes back on the relay, replayed from the last ACK: 16.6), so it is given up soon: after
#: :data:`PROOF_RTT_FACTOR` round trips of the slower of the relay and the direct conn, at
#: least :data:`PROOF_FLOOR`. The floor outlasts a lost segment's retransmission on a live
#: path (Linux's RTO is at least 200 ms, 1 s before the first RTT sample) twice over, and
#: the event-loop stalls of a loaded 2-core machine.
PROOF_FLOOR: Final = 3.0
PROOF_RTT_FACTOR: Final = 8
#: Once the relay is retired the direct path is the stream: a silence this long ends it
#: (resume from the verified prefix: docs/PROTOCOL.md 12.7). Longer than a Wi-Fi roam or a
#: mobile handover (a few seconds), 60 times shorter than TCP's own give-up.
SILENCE: Final = 15.0
#: The environment variable that sets another :data:`SILENCE` (seconds, > 0): a path that
#: must ride out longer outages, or a test that should not wait 15 s for each silence.
SILENCE_ENV: Final = "RDV_DIRECT_SILENCE"
#: How often the watch reads the kernel's view (a getsockopt: nothing on the wire).
WATCH_TICK: Final = 1.0
#: Keepalive on an idle direct path: a probe after this much quiet, then one each time
#: as long again (:func:`keepalive_period`: shorter with a shorter limit); a live peer's
#: kernel answers each. Both ends probe (a probe does not reset the other end's timer): 4
#: segments of 52 bytes (IPv4, TCP timestamps) per 5 s, about 42 bytes/s for both
#: directions together, only while nothing else moves. The kernel's own give-up
#: (:data:`KEEPALIVE_COUNT` probes) comes after the silence limit.
KEEPALIVE_IDLE: Final = 5
KEEPALIVE_COUNT: Final = 6


def proof_limit(*rtts: float | None) -> float:
    """The silence that gives a direct path up while the relay still carries the stream."""
    slowest = max((r for r in rtts if r is not None), default=0.0)
    return max(PROOF_FLOOR, PROOF_RTT_FACTOR * slowest)


def silence_limit() -> float:
    """:data:`SILENCE`, or what :data:`SILENCE_ENV` says if it is a number above 0."""
    try:
        value = float(os.environ.get(SILENCE_ENV, ""))
    except ValueError:
        return SILENCE
    return value if math.isfinite(value) and value > 0 else SILENCE


def rto_max(silence: float) -> float:
    """The cap on the kernel's backoff for a conn given up after ``silence`` seconds
    (:func:`~rdv_core.tcpinfo.cap_backoff`)."""
    low, high = RTO_MAX_RANGE
    return min(high, max(low, silence / 3))


def keepalive_period(limit: float) -> int:
    """:data:`KEEPALIVE_IDLE` (and interval), or a third of a shorter silence limit (whole
    seconds, at least 1): an idle conn's two unanswered probes then come within the limit,
    so that ``RDV_DIRECT_SILENCE=4`` gives an idle side up after about 5 s, not 11."""
    return max(1, min(KEEPALIVE_IDLE, int(limit // 3)))


def keep_alive(sock: socket.socket) -> None:
    """Turn on keepalive probes (see :data:`KEEPALIVE_IDLE`) where the platform has them,
    and cap the kernel's probe backoff (:func:`~rdv_core.tcpinfo.cap_backoff`) where it
    can be."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    period = keepalive_period(silence_limit())
    for name, value in (
        ("TCP_KEEPIDLE", period),
        ("TCP_KEEPINTVL", period),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
    ):
        option = getattr(socket, name, None)
        if option is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    cap_backoff(sock, rto_max(silence_limit()))


class PathSilent(ConnectionResetError):
    """The conn's last path went silent (no answer from the other end)."""


#: What went silent, and who did not answer: a direct path's other end is the peer, the
#: relay path's (the conn to the server; the peer is behind it) is the server.
DIRECT: Final = ("the direct path", "the peer")
TO_SERVER: Final = ("the path to the relay server", "the server")


def silent(what: tuple[str, str], limit: float) -> PathSilent:
    """``the direct path went silent for 15 s (no answer from the peer)``, or the relay's."""
    path, other = what
    return PathSilent(f"{path} went silent for {limit:.0f} s (no answer from {other})")


def guard(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, relay: bool) -> None:
    """Watch a classic conn (no fast start: docs/PROTOCOL.md 16.11) until it closes.

    Silent for :func:`silence_limit`, the conn is aborted with :class:`PathSilent`, so that
    the application's next read or drain names the silence: the transport's protocol
    (``reader``'s, or whichever took its reads over, as the session's channel does) is told
    the conn was lost with that error. Where the kernel cannot tell (not Linux) TCP's own
    timeouts stay.

    The set-up (the kernel's check, keepalive: six system calls on Linux) runs in the
    loop's next turn, after ``dial()``/``accept()`` returned: the application's first
    bytes need not wait for it, and the first check comes :data:`WATCH_TICK` later
    either way (issue 10: a seventh of a loopback dial's system calls).
    """
    loop = asyncio.get_running_loop()
    loop.call_soon(_guard, loop, reader, writer, relay)


def _guard(
    loop: asyncio.AbstractEventLoop,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    relay: bool,
) -> None:
    sock = writer.get_extra_info("socket")
    if sock is None or writer.transport.is_closing() or tcp_unanswered(sock) is None:
        return
    keep_alive(sock)
    limit, what = silence_limit(), TO_SERVER if relay else DIRECT

    def tick() -> None:
        transport = writer.transport
        if transport.is_closing():
            return
        waited = tcp_unanswered(sock)
        if waited is not None and waited >= limit:
            lose(transport, reader, silent(what, limit))
            return
        loop.call_later(WATCH_TICK, tick)

    # A timer, not a task: nothing to cancel or await when the conn closes first.
    loop.call_later(WATCH_TICK, tick)


def lose(transport: asyncio.WriteTransport, reader: asyncio.StreamReader, error: Exception) -> None:
    """Abort ``transport`` (no FIN behind unacknowledged bytes) as lost with ``error``.

    ``abort()`` tells the protocol the conn ended with no error (a clean EOF: "the peer
    hung up"), so asyncio's own transports (selector and TLS, 3.11 to 3.13) are closed
    with their ``_force_close(error)``, which is what they call when a send fails; any
    other transport is aborted after ``reader`` was given the error.
    """
    force_close = getattr(transport, "_force_close", None)
    if callable(force_close):
        force_close(error)
        return
    reader.set_exception(error)
    transport.abort()


def watch(stream: MigratingStream, pid: int, sock: socket.socket, relay_rtt: float | None) -> None:
    """Watch fast start's direct path ``pid`` until it ends; give it up once silent for
    its limit (docs/PROTOCOL.md 16.10).

    Where the kernel cannot tell (not Linux) TCP's own timeouts stay.
    """
    if tcp_unanswered(sock) is None:
        return
    keep_alive(sock)
    # Bytes in flight on the new path at once (16.3's PING; the peer answers PONG), which a
    # live peer's kernel acknowledges: a path silent from the switch on is seen too.
    stream.send_control(pid, u64_frame(Kind.PING, 0))
    proof = proof_limit(relay_rtt, tcp_rtt(sock))
    stream.spawn(_watch(stream, pid, sock, proof, silence_limit()))


def watch_relay(stream: MigratingStream, sock: socket.socket | None) -> None:
    """Watch fast start's relay path until it ends (docs/PROTOCOL.md 16.11): silent for
    :func:`silence_limit`, it is given up as if it had died (the stream goes on over a
    live direct path; without one it ends naming the silence)."""
    if sock is None or tcp_unanswered(sock) is None:
        return
    keep_alive(sock)
    limit = silence_limit()
    stream.spawn(_watch(stream, RELAY, sock, limit, limit))


async def _watch(
    stream: MigratingStream, pid: int, sock: socket.socket, proof: float, silence: float
) -> None:
    core = stream.core
    # Until the stream is over, its close included: a close waits for the peer's ACK
    # (docs/PROTOCOL.md 16.4), and a path gone dark then could leave ``conn.aclose()``
    # waiting for TCP's own timeout (about 15 minutes: 1 run in 10) once the watch had
    # stopped at the close.
    while core.alive(pid) and not stream.ended:
        await asyncio.sleep(WATCH_TICK)
        limit = proof if pid != RELAY and core.alive(RELAY) else silence
        waited = tcp_unanswered(sock)
        if waited is not None and waited >= limit and core.alive(pid):
            # "back on the relay: the direct path died before it was proven: it went
            # silent for 3 s" (16.6), or the stream's end when it was the last path.
            said = f"it went silent for {limit:.0f} s"
            error = silent(TO_SERVER if pid == RELAY else DIRECT, limit)
            stream.close_path(pid, said, error=error)
            return
