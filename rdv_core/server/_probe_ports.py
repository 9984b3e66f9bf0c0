"""Probe routes on plain transports: the native front's hook and the extra probe ports.

docs/PROTOCOL.md section 15.1. :func:`serve_probe` answers one parsed request head on an
asyncio transport (the native front calls it for probe paths on the main port);
:func:`start_probe_ports` opens the extra ports of ``rdv serve --probe-port``, which speak
nothing but the probe routes (anything else: ``404``). Plain HTTP/1.1 with keep-alive, a
small head bound and the same head timeout as the main port.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterable
from typing import Final, cast

from rdv_core import wire
from rdv_core.server._accept import Listener, bind_sockets
from rdv_core.server._observed import transport_peer_addr
from rdv_core.server._probes import ProbeAnswer, ProbeService, split_target
from rdv_core.wire import Addr, AddrError, Head, HeadParser, ProtocolError

log = logging.getLogger("rdv.server")

#: Probe requests are a few hundred bytes.
MAX_PROBE_HEAD: Final = 8 * 1024
HEAD_TIMEOUT_S: Final = 30.0
#: Conns a probe port keeps open at once; past it new conns are closed at once.
MAX_PROBE_CONNS: Final = 1024
#: Listen backlog of a probe port (``loop.create_server``'s default, as before).
PROBE_BACKLOG: Final = 100


def _local_addr(transport: asyncio.BaseTransport) -> Addr | None:
    sockname = transport.get_extra_info("sockname")
    if not isinstance(sockname, tuple):
        return None
    try:
        return Addr.from_sockaddr(sockname).unmapped()
    except (AddrError, ValueError):
        return None


def _write(transport: asyncio.Transport, head: Head, answer: ProbeAnswer, close: bool) -> None:
    response = wire.build_plain_response(
        answer.status,
        answer.body,
        version="HTTP/1.0" if head.version == "HTTP/1.0" else "HTTP/1.1",
        close=close,
        content_type=answer.content_type,
        extra_headers=answer.headers,
        add_newline=False,
    )
    if head.method == "HEAD":
        response = response[: response.index(b"\r\n\r\n") + 4]
    transport.write(response)
    if close:
        transport.close()


def _keep_alive(head: Head) -> bool:
    try:
        has_body = bool(head.content_length) or head.has("Transfer-Encoding")
    except ProtocolError:
        has_body = True
    return (
        head.version == "HTTP/1.1"
        and (head.get("Connection") or "").strip().lower() != "close"
        and not has_body
    )


def serve_probe(
    service: ProbeService,
    transport: asyncio.Transport,
    head: Head,
    remote: Addr | None = None,
    proxied: bool = False,
) -> bool:
    """Answer a probe request on ``transport``; True if the conn may carry another request.

    ``remote`` is the client (default: the TCP peer; the native front passes what a PROXY
    header named, with ``proxied``: then no forwarding header is consulted, docs/PROTOCOL.md
    section 14). A dial-back is answered from a task once the dial is done, then the conn
    is closed.
    """
    remote = remote if remote is not None else transport_peer_addr(transport)
    local = _local_addr(transport)
    path, query = split_target(head.target)
    keep = _keep_alive(head)
    if path != wire.DIALBACK_PATH:
        answer = service.answer_now(
            path, head.get_joined, remote, local.port if local else 0, proxied
        )
        _write(transport, head, answer, close=not keep)
        return keep

    async def dial() -> None:
        answer = await service.answer(path, query, head.get_joined, remote, local, proxied)
        if not transport.is_closing():
            _write(transport, head, answer, close=True)

    task = asyncio.get_running_loop().create_task(dial())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return False


_tasks: set[asyncio.Task[None]] = set()


class _ProbeConn(asyncio.Protocol):
    """One conn on a probe port."""

    def __init__(self, port: ProbePort) -> None:
        self._port = port
        self._parser = HeadParser("request", MAX_PROBE_HEAD)
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        if len(self._port.conns) >= MAX_PROBE_CONNS:
            transport.close()
            return
        self._port.conns.add(self)
        self._timer = asyncio.get_running_loop().call_later(HEAD_TIMEOUT_S, self.close)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        while transport is not None and not transport.is_closing():
            try:
                head = self._parser.feed(data)
            except ProtocolError as exc:
                transport.write(wire.build_rejection(exc).data)
                transport.close()
                return
            if head is None:
                return
            data = self._parser.trailing
            self._parser = HeadParser("request", MAX_PROBE_HEAD)
            path = wire.request_path(head.target)
            if not ProbeService.handles(head.method, path):
                _write(transport, head, ProbeAnswer(404, "not a probe route\n", "text/plain"), True)
                return
            if not serve_probe(self._port.service, transport, head):
                return

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._port.conns.discard(self)
        self._transport = None


class ProbePort:
    """A listening probe port.

    It accepts with the main port's :class:`~rdv_core.server._accept.Listener`, not
    ``loop.create_server``: once the main port's conns have taken every descriptor,
    asyncio's accept loop logged a traceback per attempt on a probe port (thousands of
    lines in seconds) and left its clients hanging, uvloop's closed them unanswered. The
    Listener answers them ``503`` from its reserve descriptor instead.
    """

    def __init__(self, service: ProbeService) -> None:
        self.service = service
        self.conns: set[_ProbeConn] = set()
        self.listener: Listener | None = None
        self.port = 0
        self._connecting: set[asyncio.Task[None]] = set()

    def listen(self, sockets: list[socket.socket]) -> None:
        self.listener = Listener(
            sockets, self._accepted, True, lambda status, method: None, quiet=True
        )
        self.port = sockets[0].getsockname()[1]

    def _accepted(self, sock: socket.socket) -> None:
        task = asyncio.ensure_future(self._connect(sock))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.connect_accepted_socket(lambda: _ProbeConn(self), sock)
        except Exception as exc:  # a conn reset, EMFILE on uvloop
            log.debug("probe conn dropped before its first byte: %r", exc)
            sock.close()
            return
        handed = transport.get_extra_info("socket")
        if handed is not None and handed.fileno() != sock.fileno():
            sock.close()  # uvloop works on a duplicate of the descriptor
        if self.listener is None:
            transport.close()

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        for conn in list(self.conns):
            conn.close()
        await asyncio.sleep(0)


async def start_probe_ports(
    service: ProbeService, host: str | None, ports: Iterable[int]
) -> list[ProbePort]:
    """Listen on every port of ``ports`` on ``host`` (None: every interface).

    Raises:
        OSError: a port cannot be bound (the ones already open are closed).
    """
    opened: list[ProbePort] = []
    try:
        for number in ports:
            try:
                sockets = bind_sockets(host, number, backlog=PROBE_BACKLOG)
            except OSError as exc:
                # Name the port: the caller may have been given several.
                raise OSError(exc.errno, f"port {number}: {exc.strerror or exc}") from exc
            probe = ProbePort(service)
            probe.listen(sockets)
            opened.append(probe)
    except BaseException:
        for probe in opened:
            await probe.close()
        raise
    return opened
