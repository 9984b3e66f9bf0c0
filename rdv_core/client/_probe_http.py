"""A plain ``GET`` on a conn we made, answered with a small body: the doctor's probes, and the
client's own ``/.rdv/observed`` question from a second uplink (docs/PROTOCOL.md 17.3).

Conns come from :func:`rdv_core.client.reuse_socket`-style sockets bound to the shared port,
so we connect them ourselves and hand them to asyncio; the response head is parsed by the
sans-IO :class:`~rdv_core.wire.HeadParser`, the body read by ``Content-Length`` (bounded).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from rdv_core.client._response import STATUS_START, not_http
from rdv_core.wire import USER_AGENT, Head, HeadParser, ProtocolError
from rdv_core.wire._probe import MAX_PROBE_BODY

#: Every step of the doctor's HTTP is bounded by this many seconds.
HTTP_TIMEOUT_S: Final = 3.0


class ProbeHttpError(OSError):
    """A probe request failed (conn, status or framing); the message says how."""


class ProbeSilent(ProbeHttpError):
    """The conn stayed open and no answer came within the timeout (not an HTTP server, or
    something between us holding the conn)."""


@dataclass(slots=True)
class HttpConn:
    """An open conn to a server, and what we know of it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    host_header: str
    connect_ms: float
    tls: bool
    #: What a ``get`` waits for its answer when not told (the ``wait_s`` of its open).
    wait_s: float = HTTP_TIMEOUT_S

    async def get(
        self, path: str, headers: Sequence[tuple[str, str]] = (), wait_s: float | None = None
    ) -> tuple[int, bytes]:
        """``GET path`` on this conn: ``(status, body)``, within ``wait_s`` (default: the
        conn's :attr:`wait_s`).

        Raises:
            ProbeHttpError: the conn failed, closed, or the response is malformed.
        """
        lines = [f"GET {path} HTTP/1.1", f"Host: {self.host_header}", f"User-Agent: {USER_AGENT}"]
        lines += [f"{k}: {v}" for k, v in headers]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        wait_s = self.wait_s if wait_s is None else wait_s
        try:
            async with asyncio.timeout(wait_s):
                await self.writer.drain()
                head = await _read_head(self.reader)
                body = await _read_body(self.reader, head)
        except TimeoutError:
            raise ProbeSilent(f"no answer to GET {path} within {wait_s:g} s") from None
        except _ClosedFirst:
            # A TLS server does so to plain HTTP (the doctor's summary says it for http://).
            raise ProbeHttpError(f"GET {path}: {CLOSED_FIRST}") from None
        except asyncio.IncompleteReadError:
            # Its own words: "0 bytes read on a total of undefined expected bytes".
            raise ProbeHttpError(f"GET {path}: the server closed the conn mid-answer") from None
        except OSError as exc:
            raise ProbeHttpError(f"GET {path}: {exc or type(exc).__name__}") from None
        return head.status, body

    def close(self) -> None:
        self.writer.close()


async def open_conn(
    sock: socket.socket,
    addr: tuple[str, int] | tuple[str, int, int, int],
    host_header: str,
    tls_host: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    wait_s: float = HTTP_TIMEOUT_S,
) -> HttpConn:
    """Connect ``sock`` (non-blocking, bound) to ``addr``; TLS when ``tls_host`` is given.

    The socket is closed on failure.

    Raises:
        OSError: the connect (or TLS) failed; TimeoutError after ``wait_s``.
    """
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    try:
        async with asyncio.timeout(wait_s):
            await loop.sock_connect(sock, addr)
    except BaseException:
        sock.close()
        raise
    connect_ms = (time.perf_counter() - started) * 1000
    return await wrap_conn(sock, host_header, connect_ms, tls_host, ssl_context, wait_s)


async def wrap_conn(
    sock: socket.socket,
    host_header: str,
    connect_ms: float,
    tls_host: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    wait_s: float = HTTP_TIMEOUT_S,
) -> HttpConn:
    """An :class:`HttpConn` on a connected ``sock`` (a direct conn, or a proxy's tunnel).

    The socket is closed on failure.

    Raises:
        OSError: the TLS handshake failed; TimeoutError after ``wait_s``.
    """
    try:
        async with asyncio.timeout(wait_s):
            context = None
            if tls_host is not None:
                context = ssl_context or ssl.create_default_context()
            reader, writer = await asyncio.open_connection(
                sock=sock, ssl=context, server_hostname=tls_host if context else None
            )
    except BaseException:
        sock.close()
        raise
    return HttpConn(reader, writer, host_header, connect_ms, tls_host is not None, wait_s)


class _ClosedFirst(Exception):
    """The conn ended before the response's first byte."""


#: What a probe says then (it said "mid-answer", though no answer had begun).
CLOSED_FIRST: Final = "the server closed the conn before answering"


async def _read_head(reader: asyncio.StreamReader) -> Head:
    parser = HeadParser("response")
    try:
        start = await reader.readexactly(len(STATUS_START))
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise _ClosedFirst from None
        raise
    if start != STATUS_START:  # another service's banner (SSH, SMTP): said at once
        raise ProbeHttpError(not_http(start, reader))
    parser.feed(start)
    while True:
        try:
            line = await reader.readuntil(b"\n")  # a close now is "mid-answer" (get)
        except asyncio.LimitOverrunError:
            # Not an OSError: it escaped every handler, and rdv doctor ended on a traceback.
            raise ProbeHttpError("bad response: a header line over 64 KiB") from None
        try:
            head = parser.feed(line)
        except ProtocolError as exc:
            raise ProbeHttpError(f"bad response: {exc.message}") from None
        if head is not None:
            return head


async def _read_body(reader: asyncio.StreamReader, head: Head) -> bytes:
    try:
        length = head.content_length
    except ProtocolError:
        length = None
    if length is None:
        if head.has("Transfer-Encoding"):
            raise ProbeHttpError("response without Content-Length")
        # Close-delimited (RFC 9112 section 6.3): Go's answer to plain HTTP on its TLS port
        # is one, and the doctor must read its words (the conn is spent after it).
        body = b""
        while chunk := await reader.read(MAX_PROBE_BODY + 1 - len(body)):
            body += chunk
            if len(body) > MAX_PROBE_BODY:
                raise ProbeHttpError("close-delimited response body too large for a probe")
        return body
    if length > MAX_PROBE_BODY:
        # Read and drop nothing: the conn is not reusable, and the body is not ours to want.
        raise ProbeHttpError(f"response body of {length} bytes is too large for a probe")
    return await reader.readexactly(length)
