"""The doctor's dial-backs: the server's SYN to our shared port P (docs/PROTOCOL.md 15.2).

One for the findings' family (``filtering``) and, at the same time, one over IPv6
(``filtering6``, the IPv6 firewall a dual-stack host's IPv6 candidates meet). Each costs the
server SYNs, so one measured dial-back per family says it all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final

from rdv_core.client._probe_http import HttpConn, ProbeHttpError
from rdv_core.doctor import _classify as classify
from rdv_core.doctor._inbox import HAIRPIN_TIMEOUT_S, Inbox
from rdv_core.doctor._report import Finding, Sample, not_measured
from rdv_core.doctor._target import Target
from rdv_core.wire import Addr, DialBack, ProtocolError, parse_dial_back
from rdv_core.wire._probe import DIALBACK_GREETING, DIALBACK_PATH

log = logging.getLogger("rdv.doctor")

#: The dial-back answer can take the server's whole SYN timeout.
DIALBACK_TIMEOUT_S: Final = 5.0


class DialBackTurns:
    """One dial-back at a time per public address, over the runs of every uplink.

    The server dials back one address at a time (``429: one dial-back at a time per
    address``, section 15.1): two uplinks behind the same public address, measured at once
    (section 15.8), saw one ``filtering`` "not measured". Each run knows its public address
    from ``/.rdv/observed`` before its dial-back, and waits for its turn at that address:
    one more dial-back's time (at most the server's 1.5 s SYN wait) per uplink sharing it.
    """

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def turn(self, address: str | None) -> AsyncIterator[None]:
        """Hold ``address``'s turn (None: an unknown address, no wait)."""
        if address is None:
            yield
            return
        lock = self._locks.setdefault(address, asyncio.Lock())
        if lock.locked():
            log.info("dial-back: waiting for another uplink's, from the same address %s", address)
        async with lock:
            yield


async def dial_back(conn: HttpConn, inbox: Inbox) -> Finding:
    """Ask the server on ``conn`` for a dial-back to us, and say what its SYN got."""
    nonce = secrets.token_hex(16)
    arrived = inbox.expect(DIALBACK_GREETING, nonce)
    try:
        status, body = await conn.get(f"{DIALBACK_PATH}?nonce={nonce}", wait_s=DIALBACK_TIMEOUT_S)
    except ProbeHttpError as exc:
        return not_measured(f"dial-back: {exc}")
    if status != 200:
        return not_measured(f"the server refused the dial-back ({status}: {body[:80]!r})")
    try:
        result: DialBack | None = parse_dial_back(body)
    except ProtocolError as exc:
        return not_measured(f"dial-back: {exc}")
    if result is not None and result.result == "syn-ack":
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HAIRPIN_TIMEOUT_S):
                await arrived
    return classify.classify_filtering(result, arrived.done(), "")


async def main_dial_back(
    servers: Sequence[Target], inbox: Inbox, in_findings_family: Callable[[Target], bool]
) -> Finding:
    """``filtering``: the dial-back over each server's main conn until one is measured,
    a server of the findings' family first (the filtering belongs with the mapping).
    Sets every server's ``dial_back``."""
    first: Finding | None = None
    why_not = "no server offers dial-back (rdv serve --dial-back)"
    skipped: list[str] = []  # why servers could not be asked, in order
    for server in sorted(servers, key=lambda s: not in_findings_family(s)):
        if server.main is None or server.directory is None:
            server.dial_back = not_measured(server.directory_reason or "server unreachable")
            skipped.append(server.dial_back.reason)
            continue
        if not server.directory.dial_back:
            server.dial_back = not_measured("the server does not offer dial-back")
            continue
        if first is not None:
            server.dial_back = not_measured("measured through another server")
            continue
        server.dial_back = await dial_back(server.main, inbox)
        log.info("dial-back from %s: %s", server.url, server.dial_back.reason)
        if server.dial_back.measured:
            first = server.dial_back
        why_not = server.dial_back.reason
    if len(skipped) == len(servers):
        why_not = skipped[0]  # no server could be asked at all: say why, not "no offer"
    return first or not_measured(why_not)


async def ipv6_dial_back(servers: Sequence[Target], inbox: Inbox) -> Finding:
    """``filtering6``: a dial-back over an IPv6 conn from P (step 3's, or the main one of a
    server without IPv4), from the first server reached over IPv6 that offers it."""
    conns = {
        s.url: s.main6 or (s.main if s.main_ip and ":" in s.main_ip else None) for s in servers
    }
    reached = [s for s in servers if conns[s.url] is not None]
    for server in reached:
        conn = conns[server.url]
        if conn is not None and server.directory is not None and server.directory.dial_back:
            return await dial_back(conn, inbox)
    if reached:
        return not_measured("no server reached over IPv6 offers dial-back (rdv serve --dial-back)")
    return not_measured("no server was reached over IPv6")


def filtering6_over_ipv6(filtering: Finding, samples6: Sequence[Sample]) -> Finding:
    """A run measured over IPv6 only: its one dial-back is the IPv6 firewall's, unless the
    server saw us as IPv4 (NAT64): then it crossed the translator's IPv4 side, not ours."""
    observed = next((s.observed for s in samples6 if s.observed), None)
    if observed is None or not filtering.measured:
        return filtering
    if Addr.parse(observed).unmapped().is_ipv4:  # a Sample's observed address parses
        return not_measured(
            f"the server saw us as {observed} (IPv4, through NAT64): its dial-back went to "
            "the translator, not to our IPv6 address"
        )
    return filtering
