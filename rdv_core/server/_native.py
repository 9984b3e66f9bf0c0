"""The native asyncio front: what ``rdv serve`` runs.

A bare :class:`asyncio.Protocol` per conn parses the request head with the sans-IO
:class:`~rdv_core.wire.HeadParser`, answers its few plain routes itself and hands
every other request to :meth:`RdvServer.check` (the section 3 decision both fronts share),
then frames the refusal or hands the conn to :meth:`RdvServer.admit`. It is
lean on purpose (docs/ARCHITECTURE.md section 3): a lobby conn costs a transport, one small
protocol object and the core's bookkeeping, nothing else.

Routes (``GET``/``HEAD``, at the root whatever the prefix):

- ``/healthz``: ``200 ok`` (``503 rdv is closed`` after shutdown);
- ``/metrics``: Prometheus text (:mod:`rdv_core.server._metrics`).

With ``proxy_protocol`` networks, a conn may start with a PROXY v1/v2 header
(docs/PROTOCOL.md section 14), read before the HTTP head: from those networks its source
address becomes the client's address and observed address; from anywhere else the conn is
refused with ``400``.

Everything else is an rdv request under ``prefix``. Plain responses keep HTTP/1.1
conns alive, as the reference does; HTTP/1.0, ``Connection: close`` and requests
carrying a body are answered and closed.

Pipelined requests are answered one after the other, and only while the client reads the
answers: once :data:`WRITE_HIGH_WATER` bytes of them wait unsent, the conn stops reading
and parsing until they drain, so a client that pipelines and never reads holds at most one
read of requests and that many answer bytes, and is closed by the head timeout. And a
conn gets at most :data:`PIPELINE_BURST` requests answered per event-loop turn.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl as ssl_module
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Final, Literal, cast

from rdv_core import wire
from rdv_core.server import _metrics as metrics
from rdv_core.server import _tls_front as tls_front
from rdv_core.server._accept import AT_CAPACITY, Listener, bind_sockets, transport_now
from rdv_core.server._core import CLOSED, RdvServer
from rdv_core.server._deploy_hints import PROXY_FROM_STRANGER, refused_why
from rdv_core.server._head_slots import (
    REFUSAL_WAIT_S,
    TOO_MANY_HEADS,
    HeadSlots,
    Slot,
    refusal,
    socket_peer,
)
from rdv_core.server._keepalive import enable_keepalive, keepalive_on_listeners
from rdv_core.server._observed import TrustedProxies, transport_peer_addr
from rdv_core.server._plain_response import respond
from rdv_core.server._probe_ports import serve_probe
from rdv_core.server._probes import ProbeService
from rdv_core.wire import (
    Addr,
    Head,
    HeadParser,
    IPAddress,
    ProtocolError,
    ProxyHeaderError,
    ProxyHeaderParser,
    RequestRejected,
)

log = logging.getLogger("rdv.server")

#: A conn must deliver a whole request head within this many seconds (and an idle keep-alive
#: conn is closed after it; over TLS, the handshake first): slow clients cost no more than that.
HEAD_TIMEOUT_S: Final = 30.0
#: Header block bound for requests: rdv requests are small.
MAX_REQUEST_HEAD: Final = 16 * 1024
PLAIN_ROUTES: Final = frozenset({"/healthz", "/metrics"})
#: Unsent answer bytes past which a conn stops reading pipelined requests (docs/LAB-NOTES.md
#: section 10: a pipelining client that never read grew the server by 300 MB for 5 MiB).
WRITE_HIGH_WATER: Final = 64 * 1024
#: The parser is fed at most this much at a time: the bytes after a head are copied once
#: per request, so many small pipelined requests in one read cost linear time, not quadratic.
FEED_PIECE: Final = 4096
#: Pipelined requests a conn gets answered per event-loop turn: one conn cannot keep the
#: loop (and every other client) waiting while it feeds thousands of requests.
PIPELINE_BURST: Final = 16


class _HttpConn(asyncio.Protocol):
    """One client conn until its request is admitted (or it closes)."""

    __slots__ = (
        "_front",
        "_inbox",
        "_parser",
        "_paused",
        "_proxied",
        "_proxy",
        "_remote",
        "_slot",
        "_timer",
        "_transport",
    )

    def __init__(self, front: NativeFront, slot: Slot | None = None) -> None:
        """``slot``: the conn's place in :class:`HeadSlots`, when its TLS handshake took it."""
        self._front = front
        self._slot: Slot | Literal[False] | None = slot
        self._parser = HeadParser("request", MAX_REQUEST_HEAD)
        self._proxy = ProxyHeaderParser(required=False) if front.proxy_from is not None else None
        self._proxied = False
        self._transport: asyncio.Transport | None = None
        self._remote: Addr | None = None
        self._timer: asyncio.TimerHandle | None = None
        #: Received bytes not parsed yet because writing is paused.
        self._inbox = b""
        self._paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # cast, not isinstance: uvloop's transports do not subclass asyncio.Transport.
        self._transport = cast(asyncio.Transport, transport)
        self._remote = transport_peer_addr(transport)
        if self._slot is None:
            self._slot = self._front.heads.take(self._remote)
        if self._slot is False:  # its source holds its share of unfinished conns (slowloris)
            # Answered once the request's first bytes are read (closed with them unread, the
            # conn would be reset, the 429 lost), or closed after a short silence.
            self._front.server.count_reject(429, TOO_MANY_HEADS, self._remote, "")
            self._timer = asyncio.get_running_loop().call_later(REFUSAL_WAIT_S, self.close)
            return
        if not self._front.keepalive_inherited:
            enable_keepalive(transport)
        self._transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self._front._conns.add(self)
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(HEAD_TIMEOUT_S, self.close)

    def close(self) -> None:
        """Close the conn (head timeout, front shutdown); drop answers nobody reads."""
        transport = self._transport
        if transport is None:
            return
        if transport.get_write_buffer_size():
            transport.abort()
        else:
            transport.close()

    def pause_writing(self) -> None:
        self._paused = True
        assert self._transport is not None
        self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.resume_reading()
        self.data_received(b"")

    def data_received(self, data: bytes) -> None:
        if self._slot is False:
            assert self._transport is not None
            self._transport.write(refusal())
            self._transport.close()
            return
        if self._inbox:
            data, self._inbox = self._inbox + data, b""
        if self._proxy is not None:
            after = self._take_proxy_header(data)
            if after is None:
                return
            data = after
        transport = self._transport
        pos = answered = 0
        while pos < len(data) and transport is not None and not transport.is_closing():
            if self._paused or answered == PIPELINE_BURST:
                self._inbox = data[pos:]
                if not self._paused:
                    transport.pause_reading()
                    asyncio.get_running_loop().call_soon(self._next_burst)
                return
            piece = data[pos : pos + FEED_PIECE]
            try:
                head = self._parser.feed(piece)
            except ProtocolError as exc:
                self._answer_bad_request(exc)
                return
            if head is None:
                pos += len(piece)
                continue
            pos += len(piece) - len(self._parser.trailing)
            self._parser = HeadParser("request", MAX_REQUEST_HEAD)
            if not self._handle(head, data, pos):
                return
            answered += 1
            self._arm_timer()

    def _next_burst(self) -> None:
        transport = self._transport
        if self._paused or transport is None or transport.is_closing():
            return  # resume_writing goes on, or the conn is gone
        transport.resume_reading()
        self.data_received(b"")

    def _take_proxy_header(self, data: bytes) -> bytes | None:
        """The bytes after the PROXY header, if any; None until it is whole (or refused)."""
        assert self._proxy is not None and self._front.proxy_from is not None
        parser = self._proxy
        try:
            header = parser.feed(data)
            if header is not None and (
                self._remote is None or not self._front.proxy_from(self._remote.ip)
            ):
                raise ProxyHeaderError(PROXY_FROM_STRANGER)
        except ProxyHeaderError as exc:
            self._answer_bad_request(exc)
            return None
        if not parser.finished:
            return None
        self._proxy = None
        if header is not None and header.source is not None:
            # v1 UNKNOWN, v2 LOCAL (health checks) and unix sockets name no client: the
            # conn keeps its TCP peer and the usual observed-address rules.
            self._remote, self._proxied = header.source.unmapped(), True
        return parser.trailing

    def _answer_bad_request(self, exc: ProtocolError) -> None:
        assert self._transport is not None
        why = refused_why(exc.message, self._front.proxy_from is not None)
        self._front.server.count_reject(exc.status, why, self._remote, "")
        # Go's bare pre-handler error, then close (build_rejection never keeps these open).
        self._transport.write(wire.build_rejection(exc).data)
        self._transport.close()

    def _handle(self, head: Head, data: bytes, pos: int) -> bool:
        """Serve one request (``data[pos:]`` follows it); True if the conn stays ours."""
        assert self._transport is not None
        server = self._front.server
        path = wire.request_path(head.target)
        probes = self._front.probes
        if probes is not None and probes.handles(head.method, path):
            # docs/PROTOCOL.md section 15.1; the client as the PROXY header named it, if any.
            return serve_probe(probes, self._transport, head, self._remote, self._proxied)
        if head.method in ("GET", "HEAD") and path in PLAIN_ROUTES:
            if path == "/metrics":
                body, content_type = self._front.metrics.text(), metrics.CONTENT_TYPE
                status = 200
            elif server.closed:
                body, content_type, status = CLOSED + "\n", "text/plain; charset=utf-8", 503
            else:
                body, content_type, status = "ok\n", "text/plain; charset=utf-8", 200
            return respond(self._transport, head, status, body, content_type)
        request = server.check(head, self._front.prefix, self._remote)
        if isinstance(request, RequestRejected):
            if request.http_level:
                # Go's net/http refuses these before any handler (bad target or escape,
                # HTTP/2.0, Host): its bare error, then close, even on keep-alive.
                self._transport.write(wire.build_rejection(request, head).data)
                self._transport.close()
                return False
            return respond(self._transport, head, request.status, request.message + "\n")
        self._hand_off()
        server.admit(
            request, self._transport, self._remote, trailing=data[pos:], proxied=self._proxied
        )
        return False

    def _hand_off(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._front._conns.discard(self)
        if self._slot:
            self._front.heads.give(self._slot)
        self._slot = None

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._hand_off()
        self._transport = None


class NativeFront:
    """A listening native front for an :class:`RdvServer`.

    Attributes:
        server: The core it feeds.
        prefix: Mount path of rdv requests (``""`` or e.g. ``/rdv``).
        port: The first listening port.
        url: The server URL clients use, e.g. ``http://127.0.0.1:8080/rdv``.
    """

    def __init__(
        self,
        server: RdvServer,
        prefix: str,
        tls: bool,
        host: str | None,
        proxy_from: Callable[[IPAddress], bool] | None = None,
    ) -> None:
        self.server = server
        #: Whether a TCP peer may send a PROXY header; None: PROXY protocol is off.
        self.proxy_from = proxy_from
        self.prefix = _normalize_prefix(prefix)
        self._tls = tls
        self._host = host
        self._ssl: ssl_module.SSLContext | None = None
        self._listener: Listener | None = None
        #: The listeners hand TCP keepalive down to their conns (server/_keepalive.py).
        self.keepalive_inherited = False
        self._conns: set[_HttpConn] = set()
        #: ``/metrics``: a costly render is served again for a second (it walks every pair).
        self.metrics = metrics.Scrapes(server.stats)
        #: Unfinished conns per source: one address cannot hold every fd (slowloris).
        trusts_proxies = proxy_from is not None or isinstance(server.observed_addr, TrustedProxies)
        self.heads = HeadSlots(
            lambda: server.lobby_limits, self._is_proxy if trusts_proxies else None
        )
        self._connecting: set[asyncio.Future[None]] = set()
        self.port = 0
        #: The doctor's probe routes (docs/PROTOCOL.md section 14.1), when served.
        self.probes: ProbeService | None = None

    @property
    def url(self) -> str:
        """The URL clients use (wildcard hosts shown as ``0.0.0.0`` / ``[::]``)."""
        host = self._host or "0.0.0.0"
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{host}:{self.port}{self.prefix}"

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets."""
        return tuple(self._listener.sockets) if self._listener is not None else ()

    async def _start(self, host: str | None, port: int, ssl: ssl_module.SSLContext | None) -> None:
        self._ssl = ssl
        # Our own accept loop (not loop.create_server): it survives running out of fds.
        sockets = bind_sockets(host, port, backlog=1024)
        self.keepalive_inherited = keepalive_on_listeners(sockets)
        self._listener = Listener(sockets, self._accepted, ssl is None, self._shed)
        self.port = sockets[0].getsockname()[1]

    def _is_proxy(self, remote: Addr) -> bool:
        """A trusted balancer's conn (PROXY protocol or forwarding headers): not counted."""
        observed = self.server.observed_addr
        return (self.proxy_from is not None and self.proxy_from(remote.ip)) or (
            isinstance(observed, TrustedProxies) and observed.trusts(remote.ip)
        )

    def _accepted(self, sock: socket.socket) -> None:
        if self._ssl is None and transport_now(sock, lambda: _HttpConn(self)):
            return
        task = asyncio.ensure_future(self._connect(sock))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        # A TLS handshake gets the head's deadline, not the loop's default 60 s: a client
        # that connects and stays silent costs no more on an https server than on http.
        handshake: dict[str, float] = {}
        # A TLS handshake holds the conn's fd as long as a head: it takes the slot first.
        remote = socket_peer(sock) if self._ssl is not None else None
        slot = self.heads.take(remote) if remote is not None else None
        if slot is False:  # no TLS for it: a plain 429 would be noise to a TLS client
            self.server.count_reject(429, TOO_MANY_HEADS, remote, "")
            sock.close()
            return
        if self._ssl is not None:  # plain HTTP on the TLS port is answered in plain words
            left = await tls_front.front_door(
                sock,
                HEAD_TIMEOUT_S,
                MAX_REQUEST_HEAD,
                lambda: self._give(slot),
                lambda why, method: self.server.count_reject(400, why, remote, method),
            )
            if left is None:
                return
            handshake["ssl_handshake_timeout"] = left  # the deadline counts the peek's wait
        conn = _HttpConn(self, slot)
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: conn, sock, ssl=self._ssl, **handshake
            )
        except Exception as exc:  # a failed TLS handshake, a conn reset, EMFILE on uvloop
            log.debug("conn dropped before its first byte: %r", exc)
            conn.connection_lost(exc)  # gives its slot back (once)
            sock.close()
            return
        handed = transport.get_extra_info("socket")
        if handed is not None and handed.fileno() != sock.fileno():
            sock.close()  # uvloop works on a duplicate of the descriptor
        if self._listener is None:
            transport.close()

    def _give(self, slot: Slot | None) -> None:
        if slot:
            self.heads.give(slot)

    def _shed(self, status: int, method: str) -> None:
        if status != 200:
            self.server.count_reject(status, AT_CAPACITY, None, method)

    async def close(self) -> None:
        """Stop listening and close conns that have not been admitted (idle keep-alive).

        Conns the core owns are closed by :meth:`RdvServer.close`.
        """
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for conn in list(self._conns):
            conn.close()
        # Let the closes reach connection_lost.
        await asyncio.sleep(0)

    async def __aenter__(self) -> NativeFront:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _normalize_prefix(prefix: str) -> str:
    prefix = prefix.strip()
    if not prefix or prefix == "/":
        return ""
    if not prefix.startswith("/"):
        prefix = "/" + prefix
    return prefix.rstrip("/")


async def start_native(
    server: RdvServer,
    host: str | None = "127.0.0.1",
    port: int = 0,
    ssl: ssl_module.SSLContext | None = None,
    prefix: str = "",
    proxy_protocol: Iterable[str] = (),
    probes: ProbeService | None = None,
) -> NativeFront:
    """Listen on ``host:port`` (None or ``""``: every interface) and serve ``server``.

    ``proxy_protocol``: networks (CIDR) whose conns may start with a PROXY v1/v2 header,
    which then names the client (docs/PROTOCOL.md section 14); a PROXY header from any
    other address is refused. Empty: PROXY protocol off.

    ``probes`` adds the doctor's routes (``rdv serve --probe-port/--dial-back``).

    Raises:
        OSError: when the address cannot be bound.
        ValueError: for a bad network, or PROXY protocol with TLS (the header would come
            before the TLS handshake: terminate TLS at the balancer).
    """
    networks = list(proxy_protocol)
    if networks and ssl is not None:
        raise ValueError("PROXY protocol with TLS at rdv is not supported: terminate TLS first")
    proxy_from = TrustedProxies(networks).trusts if networks else None
    front = NativeFront(
        server, prefix, tls=ssl is not None, host=host or None, proxy_from=proxy_from
    )
    front.probes = probes
    await front._start(host or None, port, ssl)
    log.debug("native front listening on %s", front.url)
    return front


@asynccontextmanager
async def serve_native(
    server: RdvServer,
    host: str | None = "127.0.0.1",
    port: int = 0,
    ssl: ssl_module.SSLContext | None = None,
    prefix: str = "",
    proxy_protocol: Iterable[str] = (),
) -> AsyncIterator[NativeFront]:
    """``start_native`` as a context manager: on exit, the server and the front close."""
    front = await start_native(server, host, port, ssl, prefix, proxy_protocol)
    try:
        yield front
    finally:
        await server.close()
        await front.close()
