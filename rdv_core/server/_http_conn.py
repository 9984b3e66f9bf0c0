"""One client conn of the native front until its request is admitted (or it closes).

docs/PROTOCOL.md sections 3, 5 and 14: the PROXY header (from trusted networks), the
request head (sans-IO :class:`~rdv_core.wire.HeadParser`, fed in pieces), the plain routes
(``/healthz``, ``/metrics``), pipelining with its bounds, and the hand-off of an rdv request
to :meth:`RdvServer.check` and :meth:`RdvServer.admit`. The listener, its accept loop and
the front's lifetime are :mod:`._native`'s.

Plain responses keep HTTP/1.1 conns alive, as the reference does; HTTP/1.0, ``Connection:
close`` and requests carrying a body are answered and closed. Pipelined requests are
answered one after the other, and only while the client reads the answers: once
:data:`WRITE_HIGH_WATER` bytes of them wait unsent, the conn stops reading and parsing until
they drain, so a client that pipelines and never reads holds at most one read of requests
and that many answer bytes, and is closed by the head timeout. And a conn gets at most
:data:`PIPELINE_BURST` requests answered per event-loop turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final, Literal, cast

from rdv_core import wire
from rdv_core.server import _metrics as metrics
from rdv_core.server._core import CLOSED
from rdv_core.server._deploy_hints import PROXY_FROM_STRANGER, refused_why
from rdv_core.server._head_slots import (
    REFUSAL_WAIT_S,
    TOO_MANY_HEADS,
    Slot,
    refusal,
)
from rdv_core.server._keepalive import enable_keepalive
from rdv_core.server._observed import transport_peer_addr
from rdv_core.server._plain_response import respond
from rdv_core.server._probe_ports import serve_probe
from rdv_core.wire import (
    Addr,
    Head,
    HeadParser,
    ProtocolError,
    ProxyHeaderError,
    ProxyHeaderParser,
    RequestRejected,
)

if TYPE_CHECKING:
    from rdv_core.server._native import NativeFront

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


#: How much one read of a request head asks for: asyncio's selector transports ask 256 KiB,
#: over glibc's mmap threshold (128 KiB), so that in a fresh server each read of a 160-byte
#: request mapped, faulted in, shrank and unmapped a buffer of its own (mmap, mremap,
#: munmap: about 10 us per request on loopback, issue 10). Heads are at most 16 KiB.
HEAD_READ_SIZE: Final = 64 * 1024


def _head_reads(transport: asyncio.BaseTransport) -> None:
    """Let ``transport`` read at most :data:`HEAD_READ_SIZE` at a time (asyncio's selector
    transports; uvloop's and TLS's are left as they are)."""
    if getattr(type(transport), "max_size", None) is None:
        return
    with contextlib.suppress(AttributeError):  # a transport type without a __dict__
        transport.max_size = HEAD_READ_SIZE  # type: ignore[attr-defined]


def _full_reads(transport: asyncio.BaseTransport) -> None:
    """Undo :func:`_head_reads`: an admitted conn reads at asyncio's own size, as before."""
    with contextlib.suppress(AttributeError):
        del transport.max_size  # type: ignore[attr-defined]


class HttpConn(asyncio.Protocol):
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
        _head_reads(transport)
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
        _full_reads(self._transport)  # the conn may carry a relayed session now
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
