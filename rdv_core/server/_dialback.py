"""The dial-back itself: one TCP connect from another port to the requester's own address.

docs/PROTOCOL.md section 15.1. The rule that keeps it from being a weapon (libp2p AutoNAT
v2's): the target is always the address the request came from, never one the client names,
and each dial-back sends at most :data:`MAX_SYNS` SYNs and, on success, one line of at most
:data:`MAX_GREETING` bytes. Rate limits are the caller's (:mod:`rdv_core.server._probes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno as errnos
import socket
import time
from typing import Final

from rdv_core.wire import Addr, DialBack
from rdv_core.wire._probe import DIALBACK_GREETING, DialBackResult

#: How long the server waits for an answer to its SYN. Linux retransmits a SYN after 1 s,
#: so at most two SYNs leave per dial-back.
SYN_TIMEOUT_S: Final = 1.5
MAX_SYNS: Final = 2
#: The greeting, the nonce (64 hex digits at most) and a newline.
MAX_GREETING: Final = len(DIALBACK_GREETING) + 64 + 1

_RST: Final = frozenset({errnos.ECONNREFUSED, errnos.ECONNRESET})
_ICMP: Final = frozenset(
    {errnos.EHOSTUNREACH, errnos.ENETUNREACH, errnos.EHOSTDOWN, errnos.ENETDOWN, errnos.EACCES}
)


#: Linux: queue ICMP errors on the socket (IP_RECVERR / IPV6_RECVERR), so that a refusal by
#: an ICMP port-unreachable is told from one by a TCP RST (both are ECONNREFUSED).
_RECVERR: Final = {
    socket.AF_INET: (socket.IPPROTO_IP, 11),
    socket.AF_INET6: (socket.IPPROTO_IPV6, 25),
}
#: ``sock_extended_err.ee_origin`` of an ICMP / ICMPv6 error.
_ORIGIN_ICMP: Final = frozenset({2, 3})


def _icmp_queued(sock: socket.socket) -> bool:
    """True if the socket's error queue holds an ICMP error (Linux; False elsewhere)."""
    try:
        _, ancillary, _, _ = sock.recvmsg(64, 512, socket.MSG_ERRQUEUE)
    except (OSError, AttributeError):
        return False
    for _level, _kind, payload in ancillary:
        if len(payload) >= 5 and payload[4] in _ORIGIN_ICMP:
            return True
    return False


def _classify(exc: OSError, sock: socket.socket) -> DialBackResult:
    if exc.errno in _RST:
        return "icmp" if _icmp_queued(sock) else "rst"
    if exc.errno in _ICMP:
        return "icmp"
    if exc.errno == errnos.ETIMEDOUT:
        return "timeout"
    return "error"


async def dial_back(target: Addr, nonce: str, local_ip: str | None) -> DialBack:
    """Connect to ``target`` from a fresh port on ``local_ip``; on success write the nonce.

    Never raises for a network outcome: the result says what happened.
    """
    target = target.unmapped()
    family = socket.AF_INET if target.is_ipv4 else socket.AF_INET6
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    with contextlib.suppress(OSError):
        sock.setsockopt(*_RECVERR[family], 1)
    syn_count = getattr(socket, "TCP_SYNCNT", None)
    if syn_count is not None:
        # MAX_SYNS by the kernel's word, not by our timer alone: a loop late by more than
        # 1.5 s (a loaded server) let the kernel's third SYN leave at 3 s (docs/PROTOCOL.md
        # 15.1: at most 2 SYNs per dial-back).
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, syn_count, MAX_SYNS - 1)
    started = time.perf_counter()
    result: DialBackResult = "timeout"
    code: int | None = None
    from_port = 0
    try:
        if local_ip is not None:
            local = Addr.parse(f"[{local_ip}]:0" if ":" in local_ip else f"{local_ip}:0")
            if local.is_ipv4 == target.is_ipv4:
                with contextlib.suppress(OSError):
                    sock.bind((str(local.unmapped().ip), 0))
        sockaddr = (str(target.ip), target.port)
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(SYN_TIMEOUT_S):
                await loop.sock_connect(sock, sockaddr)
            from_port = sock.getsockname()[1]
            result = "syn-ack"
            with contextlib.suppress(OSError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await loop.sock_sendall(sock, DIALBACK_GREETING + nonce.encode() + b"\n")
        except TimeoutError:
            result = "timeout"
        except OSError as exc:
            result, code = _classify(exc, sock), exc.errno
        if not from_port:
            with contextlib.suppress(OSError):
                from_port = sock.getsockname()[1]
    finally:
        sock.close()
    return DialBack(
        target=target,
        result=result,
        errno=code,
        elapsed_ms=(time.perf_counter() - started) * 1000,
        from_port=from_port or 1,
    )
