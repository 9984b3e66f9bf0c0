"""Open a ``CONNECT`` tunnel to the rdv server through an HTTP proxy (docs/PROTOCOL.md 17.1).

The tunnel is a plain TCP socket to the proxy on which the proxy has answered ``2xx``;
the caller then speaks TLS (for ``https://``) and rdv/1 on it as if it were connected to
the server itself, so the relay works through the proxy too.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from typing import Final

from rdv_core.client._sockets import reuse_socket
from rdv_core.errors import ServerConnectError
from rdv_core.wire import (
    MAX_HEADER_BLOCK,
    HeadParser,
    ProtocolError,
    ProxyURL,
    ServerURL,
    build_connect_request,
    check_connect_status,
)

#: Seconds for the proxy to answer ``CONNECT``. A proxy answers once it has reached the
#: server (one more TCP handshake on its side); a silent one should not hang the attempt.
CONNECT_ANSWER_TIMEOUT: Final = 15.0

#: Seconds for the proxy to take the TCP conn. A proxy is on the LAN or close to it: one
#: that has not answered after three SYNs (1 + 2 + 4 s) is the wrong address or behind a
#: firewall that drops, and without this the attempt hung for the kernel's ~2 minutes of
#: SYN retries (no --timeout by default) before saying "connection timed out".
PROXY_CONNECT_TIMEOUT: Final = 10.0


async def open_tunnel(
    proxy: ProxyURL, server: ServerURL, *, port: int = 0
) -> tuple[socket.socket, str]:
    """A socket tunnelled to ``server`` through ``proxy``, and what the proxy says it is.

    ``port`` binds the local end like every socket of an attempt (SO_REUSEPORT), though
    behind a proxy no NAT maps it: the proxy's own address is what the server observes.

    Raises:
        ServerConnectError: the proxy is unreachable, refused the tunnel or broke HTTP.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ServerConnectError(
            f"cannot resolve the proxy host {proxy.host!r} of {proxy.named}: {exc}", exc.errno
        ) from exc
    last: OSError | None = None
    for family, _, _, _, sockaddr in infos:
        sock = reuse_socket(socket.AddressFamily(family))
        try:
            sock.bind(("::", port, 0, 0) if family == socket.AF_INET6 else ("0.0.0.0", port))
            async with asyncio.timeout(PROXY_CONNECT_TIMEOUT):
                await loop.sock_connect(sock, sockaddr)
        except TimeoutError:
            sock.close()
            last = TimeoutError(
                errno.ETIMEDOUT,
                f"no answer within {PROXY_CONNECT_TIMEOUT:g} s (a wrong address, or a "
                "firewall that drops the conn)",
            )
            continue
        except OSError as exc:
            sock.close()
            last = exc
            continue
        except BaseException:
            sock.close()
            raise
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for returns the inner result when
            # a cancel lands in the turn the handshake completes, and the cancelled attempt
            # would carry on with its tunnel (tests/test_client_proxy_cancel.py).
            async with asyncio.timeout(CONNECT_ANSWER_TIMEOUT):
                agent = await _handshake(loop, sock, proxy, server)
        except TimeoutError:
            sock.close()
            raise ServerConnectError(
                f"the proxy {proxy.named} did not answer CONNECT within "
                f"{CONNECT_ANSWER_TIMEOUT:g} s",
                None,
            ) from None
        except BaseException:
            sock.close()
            raise
        return sock, agent
    raise ServerConnectError(
        # The hint after "; ", not ": ": a rejoin names the loss by the last ": " piece.
        f"cannot connect to the proxy {proxy.named}: {_reason(last)}; check its host and port"
        + (f" in {proxy.source}, or unset it to go direct" if proxy.source else ""),
        last.errno if last else None,
    )


def _reason(exc: OSError | None) -> str:
    """Plain words for a failed connect: asyncio's ``sock_connect`` puts its own
    ``Connect call failed ('127.0.0.1', 3128)`` where ``strerror`` should be."""
    if exc is None:
        return "it has no address"
    if isinstance(exc, TimeoutError) and exc.strerror:
        return exc.strerror  # ours, from PROXY_CONNECT_TIMEOUT
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return exc.strerror or str(exc)


async def _handshake(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, proxy: ProxyURL, server: ServerURL
) -> str:
    """Send ``CONNECT``, read the answer head, leave nothing of the tunnel unread."""
    await loop.sock_sendall(sock, build_connect_request(server, proxy))
    parser = HeadParser("response")
    received = 0
    try:
        while True:
            # One byte past the head would belong to the tunnel, and the server never
            # speaks first: read until the blank line, in small reads, and refuse extra.
            chunk = await loop.sock_recv(sock, 1024)
            if not chunk:
                raise ServerConnectError(
                    f"the proxy {proxy.named} closed the connection before answering CONNECT", None
                )
            received += len(chunk)
            if received > MAX_HEADER_BLOCK:
                raise ServerConnectError(f"the proxy {proxy.named} sent an oversized answer", None)
            head = parser.feed(chunk)
            if head is None:
                continue
            check_connect_status(
                head.status, head.reason, proxy, server, head.get_joined("Proxy-Authenticate")
            )
            if parser.trailing:
                raise ServerConnectError(
                    f"the proxy {proxy.named} sent data into the tunnel before the server spoke",
                    None,
                )
            return head.get("Proxy-Agent") or head.get("Via") or head.get("Server") or ""
    except ProtocolError as exc:
        raise ServerConnectError(exc.message, None) from exc
