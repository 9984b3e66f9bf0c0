"""One server URL during a doctor run, and the small steps every probe shares.

docs/PROTOCOL.md section 15.2: resolving a URL to its IPv4 and IPv6 addresses, asking
``/.rdv/observed`` on a conn, and turning a conn into a :class:`Sample`.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Final

from rdv_core.client._probe_http import HttpConn, ProbeHttpError
from rdv_core.doctor._report import Finding, Sample, ServerCheck, not_measured
from rdv_core.wire import Addr, Observed, ProbeDirectory, ServerURL, parse_observed
from rdv_core.wire._probe import OBSERVED_PATH, PROBE_UPGRADE

log = logging.getLogger("rdv.doctor")


@dataclass(slots=True)
class Target:
    """One URL during a run."""

    url: str
    parsed: ServerURL
    v4: str | None = None
    v6: str | None = None
    resolve_error: str = ""
    #: Why the server's IPv4 address is not used (this machine has no route to it), or "".
    no_v4: str = ""
    main: HttpConn | None = None
    #: The address ``main`` goes to (IPv4, or IPv6 for a server without IPv4).
    main_ip: str | None = None
    main_sample: Sample | None = None
    directory: ProbeDirectory | None = None
    directory_reason: str = ""
    tcp4: Finding = field(default_factory=lambda: not_measured("not tried"))
    tcp6: Finding = field(default_factory=lambda: not_measured("not tried"))
    tls: Finding = field(default_factory=lambda: not_measured("not an https:// URL"))
    upgrade: Finding = field(default_factory=lambda: not_measured("not tried"))
    dial_back: Finding = field(default_factory=lambda: not_measured("not tried"))
    proxy: Finding = field(default_factory=lambda: not_measured("not tried"))
    http: Finding = field(default_factory=lambda: not_measured("not tried"))
    rtts: list[float] = field(default_factory=list)
    observed6: Sample | None = None
    #: The IPv6 conn from P (step 3), for the IPv6 dial-back.
    main6: HttpConn | None = None

    def set_reached(self, ip: str, finding: Finding) -> None:
        """Whether TCP to ``ip`` worked: ``tcp6`` for an IPv6 address, else ``tcp4``."""
        if ":" in ip:
            self.tcp6 = finding
        else:
            self.tcp4 = finding

    def check(self) -> ServerCheck:
        return ServerCheck(
            url=self.url,
            tcp4=self.tcp4,
            tcp6=self.tcp6,
            tls=self.tls,
            rtt_ms=min(self.rtts) if self.rtts else None,
            observed=self.main_sample.observed if self.main_sample else None,
            probe_ports=self.directory.probe_ports if self.directory else (),
            upgrade=self.upgrade,
            dial_back=self.dial_back,
            proxy=self.proxy,
            http=self.http,
        )


def _literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


async def resolve(server: Target) -> None:
    host = server.parsed.host
    literal = _literal(host)
    if literal is not None:
        if literal.version == 4:
            server.v4 = str(literal)
        else:
            server.v6 = host
        return
    loop = asyncio.get_running_loop()
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            infos = await loop.getaddrinfo(host, server.parsed.port, family=family)
        except socket.gaierror as exc:
            # Its words without "[Errno -2]"; with both families failed the name is unknown.
            server.resolve_error = f"{host} does not resolve: {(exc.strerror or str(exc)).lower()}"
            continue
        if infos:
            ip = str(infos[0][4][0])
            if family == socket.AF_INET:
                server.v4 = ip
            else:
                server.v6 = ip


#: What a connect to an address this machine cannot reach fails with at once: no route
#: (``ENETUNREACH``), or no local address of its family (``EADDRNOTAVAIL``).
_NO_ROUTE: Final = (errno.ENETUNREACH, errno.EADDRNOTAVAIL)


def drop_unrouted_v4(server: Target) -> None:
    """A name with an A and an AAAA record, from a host with no IPv4 route (an IPv6-only
    network): take the IPv6-only server's path (section 15.2). Measured over IPv4, the main
    conn failed at once and every NAT finding said "The server could not tell us our
    address", while the IPv6 literal measured everything (the race's server conn falls back
    to IPv6 the same way, ``rdv_core.client._server_conn``). A UDP connect asks the kernel
    the route a TCP connect would take, sending nothing."""
    if server.v4 is None or server.v6 is None:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((server.v4, server.parsed.port))
        except OSError as exc:
            if exc.errno not in _NO_ROUTE:
                return
            server.no_v4 = (
                f"this machine has no IPv4 route to {server.v4} "
                f"({os.strerror(exc.errno).lower()}): measured over IPv6"
            )
            log.info("%s: %s", server.url, server.no_v4)
            server.v4 = None


def sockaddr(ip: str, port: int) -> tuple[str, int] | tuple[str, int, int, int]:
    return (ip, port, 0, 0) if ":" in ip else (ip, port)


def show_addr(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


async def observe(conn: HttpConn, *, upgrade: bool = False) -> Observed:
    """``GET /.rdv/observed`` on ``conn``. Raises ProbeHttpError or ProtocolError."""
    headers = [("Connection", "Upgrade"), ("Upgrade", PROBE_UPGRADE)] if upgrade else []
    status, body = await conn.get(OBSERVED_PATH, headers)
    if status != 200:
        raise ProbeHttpError(f"the server answered {status} to {OBSERVED_PATH}")
    return parse_observed(body)


def sample(conn: HttpConn, observed: Observed | None) -> Sample:
    local = Addr.from_sockaddr(conn.writer.get_extra_info("sockname")).unmapped()
    peer = Addr.from_sockaddr(conn.writer.get_extra_info("peername")).unmapped()
    seen = str(observed.observed) if observed else None
    # `rdv doctor -v` ("log each probe"): every conn behind a finding, as it is made.
    log.info("probe %s -> %s: the server saw %s, connect %.1f ms", local, peer, seen or "-",
             conn.connect_ms or 0.0)  # fmt: skip
    return Sample(str(local), str(peer), seen, conn.connect_ms)
