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

Everything else is an rdv request under ``prefix``. What happens on one conn until its
request is admitted (the PROXY header from trusted networks, the head, the plain routes,
pipelining and its bounds) is :mod:`._http_conn`'s; this module listens, accepts (with the
head slots and the fd limit of :mod:`._accept`) and runs the front's lifetime.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl as ssl_module
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from types import TracebackType

from rdv_core.server import _metrics as metrics
from rdv_core.server import _tls_front as tls_front
from rdv_core.server._accept import AT_CAPACITY, Listener, bind_sockets, transport_now
from rdv_core.server._core import RdvServer
from rdv_core.server._head_slots import (
    TOO_MANY_HEADS,
    HeadSlots,
    Slot,
    socket_peer,
)
from rdv_core.server._http_conn import (
    HEAD_TIMEOUT_S,
    MAX_REQUEST_HEAD,
    HttpConn,
)
from rdv_core.server._keepalive import keepalive_on_listeners
from rdv_core.server._observed import TrustedProxies
from rdv_core.server._probes import ProbeService
from rdv_core.wire import (
    Addr,
    IPAddress,
)

log = logging.getLogger("rdv.server")


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
        self._conns: set[HttpConn] = set()
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
        if self._ssl is None and transport_now(sock, lambda: HttpConn(self)):
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
        conn = HttpConn(self, slot)
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
