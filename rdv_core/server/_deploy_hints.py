"""Warnings for the operator when the server and what is in front of it disagree.

A balancer that sends PROXY headers to a server that does not read them, a TLS port
behind a balancer that sends them, a balancer or a reverse proxy outside ``--trust-proxy``,
a trusted proxy that names no client: each conn is refused (or served without ``Rdv-Observed-Addr``)
with a ``Rejected`` event, which ``rdv serve`` logs at ``-v`` only, so at the default
level the operator saw nothing while every client failed (docs/PROTOCOL.md section 14).
Each is now a warning at the default level that says what arrived and what to change,
logged at once and then at most once a minute per kind, with the count in between
(as the lobby caps' warnings, server/_core.py).
"""

from __future__ import annotations

import logging
import time
from typing import Final

from rdv_core.wire._http1.head import PROXY_NOT_READ

__all__ = [
    "FORWARDED_IGNORED",
    "NO_CLIENT_NAMED",
    "PROXY_FROM_STRANGER",
    "PROXY_ON_TLS",
    "SECOND_PROXY_HEADER",
    "Throttle",
    "hint",
    "refused_why",
    "warn",
]

log = logging.getLogger("rdv.server")

#: Seconds between two warnings of one kind.
INTERVAL_S: Final = 60.0
#: The ``Rejected`` reason of a PROXY header from outside ``--trust-proxy``.
PROXY_FROM_STRANGER: Final = "PROXY header from an untrusted address"
#: The ``Rejected`` reason of a PROXY header on a TLS port (``--proxy-protocol`` refuses TLS).
PROXY_ON_TLS: Final = "a PROXY header on the TLS port: terminate TLS at the balancer"
#: The ``Rejected`` reason of a PROXY header after the one a ``--proxy-protocol`` front read.
SECOND_PROXY_HEADER: Final = "a second PROXY header"
#: The kind of a request from a trusted proxy whose headers name no client.
NO_CLIENT_NAMED: Final = "no client named"
#: The kind of a request with forwarding headers from outside ``--trust-proxy``.
FORWARDED_IGNORED: Final = "forwarding headers ignored"

_HINTS: Final = {
    PROXY_NOT_READ: (
        "a PROXY protocol header arrived from {remote} and this server does not read it "
        "(answered 400): start rdv serve with --proxy-protocol --trust-proxy <the "
        "balancer's network>, or take send-proxy off the balancer"
    ),
    PROXY_FROM_STRANGER: (
        "a PROXY protocol header arrived from {remote}, outside --trust-proxy (answered "
        "400): if {remote} is your balancer, add its network to --trust-proxy"
    ),
    PROXY_ON_TLS: (
        "a PROXY protocol header arrived on the TLS port from {remote} (closed): rdv does "
        "not read one before TLS; terminate TLS at the balancer and run rdv serve "
        "--proxy-protocol without --tls-cert, or take send-proxy off the balancer"
    ),
    SECOND_PROXY_HEADER: (
        "a second PROXY protocol header arrived on a conn whose first one named {remote} "
        "(answered 400): two balancers in a row each send one; the inner one must read the outer's "
        "(HAProxy accept-proxy) instead of passing it on"
    ),
    NO_CLIENT_NAMED: (
        "a request from {remote}, inside --trust-proxy, named no client (no PROXY header, "
        "no X-Forwarded-For or X-Real-IP with the client's port): it gets no "
        "Rdv-Observed-Addr and peers behind NATs will not connect directly; have the "
        "balancer send X-Forwarded-For and X-Forwarded-Port $remote_port, or a PROXY "
        "header (send-proxy) with rdv serve --proxy-protocol"
    ),
    FORWARDED_IGNORED: (
        "a request from {remote} carried X-Forwarded-For or X-Real-IP, and {remote} is not "
        "in --trust-proxy: the headers are ignored and the client is told {remote} is its "
        "address; if {remote} is your reverse proxy, add its address to --trust-proxy"
    ),
}


def hint(reason: str) -> str | None:
    """The warning's words for a refusal reason (``{remote}`` to fill), or None: not a
    deployment's mistake."""
    return _HINTS.get(reason)


def refused_why(reason: str, reads_proxy: bool) -> str:
    """The reason to count for a malformed head: on a front that reads PROXY headers, one
    that starts with another is not "PROXY protocol is off" (whose fix would mislead)."""
    return SECOND_PROXY_HEADER if reads_proxy and reason == PROXY_NOT_READ else reason


class Throttle:
    """At most one warning of a kind per :data:`INTERVAL_S`, counting those held back."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}

    def due(self, kind: str) -> int | None:
        """How many of ``kind`` went unlogged since the last warning, or None: not yet."""
        now = time.monotonic()
        last, quiet = self._last.get(kind, (now - INTERVAL_S, 0))
        if now - last < INTERVAL_S:
            self._last[kind] = (last, quiet + 1)
            return None
        self._last[kind] = (now, 0)
        return quiet


def warn(throttle: Throttle, reason: str, remote: object) -> None:
    """Log the warning for ``reason`` (if it has one and it is due)."""
    words = hint(reason)
    if words is None:
        return
    quiet = throttle.due(reason)
    if quiet is None:
        return
    more = f" ({quiet} more since the last warning)" if quiet else ""
    where = getattr(remote, "ip", remote)  # the balancer's address, not its port of the hour
    log.warning("%s%s", words.format(remote="?" if where is None else where), more)
