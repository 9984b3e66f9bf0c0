"""``rdv serve``'s start-up lines: what the operator configured, in two log lines.

After the ``listening on`` line: the lobby timeout and caps, then everything else that
decides how clients are served (trusted proxy networks and PROXY protocol, TLS, the doctor's
probe ports and dial-back, the drain, the pairs' idle and silence limits). An operator
checking a deployment read only the caps, and had to trust the unit file for the rest.
Both lines carry their values as fields for ``--json-logs``. Standard library only.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("rdv.server")


def _seconds(value: float | None, none: str = "none") -> str:
    return none if value is None else f"{value:g}s"


def log_limits(args: argparse.Namespace, limits: Any, open_files: int) -> None:
    """The lobby timeout and the caps (``limits``: the server's ``LobbyLimits``)."""
    caps = {
        "max_lobby": limits.total,
        "max_lobby_per_address": limits.per_address,
        "max_lobby_per_network": limits.per_network,
        "max_pairs_per_address": limits.pairs_per_address,
        "max_pairs_per_network": limits.pairs_per_network,
        "max_heads_per_address": limits.heads_per_address,
        "max_heads_per_network": limits.heads_per_network,
    }
    log.info(
        "lobby timeout %s, caps: %s in all, %s per address, %s per network; open pairs: "
        "%s per address, %s per network; unfinished requests: %s per address, %s per "
        "network (open-file limit %d)",
        _seconds(args.lobby_timeout),
        *("none" if n is None else n for n in caps.values()),
        open_files,
        extra={"fields": {"lobby_timeout_s": args.lobby_timeout, **caps, "open_files": open_files}},
    )


def log_front(
    args: argparse.Namespace,
    bound: Sequence[str],
    port: int,
    probe_ports: Sequence[int],
    relay_silence_s: float,
) -> None:
    """The sockets, who is trusted, TLS, the doctor's ports, the drain and the pairs' limits.

    ``bound``: the listening sockets' addresses. The ``listening on`` URL of ``--listen :8080``
    says ``0.0.0.0``, which the help calls IPv4 only, where ``[::]:8080`` is bound too.
    """
    networks = ", ".join(args.trust_proxy)
    if args.trust_proxy:
        trusted = f"trusted proxies {networks} (their forwarding headers name the client)"
    else:
        trusted = "trusted proxies none (forwarding headers ignored)"
    proxy = "read from the trusted proxies" if args.proxy_protocol else "off"
    if args.tls_cert is not None:
        tls = f"TLS {args.tls_cert} (plain HTTP to port {port} gets 400)"
    else:
        tls = "TLS off (plain HTTP)"
    probes = ", ".join(str(p) for p in probe_ports) or "none"
    log.info(
        "bound to %s; %s; PROXY protocol %s; %s; doctor probe ports %s, dial-back %s; drain %s "
        "on a stop signal; pairs: idle timeout %s, relay silence limit %s (RDV_RELAY_SILENCE)",
        ", ".join(bound),
        trusted,
        proxy,
        tls,
        probes,
        "on" if args.dial_back else "off",
        _seconds(args.drain or 0.0),
        _seconds(args.idle_timeout),
        _seconds(relay_silence_s),
        extra={
            "fields": {
                "bound": list(bound),
                "trust_proxy": list(args.trust_proxy),
                "proxy_protocol": bool(args.proxy_protocol),
                "tls_cert": None if args.tls_cert is None else str(args.tls_cert),
                "probe_ports": list(probe_ports),
                "dial_back": bool(args.dial_back),
                "drain_s": args.drain or 0.0,
                "idle_timeout_s": args.idle_timeout,
                "relay_silence_s": relay_silence_s,
            }
        },
    )


def listening_line(url: str, bound: Sequence[str]) -> str:
    """The first line, which scripts wait for: where clients reach the server.

    ``--listen :8080`` printed ``listening on http://0.0.0.0:8080``: an address a client
    elsewhere cannot use, and on some systems not even here. A server on every address
    says so, names a URL for other machines (this one's name) and ends with one that
    works on this machine (loopback; a script takes the last word). ``bound``: the
    listening sockets, ``0.0.0.0:8080`` and ``[::]:8080`` for every address.
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    port = parts.port
    families = [
        family
        for family, prefix in (("IPv4", "0.0.0.0:"), ("IPv6", "[::]:"))
        if any(addr.startswith(prefix) for addr in bound)
    ]
    if not families or port is None:
        return f"rdv serve: listening on {url}"
    import socket

    def at(host: str) -> str:
        return urlunsplit(parts._replace(netloc=f"{host}:{port}"))

    elsewhere = at(socket.gethostname() or "HOST")
    every = f"rdv serve: listening on port {port} of every {' and '.join(families)} address"
    if parts.scheme == "https":
        # A loopback URL would not match the certificate: the name clients use does.
        return f"{every}; clients use a name in the certificate, e.g. {elsewhere}"
    here = at("127.0.0.1" if "IPv4" in families else "[::1]")
    return f"{every} (other machines: {elsewhere}, or this machine's address); here: {here}"
