"""The native front's listening sockets, accepted by hand so that running out of file
descriptors is survivable (issue 13; docs/ARCHITECTURE.md section 3).

asyncio's own accept loop, at ``EMFILE``, logs an error with a traceback every second and
leaves every new client waiting in the backlog; uvloop (libuv) accepts and closes them
without a word. Health checks die with them. Here:

- one descriptor is held in reserve (``/dev/null``); at ``EMFILE`` it is released to accept
  one waiting conn, which is answered as soon as its first bytes are in (at most
  :data:`SHED_WAIT_S` later, and at once when another conn waits behind it): ``200 ok``
  to a ``GET``/``HEAD /healthz``, ``503`` to anything else, then closed, and the reserve
  is taken back. Every waiting client gets a quick, clear answer instead of a hang, and
  silent conns cannot queue health checks behind them;
- when the reserve cannot be taken back, accepting pauses (backing off from 50 ms to 1 s)
  instead of spinning on a listening socket that stays readable;
- one warning when it starts, one line when conns are accepted again.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import Callable
from typing import Final

from rdv_core import wire

log = logging.getLogger("rdv.server")

__all__ = ["AT_CAPACITY", "Listener", "bind_sockets", "transport_now"]

#: What a conn accepted on the reserve descriptor is told (a plain response, then close).
AT_CAPACITY: Final = "rdv server at capacity, try again later"
#: Conns accepted per readiness event (asyncio accepts as many as the backlog).
ACCEPT_BATCH: Final = 128
#: How long a conn accepted on the reserve may take to send its first bytes.
SHED_WAIT_S: Final = 0.5
BACKOFF_FIRST_S: Final = 0.05
BACKOFF_MAX_S: Final = 1.0
_OUT_OF_FDS: Final = frozenset({errno.EMFILE, errno.ENFILE})
_OUT_OF_MEMORY: Final = frozenset({errno.ENOBUFS, errno.ENOMEM})
_HEALTH_PROBES: Final = (b"GET /healthz ", b"HEAD /healthz ")


def bind_sockets(host: str | None, port: int, backlog: int) -> list[socket.socket]:
    """Listening, non-blocking sockets for ``host`` (None: every interface), as asyncio's
    ``create_server`` binds them (``SO_REUSEADDR``, IPv6 sockets ``IPV6_V6ONLY``).

    Raises:
        OSError: when an address cannot be bound.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class Listener:
    """Accepts on ``sockets`` and hands each conn to ``on_conn``, surviving ``EMFILE``.

    Args:
        sockets: Bound, listening, non-blocking sockets (owned from now on).
        on_conn: Takes an accepted, non-blocking socket.
        answers_plain_http: False on TLS listeners: a conn accepted on the reserve is
            then closed without an answer (none can be written without a handshake).
        on_shed: Told ``(status, method)`` for each conn answered on the reserve.
        quiet: Log running out and accepting again at debug level only (the extra probe
            ports: the main port's listener already tells the operator, once).
    """

    def __init__(
        self,
        sockets: list[socket.socket],
        on_conn: Callable[[socket.socket], None],
        answers_plain_http: bool,
        on_shed: Callable[[int, str], None],
        quiet: bool = False,
    ) -> None:
        self.sockets = sockets
        self._level = logging.DEBUG if quiet else logging.WARNING
        self._on_conn = on_conn
        self._plain = answers_plain_http
        self._on_shed = on_shed
        self._loop = asyncio.get_running_loop()
        self._reserve: int | None = _take_reserve()
        self._backoff_s = BACKOFF_FIRST_S
        self._paused: asyncio.TimerHandle | None = None
        self._closed = False
        #: Conns answered on the reserve since the descriptors ran out (None: they did not).
        self.shed: int | None = None
        for sock in sockets:
            self._loop.add_reader(sock.fileno(), self._ready, sock)

    def close(self) -> None:
        """Stop accepting and close the sockets and the reserve."""
        self._closed = True
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None
        else:
            for sock in self.sockets:
                self._loop.remove_reader(sock.fileno())
        for sock in self.sockets:
            sock.close()
        if self._reserve is not None:
            os.close(self._reserve)
            self._reserve = None

    def _ready(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_FDS:
                    self._out_of_fds(sock)
                    return
                if exc.errno in _OUT_OF_MEMORY:
                    self._pause()
                    return
                continue  # ECONNABORTED and the like: that client is gone
            if self.shed is not None:
                log.log(
                    min(self._level, logging.INFO),
                    "accepting conns again (%d answered 503 while out of fds)",
                    self.shed,
                )
                self.shed = None
                self._backoff_s = BACKOFF_FIRST_S
            conn.setblocking(False)
            self._on_conn(conn)

    def _out_of_fds(self, sock: socket.socket) -> None:
        if self.shed is None:
            self.shed = 0
            log.log(
                self._level,
                "out of file descriptors: answering new conns 503 (health checks 200) "
                "until some close; raise the limit (ulimit -n) or lower --max-lobby",
            )
        if self._reserve is None:
            self._reserve = _take_reserve()
            if self._reserve is None:
                self._pause()
                return
        os.close(self._reserve)
        self._reserve = None
        try:
            conn, _ = sock.accept()
        except OSError:
            self._reserve = _take_reserve()
            return
        conn.setblocking(False)
        self.shed = (self.shed or 0) + 1
        if not self._plain:
            self._on_shed(503, "")
            self._answered(conn)
            return
        # Accept nothing else until this one is answered: its descriptor is the reserve.
        # It is answered when its first bytes come, after SHED_WAIT_S, or as soon as
        # another conn waits in the backlog (a listener turning readable), whichever is
        # first. Without that last rule every silent conn queued there held the reserve
        # for SHED_WAIT_S in turn, and a health check behind a hundred of them waited
        # 50 s. A client that waited in the backlog has its request in by its accept.
        timer = self._loop.call_later(SHED_WAIT_S, self._answer, conn, None)
        self._loop.add_reader(conn.fileno(), self._answer, conn, timer)
        for listening in self.sockets:
            self._loop.add_reader(listening.fileno(), self._answer, conn, timer)

    def _answer(self, conn: socket.socket, timer: asyncio.TimerHandle | None) -> None:
        """Answer a conn accepted on the reserve (from its first bytes) and close it."""
        if conn.fileno() < 0:
            return
        if timer is not None:
            timer.cancel()
        self._loop.remove_reader(conn.fileno())
        if not self._closed:  # close() took the listeners' readers and closed them
            for listening in self.sockets:
                self._loop.remove_reader(listening.fileno())
        try:
            try:
                request = conn.recv(4096)
            except OSError:
                request = b""
            if request.startswith(_HEALTH_PROBES):
                status, body = 200, "ok\n"
            else:
                status, body = 503, AT_CAPACITY + "\n"
            self._on_shed(status, request.split(b" ", 1)[0].decode("latin-1")[:16])
            response = wire.build_plain_response(status, body, close=True, add_newline=False)
            if request.startswith(b"HEAD "):
                response = response[: response.index(b"\r\n\r\n") + 4]
            with contextlib.suppress(OSError):  # the client may be gone already
                conn.send(response)
        finally:
            self._answered(conn)

    def _answered(self, conn: socket.socket) -> None:
        conn.close()
        if self._closed:
            return
        self._reserve = _take_reserve()
        if self._paused is None:
            for listening in self.sockets:
                self._loop.add_reader(listening.fileno(), self._ready, listening)

    def _pause(self) -> None:
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())
        self._paused = self._loop.call_later(self._backoff_s, self._resume)
        self._backoff_s = min(self._backoff_s * 2, BACKOFF_MAX_S)

    def _resume(self) -> None:
        self._paused = None
        for sock in self.sockets:
            self._loop.add_reader(sock.fileno(), self._ready, sock)


def transport_now(sock: socket.socket, protocol: Callable[[], asyncio.Protocol]) -> bool:
    """Make the plain-TCP transport of an accepted conn at once; False where it cannot.

    ``loop.connect_accepted_socket`` makes the same transport, but from a task that
    returns two loop turns later (its waiter is resolved from the loop, then the task
    wakes): per conn a task, a future and those turns, 3 % of the instructions of a
    loopback p2p connect (docs/notes/issue-10-connect-fifth.md). asyncio's selector loops make
    it synchronously with ``_make_socket_transport`` (what ``connect_accepted_socket``
    calls); ``connection_made`` and the reader still come from the loop, in that order,
    before any ``data_received``. That method is asyncio's own, not public: other loops
    (uvloop) get False and take the task path. The client does the same for its server
    conn (``open_stream_now``, client/_link.py).
    """
    loop = asyncio.get_running_loop()
    make = getattr(loop, "_make_socket_transport", None)
    if make is None or not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        return False
    try:
        make(sock, protocol())
    except Exception as exc:  # e.g. the descriptor is already some transport's
        log.debug("conn dropped before its first byte: %r", exc)
        sock.close()
    return True


def _take_reserve() -> int | None:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
