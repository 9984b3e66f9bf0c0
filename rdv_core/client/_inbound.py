"""Which inbound conns may be the peer: their source IP must be one of the peer's addresses.

The listener of an attempt is open to anyone, and a stranger who knows the token (from
``ps``, a log, a guessable word) could connect to it while we wait in the lobby, send
``rdv/1 DIAL <token>`` and ``CONTINUE``, and be taken for the peer the moment the race
starts. The server's ``101`` names the peer's addresses (its self addresses and the
address the server observed, docs/PROTOCOL.md section 4); the real peer's inbound conns
come from one of those IPs (its own address on a LAN, its NAT's public address across
the internet). Ports are not compared: a NAT may map each conn to a fresh port.

This stops strangers elsewhere on the internet; it cannot stop one behind the same NAT
or on the same host as the peer, nor a malicious server (it writes the ``101``). The
session protocol (``rdv send``/``rdv receive``) authenticates the peer by its code;
plain pipe mode has only the token (README, pipe mode).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from rdv_core.client._candidates import inbound_addr, space_name
from rdv_core.client._link import addr_of
from rdv_core.wire import Addr, AddrSpace, allows_direct, unmap


def admit_inbound(
    sockaddr: Any,
    spaces: AddrSpace,
    peer_addrs: Sequence[Addr],
    nat64: ipaddress.IPv6Network | None,
) -> tuple[Addr, str | None] | None:
    """Who an inbound conn is from, and why it must be closed (None: it may be the peer).

    None for a socket address that is not an IP one. Checked in order: the address space
    (docs/PROTOCOL.md section 9), then the source IP (:func:`foreign_inbound`).
    """
    remote = addr_of(sockaddr)
    if remote is None:
        return None
    remote = inbound_addr(remote, nat64)
    if not allows_direct(spaces, remote.space):
        return remote, f"address space {space_name(remote)} is not enabled"
    return remote, foreign_inbound(remote, peer_addrs)


def foreign_inbound(remote: Addr, peer_addrs: Iterable[Addr]) -> str | None:
    """Why an inbound conn from ``remote`` cannot be the peer, or None if it may be."""
    known = {unmap(addr.ip) for addr in peer_addrs}
    source = unmap(remote.ip)
    if source in known:
        return None
    listed = ", ".join(sorted(str(ip) for ip in known)) or "none"
    return f"source {source} is not one of the peer's addresses ({listed}): not the peer"
