"""Mount rdv in an aiohttp application, under any prefix, behind its middlewares.

::

    from aiohttp import web
    from rdv_core.server._aiohttp import mount
    from rdv_core.server._core import RdvServer
from rdv_core.server._http_conn import MAX_REQUEST_HEAD
from rdv_core.server._keepalive import enable_keepalive

    app = web.Application(middlewares=[my_auth])
    rdv = RdvServer()
    mount(app, rdv, "/rdv")        # clients use http://host:port/rdv
    web.run_app(app)

Two aiohttp facts shape this module (docs/ARCHITECTURE.md section 3):

- **aiohttp's C request parser (llhttp) rejects the ``DIAL`` and ``ACCEPT`` methods**
  with ``400 Invalid method encountered`` before any handler or middleware runs; its
  pure-Python parser accepts them. :func:`allow_rdv_methods` (called by :func:`mount`)
  makes aiohttp choose the parser per connection: a conn whose first bytes are
  ``DIAL `` or ``ACCEPT `` gets the pure-Python parser, every other conn keeps the fast
  C parser. Setting ``AIOHTTP_NO_EXTENSIONS=1`` would also work, but slows every
  request of the application. Limitation: on a keep-alive conn the first request
  decides, so a ``DIAL`` after a ``GET`` on the same conn is still rejected (rdv
  clients open one conn per request; a reverse proxy must not pool rdv upgrades).
- aiohttp only knows websocket upgrades. The rdv handler writes the ``101`` itself and
  takes the connection over with ``transport.set_protocol``; the handler then stays
  suspended until the core has closed the conn, because aiohttp closes the transport
  when a handler returns. Everything that leans on aiohttp internals is in this module
  and pinned by ``tests/test_server_aiohttp.py``.
- From the takeover on, aiohttp must write nothing into the conn: a cancelled handler (the
  app's shutdown, a middleware's timeout) ends its conn as the server's shutdown does, and
  rdv routes get no ``100 Continue``. What the native front bounds before the takeover (the
  head's size, bytes after it, TCP keepalive) the handler bounds the same way; the head's
  deadline and its slots per address stay aiohttp's (README, the aiohttp section;
  ``tests/test_server_aiohttp_hostile.py``, ``tests/test_server_aiohttp_limits.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from aiohttp import web_protocol as _web_protocol
from aiohttp.http_parser import HttpRequestParserPy

from rdv_core.server._core import RdvServer
from rdv_core.server._http_conn import MAX_REQUEST_HEAD
from rdv_core.server._keepalive import enable_keepalive
from rdv_core.server._observed import transport_peer_addr
from rdv_core.server._probes import ProbeService
from rdv_core.wire import MAX_HEADERS, Addr, Head, RdvRequest, RequestRejected

log = logging.getLogger("rdv.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_RDV_PREFIXES = (b"DIAL ", b"ACCEPT ")
#: What the native front answers a head over its bound (docs/PROTOCOL.md section 3, row 1).
HEAD_TOO_LARGE: Final = RequestRejected("431 Request Header Fields Too Large", 431, http_level=True)


class _RdvAwareRequestParser:
    """Picks aiohttp's pure-Python parser for rdv conns, its default parser for the rest."""

    _rdv_aware = True
    _default: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = args
        self._kwargs = kwargs
        self._impl: Any = None
        self._start = b""

    def _choose(self, python: bool) -> Any:
        cls = HttpRequestParserPy if python else type(self)._default
        self._impl = cls(*self._args, **self._kwargs)
        return self._impl

    def feed_data(self, data: bytes) -> Any:
        if self._impl is None:
            start = self._start + data
            if any(m.startswith(start) and len(start) < len(m) for m in _RDV_PREFIXES):
                # Not enough bytes to tell yet (a client may send "DI" then "AL /x ...").
                self._start = start
                return [], False, b""
            self._start = b""
            return self._choose(start.startswith(_RDV_PREFIXES)).feed_data(start)
        if self._start:
            # Chosen by __getattr__ while a method prefix was still pending.
            data, self._start = self._start + data, b""
        return self._impl.feed_data(data)

    def __getattr__(self, name: str) -> Any:
        impl = self.__dict__.get("_impl")
        if impl is None:
            # aiohttp asked for something (pause_reading, feed_eof) before the first bytes
            # told: a pending "DI" or "ACC" can only become an rdv request.
            impl = self._choose(bool(self.__dict__.get("_start")))
        return getattr(impl, name)


def allow_rdv_methods() -> None:
    """Let aiohttp servers in this process parse ``DIAL``/``ACCEPT`` requests (idempotent).

    Conns that start with another method keep aiohttp's default (C) parser.
    """
    # RequestHandler builds its parser from this module global, once per connection.
    current = getattr(_web_protocol, "HttpRequestParser")  # noqa: B009 (not re-exported)
    if getattr(current, "_rdv_aware", False):
        return
    _RdvAwareRequestParser._default = current
    setattr(_web_protocol, "HttpRequestParser", _RdvAwareRequestParser)  # noqa: B010


class _TakenOver(web.StreamResponse):
    """What the rdv handler returns once the core has closed the conn: writes nothing."""

    def __init__(self) -> None:
        super().__init__(status=101)

    async def prepare(self, request: web.BaseRequest) -> Any:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def _plain(status: int, body: str) -> web.Response:
    return web.Response(
        status=status,
        text=body,
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


def _request_head(request: web.Request) -> Head:
    version = f"HTTP/{request.version.major}.{request.version.minor}"
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
    return Head(
        start_line=f"{request.method} {request.raw_path} {version}",
        version=version,
        headers=headers,
        method=request.method,
        target=request.raw_path,
    )


def rdv_handler(server: RdvServer, prefix: str = "") -> Handler:
    """An aiohttp handler serving rdv requests whose path is ``prefix/<token>``.

    Use it for custom routing; :func:`mount` adds it under a prefix for you. Call
    :func:`allow_rdv_methods` once when you do not use :func:`mount`, add the route with
    ``expect_handler=no_continue``, and close ``server`` in the app's ``on_shutdown``
    (else aiohttp cancels the handlers after its shutdown timeout, which resets the pairs).
    """
    prefix = prefix.rstrip("/")

    async def handle(request: web.Request) -> web.StreamResponse:
        remote = _remote(request)
        if _head_too_large(request):
            # aiohttp's parser takes 128 header lines of 8190 bytes (1 MiB), and a lobby conn
            # keeps its headers while it waits: 100 such requests from one address, within
            # its lobby cap, grew the app by 284 MiB. The native front's bound holds here.
            server.count_reject(431, "HTTP header block too large", remote, request.method)
            rdv_request: RdvRequest | RequestRejected = HEAD_TOO_LARGE
        else:
            rdv_request = server.check(_request_head(request), prefix, remote)
        if isinstance(rdv_request, RequestRejected):
            if rdv_request.http_level:
                # Go's net/http refuses these before any handler: its public error as the
                # body (no newline), then the conn is closed (wire.build_rejection).
                response = _plain(rdv_request.status, rdv_request.message)
                response.force_close()
                return response
            return _plain(rdv_request.status, rdv_request.message + "\n")
        transport = request.transport
        if transport is None or transport.is_closing():
            raise web.HTTPBadRequest(text="connection closed")
        handler_protocol = request.protocol
        trailing = _bytes_after_head(request)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def release(exc: BaseException | None) -> None:
            if not done.done():
                done.set_result(None)
            # aiohttp never sees this conn close (its protocol was replaced): tell it, so
            # that its connection bookkeeping and keep-alive state end with the conn.
            handler_protocol.connection_lost(exc)

        # aiohttp sets SO_KEEPALIVE with the kernel's timings (first probe after 2 h): a
        # lobby client whose machine vanished held its slot and its address's share of the
        # caps for 2 h 11 min, against 2 min on the native front (docs/PROTOCOL.md 8).
        enable_keepalive(transport)
        peer = server.admit(rdv_request, transport, remote, trailing=trailing, release=release)
        try:
            await done
        except asyncio.CancelledError:
            # aiohttp cancels a handler at the app's shutdown (after its shutdown_timeout),
            # a middleware's timeout cancels it too; either then writes its own 504 or
            # closes the transport, into a conn the core owns: a relayed peer read
            # "HTTP/1.1 504" inside its stream, then a FIN as if its partner had ended.
            # The server ends it first, as at its own shutdown (docs/PROTOCOL.md section 8):
            # 503 in the lobby, its pair reset. Nothing once the conn is gone (aiohttp's
            # handler_cancellation cancels the handler when release reports the close).
            server.cut(peer)
            raise
        return _TakenOver()

    return handle


def _head_too_large(request: web.Request) -> bool:
    """Whether the head is over the native front's bounds: 16 KiB, 100 header lines."""
    raw = request.raw_headers
    if len(raw) > MAX_HEADERS:
        return True
    line = len(request.method) + len(request.raw_path) + 12  # " HTTP/1.1\r\n" and a space
    return line + sum(len(k) + len(v) + 4 for k, v in raw) + 2 > MAX_REQUEST_HEAD


def _bytes_after_head(request: web.Request) -> bytes:
    """Bytes the client sent after the request head, which aiohttp already buffered.

    A lobby client must send nothing (the core answers ``400``), so any byte counts.
    aiohttp does not treat ``Upgrade: rdv/1`` as an upgrade: the bytes sit in its
    parser's tail, or became further pipelined messages, or (for a head announcing a body:
    ``Content-Length``, ``Transfer-Encoding``) aiohttp's body reader took them, where the
    native front would have seen them after the head. Only a chunked body's unfinished
    size line is not seen here (it then waits as if it had sent nothing).
    """
    content = request.content
    if content.total_bytes or (request.body_exists and content.at_eof()):
        return b"\n"
    handler_protocol = request.protocol
    parser = getattr(handler_protocol, "_parser", None)
    tail = getattr(parser, "_tail", b"") if parser is not None else b""
    tail = bytes(getattr(handler_protocol, "_message_tail", b"") or b"") + bytes(tail or b"")
    if not tail and getattr(handler_protocol, "_messages", None):
        tail = b"\n"
    return tail


def mount(
    app: web.Application,
    server: RdvServer,
    prefix: str = "/rdv",
    probes: ProbeService | None = None,
) -> None:
    """Serve rdv requests at ``prefix/<token>`` in ``app`` (behind its middlewares).

    ``probes`` (a ``ProbeService``) adds the doctor's routes at the root, first
    (docs/PROTOCOL.md section 15.1).

    Also calls :func:`allow_rdv_methods`, so aiohttp can parse ``DIAL``/``ACCEPT``.
    The server is closed on the app's cleanup (``503`` to lobby clients).
    """
    allow_rdv_methods()
    if probes is not None:
        from rdv_core.server._probe_aiohttp import mount_probes

        mount_probes(app, probes)
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    handle = rdv_handler(server, prefix)
    app.router.add_route("*", f"{prefix}/{{token:.*}}", handle, expect_handler=no_continue)
    if prefix:
        app.router.add_route("*", prefix, handle, expect_handler=no_continue)

    async def close_rdv(_app: web.Application) -> None:
        await server.close()

    app.on_shutdown.append(close_rdv)


async def no_continue(request: web.Request) -> None:
    """The ``expect_handler`` of rdv routes: never an interim ``100 Continue``.

    aiohttp's default one writes ``HTTP/1.1 100 Continue`` to every request with
    ``Expect: 100-continue``, before any middleware or handler runs, and a lobby conn
    receives no bytes until its ``101`` (docs/PROTOCOL.md section 8); Go's net/http sends it
    only when a handler reads the body, which the reference's never does. An rdv request
    carries no body: one that comes anyway is a lobby violation (``400``).
    """
    return None


def _remote(request: web.Request) -> Addr | None:
    return transport_peer_addr(request.transport) if request.transport is not None else None
