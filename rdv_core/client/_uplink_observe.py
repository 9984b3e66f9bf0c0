"""Where each extra uplink's NAT maps our port, asked of the server before the request.

docs/PROTOCOL.md section 17.3. The server observes only the conn it gets, i.e. the default
route's mapping. A second uplink behind its own NAT (a phone's LTE behind the carrier's NAT)
dials the peer from a public address nobody told the peer about: the peer's own SYNs never
aim there, and its inbound check (section 13, pipe-mode hijack protection) refuses a conn
from an address that is not one of ours. So, for each extra uplink, the client asks the
server's ``/.rdv/observed`` (the doctor's route, section 15.1) from the shared port bound to
that uplink, while its own server conn opens, and offers each answer that differs from the
uplink's own address as one more self address. A server without the route (the Go server)
answers an error: nothing is added, as before.

A hostile server could answer any address; it can already list any address as our peer's
(``Rdv-Peer-Addrs``), and what we add is still filtered by the enabled spaces and dialled
within the SYN budget (section 11): no new reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Sequence
from typing import Final

from rdv_core.client._probe_http import ProbeHttpError, open_conn
from rdv_core.client._sockets import reuse_socket
from rdv_core.client._uplinks import LocalPaths, Uplink, bind_to_uplink
from rdv_core.wire import Addr, AddrSpace, ProtocolError, ServerURL, parse_observed
from rdv_core.wire._probe import OBSERVED_PATH

log = logging.getLogger("rdv.client")

#: The longest the request waits for the uplinks' answers, in seconds. A working uplink answers
#: in one HTTP round trip to the server (the doctor measured 1-300 ms across the lab's and
#: real paths); a dead one (an LTE modem without signal) would otherwise hold every attempt
#: for its whole SYN timeout. Half a second is what a person notices as "a moment".
UPLINK_ANSWER_WAIT_S: Final = 0.5


class UplinkMappings:
    """The answers being asked for, one task per extra uplink."""

    def __init__(self, asked: Sequence[tuple[Uplink, asyncio.Task[Addr | None]]]) -> None:
        self._asked = list(asked)
        self._tasks = [task for _, task in asked]

    async def addrs(self, spaces: AddrSpace) -> list[Addr]:
        """The mapped addresses that came in time and whose space is enabled."""
        if not self._tasks:
            return []
        done, pending = await asyncio.wait(self._tasks, timeout=UPLINK_ANSWER_WAIT_S)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        found: list[Addr] = []
        for uplink, task in self._asked:
            addr = task.result() if task in done else None
            # Not translated: the uplink's own address is a self address already.
            if addr is not None and addr.ip != uplink.ip and spaces.includes_ip(addr.ip):
                log.info("uplink %s: the server saw %s", uplink, addr)
                found.append(addr)
        return found

    def cancel(self) -> None:
        """Stop asking (the attempt ended early)."""
        for task in self._tasks:
            task.cancel()


def ask_uplink_mappings(
    server: ServerURL,
    paths: LocalPaths,
    port: int,
    *,
    behind_proxy: bool,
    ssl_context: ssl.SSLContext | None,
) -> UplinkMappings:
    """Start asking, from ``port`` on each extra uplink of ``paths``, what the server sees.

    Nothing is asked without a listening port, through a proxy (the server would see the
    proxy) or when ``--interface``/``--source`` chose the uplinks (the server conn itself
    leaves from the chosen one and is observed as usual).
    """
    if not port or behind_proxy or paths.bound_only or not paths.uplinks:
        return UplinkMappings(())
    return UplinkMappings(
        [
            (uplink, asyncio.create_task(_observed_from(server, uplink, port, ssl_context)))
            for uplink in paths.uplinks
        ]
    )


async def _observed_from(
    server: ServerURL, uplink: Uplink, port: int, ssl_context: ssl.SSLContext | None
) -> Addr | None:
    """What the server saw of our ``port`` from ``uplink`` (None: no answer)."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET if uplink.is_ipv4 else socket.AF_INET6
    try:
        infos = await loop.getaddrinfo(
            server.host, server.port, family=family, type=socket.SOCK_STREAM
        )
    except socket.gaierror:
        return None  # the server has no address of this uplink's family
    sock = reuse_socket(family)
    try:
        bind_to_uplink(sock, uplink, port)
    except OSError as exc:
        sock.close()
        log.info("uplink %s: cannot bind port %d: %s", uplink, port, exc)
        return None
    ip = str(infos[0][4][0])
    target = (ip, server.port) if uplink.is_ipv4 else (ip, server.port, 0, 0)
    tls_host = server.host if server.tls else None
    try:
        conn = await open_conn(
            sock, target, server.host_header, tls_host, ssl_context, UPLINK_ANSWER_WAIT_S
        )
    except (OSError, TimeoutError) as exc:
        log.info("uplink %s: no conn to the server: %s", uplink, exc)
        return None
    try:
        status, body = await conn.get(OBSERVED_PATH, wait_s=UPLINK_ANSWER_WAIT_S)
        if status != 200:
            return None  # a server without the doctor's routes
        observed = parse_observed(body).observed.unmapped()
    except (ProbeHttpError, ProtocolError) as exc:
        log.info("uplink %s: no observed address: %s", uplink, exc)
        return None
    finally:
        conn.close()
    return observed
