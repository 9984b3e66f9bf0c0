"""The socket to the rdv server, from the attempt's port: direct, or through a proxy.

Direct, the server is reached over IPv4 when its host has an IPv4 address (the observed
address is only useful for NAT traversal there; docs/PROTOCOL.md section 9); through an
HTTP proxy, it is a ``CONNECT`` tunnel (section 17.1).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import functools
import ipaddress
import os
import socket
import ssl
from typing import Any, Final

from rdv_core.client._proxy import open_tunnel
from rdv_core.client._sockets import bound_socket, reuse_socket
from rdv_core.client._uplinks import LocalPaths, bind_to_uplink
from rdv_core.errors import ServerConnectError
from rdv_core.wire import ProxyURL, ServerURL


async def server_socket(
    server: ServerURL, port: int, proxy: ProxyURL | None, paths: LocalPaths | None = None
) -> tuple[socket.socket, str | None, tuple[Any, ...] | None]:
    """A connected socket to ``server``; through a proxy, what the proxy called itself; and
    for a direct IPv4 conn the peer's address as ``getpeername()`` says it (the
    ``sockaddr`` connected to: its stream's transport need not ask, client/_link.py).

    With ``paths`` restricted (``--interface``/``--source``), the socket leaves from the
    first allowed uplink of the server address's family (docs/LAB-NOTES.md section 13).

    Raises:
        ServerConnectError: the server (or the proxy) cannot be resolved or reached.
    """
    if proxy is not None:
        tunnel, agent = await open_tunnel(proxy, server, port=port)
        return tunnel, agent or None, None
    loop = asyncio.get_running_loop()
    try:
        infos = _literal_addrinfo(server.host, server.port) or await loop.getaddrinfo(
            server.host, server.port, family=socket.AF_INET, type=socket.SOCK_STREAM
        )
    except socket.gaierror:
        # No IPv4 for this host: IPv6 still works, only the observed address suffers.
        try:
            infos = await loop.getaddrinfo(server.host, server.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ServerConnectError(
                f"cannot resolve the rdv server host {server.host!r}: {exc}", exc.errno
            ) from exc
    try:
        return await _first_connected(server, port, infos, paths)
    except ServerConnectError as v4_failure:
        if infos[0][0] != socket.AF_INET or _literal_addrinfo(server.host, 0):
            raise
        # The name has an IPv4 address this machine cannot reach (an IPv6-only network
        # without NAT64: "Network is unreachable"), and maybe an IPv6 one that it can.
        # IPv4 first is only for the observed address (PROTOCOL section 9): a dual-stack
        # server name must still work from an IPv6-only host.
        try:
            v6 = await loop.getaddrinfo(
                server.host, server.port, family=socket.AF_INET6, type=socket.SOCK_STREAM
            )
        except socket.gaierror:
            raise v4_failure from None  # the name has no IPv6 address
        try:
            return await _first_connected(server, port, v6, paths)
        except ServerConnectError:
            if v4_failure.errno in _NO_ROUTE:
                raise  # IPv4 was never possible here: the IPv6 failure is the news
            raise v4_failure from None


async def _first_connected(
    server: ServerURL, port: int, infos: Any, paths: LocalPaths | None
) -> tuple[socket.socket, str | None, tuple[Any, ...] | None]:
    """The first of ``infos`` (``getaddrinfo`` rows) that connects, as :func:`server_socket`."""
    loop = asyncio.get_running_loop()
    last: OSError | None = None
    last_sockaddr: tuple[Any, ...] | None = None
    for family, _, _, _, sockaddr in infos:
        sock: socket.socket | None = None
        last_sockaddr = tuple(sockaddr)
        try:
            if paths is not None and paths.bound_only:
                try:
                    uplink = paths.server_uplink(family == socket.AF_INET)
                except ValueError as exc:
                    last, last_sockaddr = OSError(errno.EADDRNOTAVAIL, str(exc)), None
                    continue
                assert uplink is not None
                sock = reuse_socket(socket.AddressFamily(family))
                bind_to_uplink(sock, uplink, port)
            else:
                sock = bound_socket(socket.AddressFamily(family), port)
            await _connect(loop, sock, sockaddr)
            return sock, None, sockaddr if family == socket.AF_INET else None
        except OSError as exc:
            last = exc
            if sock is not None:
                sock.close()
        except BaseException:
            if sock is not None:
                sock.close()
            raise
    raise ServerConnectError(
        f"cannot connect to the rdv server {server}: {_why(last, last_sockaddr)}",
        last.errno if last else None,
    )


def _why(failure: OSError | None, sockaddr: tuple[Any, ...] | None = None) -> str:
    """The system's words for a failed connect (asyncio's own text, ``Connect call failed
    ('127.0.0.1', 1)``, names the address again and not the cause), and for a refusal
    what it usually means."""
    if failure is None:
        return "no address"
    if not failure.errno or failure.errno < 0:  # a resolver's code (-2) has no strerror
        return failure.strerror or str(failure)
    text = os.strerror(failure.errno)
    if failure.errno == errno.ECONNREFUSED:
        text += " (nothing listens there: is an rdv server running on that port?)"
    elif sockaddr is not None and (
        failure.errno in _NO_ROUTE or (failure.errno == errno.EADDRNOTAVAIL and len(sockaddr) == 4)
    ):
        # An IPv6-only network has no IPv4 route (and an IPv4-only one no IPv6 route):
        # "Network is unreachable" alone read as the server being down. With IPv6 turned
        # off, the connect finds no IPv6 address to leave from.
        family, other = ("IPv6", "IPv4") if len(sockaddr) == 4 else ("IPv4", "IPv6")
        lacks = {errno.ENETUNREACH: f"no {family} route", errno.EADDRNOTAVAIL: "no IPv6 address"}
        lacks_what = lacks.get(failure.errno or 0, f"{family} off")
        text += (
            f" (this machine has {lacks_what}: use the server's {other} address, "
            f"or a name with an {other} address)"
        )
    elif failure.errno == errno.EINVAL and _link_local_without_zone(sockaddr):
        text += " (an IPv6 link-local server address needs its interface, e.g. [fe80::1%eth0])"
    return text


def _link_local_without_zone(sockaddr: tuple[Any, ...] | None) -> bool:
    if sockaddr is None or len(sockaddr) != 4 or sockaddr[3]:
        return False
    try:
        return ipaddress.IPv6Address(str(sockaddr[0])).is_link_local
    except ValueError:
        return False


#: What ``connect()`` or ``socket()`` say when this machine has no way to that family.
_NO_ROUTE: Final = frozenset({errno.ENETUNREACH, errno.EAFNOSUPPORT})

#: What ``connect()`` says while the SYN waits for its answer.
_IN_FLIGHT = frozenset({errno.EINPROGRESS, errno.EALREADY, errno.EAGAIN})


async def _connect(loop: asyncio.AbstractEventLoop, sock: socket.socket, sockaddr: Any) -> None:
    """``loop.sock_connect``, minus its event-loop turn when the answer is already in.

    A server on this host (or a LAN's next hop) answers the SYN inside the first
    ``connect()`` call; a second call then reports the result at once (as the dialer
    does, client/_dialer.py). Only a SYN still in flight waits for the loop.
    """
    code = sock.connect_ex(sockaddr)
    if code in _IN_FLIGHT:
        code = sock.connect_ex(sockaddr)
    if code in (0, errno.EISCONN):
        return
    if code in _IN_FLIGHT:
        await loop.sock_connect(sock, sockaddr)  # EALREADY: it waits, then reads SO_ERROR
        return
    raise OSError(code, f"Connect call failed {sockaddr}")


@functools.lru_cache(maxsize=64)
def _literal_addrinfo(host: str, port: int) -> tuple[tuple[Any, Any, Any, Any, Any], ...]:
    """``getaddrinfo`` for an IP literal, without the resolver's thread hop (about 1 ms).

    Memoized: an IP literal always gives the same answer, and parsing it again was about
    250 bytecodes of each loopback attempt's start (``ipaddress``; issue 10).
    """
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return ()
    if isinstance(ip, ipaddress.IPv4Address):
        return ((socket.AF_INET, socket.SOCK_STREAM, 0, "", (str(ip), port)),)
    # A zone (fe80::1%eth0) goes in the scope id: the socket module ignores it in the text
    # and the connect failed "Invalid argument" (PROTOCOL section 2, the server URL).
    scope = _scope_id(host, ip.scope_id) if ip.scope_id else 0
    return ((socket.AF_INET6, socket.SOCK_STREAM, 0, "", (str(ip), port, 0, scope)),)


def _scope_id(host: str, zone: str) -> int:
    """The interface index of an IPv6 zone, a name (``eth0``) or a number."""
    if zone.isdigit():
        return int(zone)
    try:
        return socket.if_nametoindex(zone)
    except OSError:
        raise ServerConnectError(
            f"the rdv server address {host} names interface {zone!r}, which this machine "
            "does not have (`ip link` lists its interfaces)"
        ) from None


#: OpenSSL's reasons when the first "record" a TLS client reads is not TLS at all: the
#: server answered the ClientHello in plain text (an rdv server answers ``400``), or another
#: service spoke first (an SSH or SMTP banner): OpenSSL's error cannot tell which.
_NOT_TLS_REASONS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE"})
#: What the error says then (``rdv doctor``'s summary looks for it).
NOT_TLS: Final = "does not speak TLS"


def answered_in_plain(exc: BaseException) -> bool:
    """The TLS handshake failed because the server answered in plain text, not TLS."""
    return getattr(exc, "reason", None) in _NOT_TLS_REASONS


def tls_failure(server: ServerURL, exc: OSError) -> ServerConnectError:
    """The error for a failed TLS handshake with the server, in the user's terms.

    ``https://`` to a plain-HTTP server read as OpenSSL's ``wrong version number``: it is
    said as the URL to use instead. An error with no text (a conn closed mid-handshake)
    is named by its kind rather than left blank after "failed:".
    """
    if answered_in_plain(exc):
        plain = dataclasses.replace(server, scheme="http")  # the same port, said explicitly
        return ServerConnectError(
            f"the rdv server {server} {NOT_TLS} (it answered, but not in TLS): use {plain}",
            exc.errno,
        )
    return ServerConnectError(f"TLS with the rdv server {server} failed: {_said(exc)}", exc.errno)


def tls_reason(server: ServerURL, exc: OSError) -> str:
    """Why the TLS handshake failed: the URL to use when the server answered in plain
    HTTP (for ``rdv doctor``), else the TLS error itself."""
    return str(tls_failure(server, exc)) if answered_in_plain(exc) else _said(exc)


def _said(exc: OSError) -> str:
    """A TLS error in words. A refused certificate read as OpenSSL's ``[SSL:
    CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate
    (_ssl.c:1006)``: it is said as what it means and what to do about it."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = exc.verify_message or "certificate verify failed"
        return (
            f"its certificate is not trusted here ({why}; CERTIFICATE_VERIFY_FAILED): if the "
            "server is yours, set SSL_CERT_FILE to its certificate or to the CA that signed it"
        )
    return str(exc) or f"{type(exc).__name__} (the server closed the connection)"


#: What a TLS server answers a plain-HTTP request with (``400``): rdv's and Go's net/http
#: body, nginx's page. Any of them on an ``http://`` URL: the scheme is wrong.
_PLAIN_ON_TLS_WORDS: Final = (
    "HTTP request to an HTTPS server",
    "plain HTTP request was sent to HTTPS port",
)
#: What the error says then (``rdv doctor``'s summary looks for it).
SPEAKS_TLS: Final = "speaks TLS"


def plain_refused(server: ServerURL, status: int, body: str) -> ServerConnectError | None:
    """The error for a TLS server's ``400`` to our plain HTTP, as the URL to use; None when
    the answer is not that one (docs/PROTOCOL.md section 3)."""
    if server.tls or status != 400 or not any(w in body for w in _PLAIN_ON_TLS_WORDS):
        return None
    secure = dataclasses.replace(server, scheme="https")  # the same port, said explicitly
    return ServerConnectError(
        f"the rdv server {server} {SPEAKS_TLS} (it refused plain HTTP): use {secure}"
    )


#: The server's 426 words (docs/PROTOCOL.md section 3, rows 7-10) for what our request always
#: carries: HTTP/1.1, ``Connection: upgrade``, ``Upgrade: rdv/1``.
_UPGRADE_LOST: Final = (
    "requires connection upgrade",
    "missing upgrade header",
    "bad http version for upgrade",
)


def front_door_hint(status: int, body: str) -> str | None:
    """What a refusal at the front door means, when it is about the URL or the way to the
    server rather than the request: a ``404`` (no rdv at this path), a ``426`` about
    headers our request had (a reverse proxy dropped them); None for any other answer."""
    if status == 404:
        return "nothing serves rdv at this URL's path: check it (rdv serve --prefix)"
    if status != 426 or not any(words in body for words in _UPGRADE_LOST):
        return None
    return (
        "our request carried HTTP/1.1 and the Upgrade headers, so a reverse proxy in front of "
        "the server drops them (nginx: proxy_http_version 1.1 and proxy_set_header Upgrade "
        "and Connection, README 'Behind a reverse proxy')"
    )
