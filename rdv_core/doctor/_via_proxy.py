"""The doctor through an HTTP proxy: the tunnel the race will use, measured (PROTOCOL.md 15.7).

When a proxy is configured for a server (``--proxy`` or the environment, by the client's own
rule :func:`rdv_core.wire.choose_proxy`), the race's server conn and relay go through its
``CONNECT`` tunnel while the peers' direct dials do not (section 17.1). So the doctor measures
both: the direct probes as always (they say whether anything but the proxy gets out), and
here the tunnel: does the proxy give one, what it calls itself, how long it takes, what
address the server sees (the proxy's), and whether ``Upgrade`` arrives through it.
"""

from __future__ import annotations

import ssl
import time

from rdv_core.client._probe_http import ProbeHttpError, wrap_conn
from rdv_core.client._proxy import open_tunnel
from rdv_core.doctor._report import Finding
from rdv_core.doctor._target import Target, observe
from rdv_core.errors import ServerConnectError
from rdv_core.wire import ProtocolError, ProxyURL
from rdv_core.wire._probe import PROBE_UPGRADE


def no_proxy(server: Target, configured: bool) -> Finding:
    """The finding for a server reached without a proxy."""
    if configured:
        return Finding("none", f"NO_PROXY exempts {server.parsed.host}: direct TCP")
    return Finding("none", "no proxy configured (--proxy, HTTPS_PROXY, HTTP_PROXY, ALL_PROXY)")


async def through_proxy(
    server: Target, proxy: ProxyURL, ssl_context: ssl.SSLContext | None
) -> Finding:
    """Open the race's tunnel to ``server`` through ``proxy`` and ask who we are through it.

    Never raises for a network failure: a proxy that gives no tunnel is ``failed``, with the
    proxy's own answer in the reason. Sets ``server.upgrade`` when the direct conn could not
    measure it (a network where only the proxy gets out).
    """
    started = time.perf_counter()
    try:
        sock, agent = await open_tunnel(proxy, server.parsed)
    except ServerConnectError as exc:
        return Finding("failed", f"{exc}: rdv cannot reach the server through it")
    tunnel_ms = (time.perf_counter() - started) * 1000
    named = f"{proxy} ({agent})" if agent else str(proxy)
    parsed = server.parsed
    try:
        conn = await wrap_conn(
            sock, parsed.host_header, tunnel_ms, parsed.host if parsed.tls else None, ssl_context
        )
    except (OSError, TimeoutError) as exc:
        return Finding("failed", f"the tunnel through {named} opened, but TLS failed: {exc}")
    try:
        observed = await observe(conn, upgrade=True)
    except (ProbeHttpError, ProtocolError) as exc:
        return Finding(
            "tunnel",
            f"CONNECT through {named} in {tunnel_ms:.1f} ms; {server.url} did not "
            f"say what it saw ({exc})",
        )
    finally:
        conn.close()
    arrived = observed.upgrade == PROBE_UPGRADE
    if not server.upgrade.measured:
        server.upgrade = Finding(
            arrived,
            "our Upgrade header arrived through the proxy's tunnel"
            if arrived
            else f"our Upgrade header arrived through the tunnel as {observed.upgrade!r}",
        )
    return Finding(
        "tunnel",
        f"CONNECT through {named} in {tunnel_ms:.1f} ms; the server saw "
        f"{observed.observed} (the proxy's side, not ours): the race's server conn and relay "
        "go through this tunnel, direct dials to peers do not",
    )
