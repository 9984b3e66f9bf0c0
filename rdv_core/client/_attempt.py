"""One attempt of ``dial()``/``accept()``: from the server conn to the one conn it returns.

docs/PROTOCOL.md section 1 and docs/ARCHITECTURE.md section 4: bind port P, connect to
the server from it, send the request, wait in the lobby, check the ``101``, then hand the
relay and the peer's candidates to the race (:mod:`rdv_core.client._race`) or, with fast
start, to the upgrader (:mod:`rdv_core.client._fast_pick`). The settings come from the
:class:`~rdv_core.client._client.Client` that made it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
import ssl
from typing import TYPE_CHECKING, Any

from rdv_core.client._budget import SynBudget
from rdv_core.client._conn import Conn, Meta
from rdv_core.client._deadline import Deadline
from rdv_core.client._fast_pick import start_fast
from rdv_core.client._link import Link, full_reads, open_stream, open_stream_now, small_reads
from rdv_core.client._localview import default_self_addrs
from rdv_core.client._prepare import listen_on
from rdv_core.client._race import Race
from rdv_core.client._rejoin import CONNECTING, WAITING, Rejoiner
from rdv_core.client._response import (
    observed_warning,
    read_error_body,
    read_response_head,
    retry_after_s,
)
from rdv_core.client._server_conn import front_door_hint, plain_refused, server_socket, tls_failure
from rdv_core.client._silence import guard
from rdv_core.client._uplink_observe import ask_uplink_mappings
from rdv_core.client._uplinks import LocalPaths
from rdv_core.errors import (
    NoConnectionError,
    RdvError,
    RdvProtocolError,
    RdvTimeoutError,
    ServerConnectError,
    ServerRejectedError,
)
from rdv_core.events import (
    AttemptFailed,
    AttemptStarted,
    Candidate,
    Clock,
    Event,
    ObservedAddrWarning,
    RelayReady,
    SelfAddrsGathered,
    ServerConnected,
    ServerRejected,
    ServerResponded,
)
from rdv_core.wire import (
    DIAL,
    EXTENSIONS_HEADER,
    FAST_START,
    MAX_SELF_ADDRS,
    Addr,
    Head,
    Method,
    ProtocolError,
    ProxyURL,
    ServerURL,
    allows_any_direct,
    build_request,
    check_upgrade_response,
    format_spaces,
    middlebox_hint,
    nat64_prefix,
)

if TYPE_CHECKING:
    from rdv_core.client._client import Client

logger = logging.getLogger("rdv.client")


class Attempt:
    """The state of one ``dial()``/``accept()``."""

    def __init__(
        self,
        client: Client,
        method: Method,
        server: ServerURL,
        token: str,
        proxy: ProxyURL | None = None,
        paths: LocalPaths | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.proxy = proxy
        self.paths = paths or LocalPaths()
        self.client = client
        self.method = method
        self.server = server
        self.token = token
        self.clock = clock or Clock()
        self.events: list[Event] = []
        self._ids = itertools.count(1)
        self.stage = CONNECTING
        self.rejoiner = Rejoiner(client.rejoin, self.clock, self.emit)
        #: When our request went out on the current server conn (None: not yet).
        self.sent_at: float | None = None

    def emit(self, event: Event) -> None:
        self.events.append(event)
        callback = self.client.on_event
        if callback is None:
            return
        try:
            callback(event)
        except Exception:
            # A broken observer must not break the connection attempt.
            logger.exception("on_event callback failed for %s", event.type)

    def new_id(self) -> int:
        return next(self._ids)

    async def run(self) -> Conn:
        client = self.client
        picker_name = client.picker.describe() if self.method == DIAL else "first CONTINUE"
        self.emit(
            AttemptStarted(
                self.clock(),
                self.method,
                str(self.server),
                format_spaces(client.spaces),
                picker_name,
            )
        )
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("a connection attempt must run inside an asyncio task")
        cancels = task.cancelling()
        deadline = Deadline(loop, task, client.timeout)  # not asyncio.timeout (_deadline.py)
        try:
            try:
                # Again after a lost lobby conn, while client.rejoin allows (PROTOCOL.md 18).
                conn = await self.rejoiner.run(self._run, self)
                if task.cancelling() > cancels:
                    # A cancel asked for inside this task (an on_event callback) after the
                    # last await: asyncio would drop the conn to deliver it, socket open.
                    conn.writer.close()
                    raise asyncio.CancelledError
            except asyncio.CancelledError as exc:
                if deadline.end(exc):
                    raise TimeoutError from exc
                raise
            finally:
                deadline.end()
            return conn
        except TimeoutError as exc:
            if not deadline.expired:
                raise
            message = f"timed out after {client.timeout:g}s while {self.stage}"
            self.emit(AttemptFailed(self.clock(), "timeout", message))
            raise RdvTimeoutError(message, self.stage) from exc
        except asyncio.CancelledError:
            self.emit(AttemptFailed(self.clock(), "cancelled", f"while {self.stage}"))
            raise
        except ServerRejectedError as exc:
            self.emit(AttemptFailed(self.clock(), "rejected", str(exc)))
            raise
        except RdvError as exc:
            kind = {
                NoConnectionError: "no-connection",
                RdvProtocolError: "protocol",
                ServerConnectError: "server-unreachable",
            }.get(type(exc), "error")
            self.emit(AttemptFailed(self.clock(), kind, str(exc)))
            raise

    async def _run(self) -> Conn:
        client = self.client
        # The port is read from the kernel once, as the listeners are made (issue 10).
        listeners, port = listen_on() if allows_any_direct(client.spaces) else ([], 0)
        writer: asyncio.StreamWriter | None = None
        handed_over = False
        try:
            paths = self.paths
            mine = (
                paths.self_addrs(client.spaces, default_self_addrs(client.spaces, port), port)
                if port
                else []
            )
            if port:
                mine += [a for a in client.predicted_addrs if client.spaces.includes_ip(a.ip)]
            uplinks = ask_uplink_mappings(  # section 17.3: a NATed second uplink's address
                self.server,
                paths,
                port,
                behind_proxy=self.proxy is not None,
                ssl_context=client.ssl_context,
            )
            try:
                reader, writer, server_addr = await self._connect_server(port)
            except BaseException:
                uplinks.cancel()
                raise
            mine = list(dict.fromkeys([*mine, *await uplinks.addrs(client.spaces)]))
            mine = mine[:MAX_SELF_ADDRS]
            local = Addr.from_sockaddr(writer.get_extra_info("sockname"))
            port = local.port
            self.emit(SelfAddrsGathered(self.clock(), port, tuple(str(a) for a in mine)))

            extra = client.headers
            if client.fast_start:
                # The offer (docs/PROTOCOL.md section 16.1); servers that know it pass it on.
                extra = (*extra, (EXTENSIONS_HEADER, FAST_START))
            request = build_request(self.method, self.server, self.token, mine, extra)
            writer.write(request)
            self.stage = WAITING
            sent_at = self.sent_at = self.clock()
            self.rejoiner.joined()
            head = await self._read_head(reader)
            full_reads(writer.transport)  # the 101 is in (small_reads, client/_link.py)
            lobby_s = self.clock() - sent_at
            if head.status != 101:
                body = await read_error_body(reader, head)
                self.emit(ServerRejected(self.clock(), head.status, head.reason, body))
                hint = middlebox_hint(head) or front_door_hint(head.status, body)
                raise plain_refused(self.server, head.status, body) or ServerRejectedError(
                    head.status, head.reason, body, hint, retry_after_s(head)
                )
            try:
                upgrade = check_upgrade_response(head)
            except ProtocolError as exc:
                hint = middlebox_hint(head)
                detail = f"{exc.message}; {hint}" if hint else exc.message
                raise RdvProtocolError(f"bad response from the server: {detail}") from exc
            # Fast start: both offered, so the relay carries the first bytes and the
            # race runs later, in the background (docs/PROTOCOL.md section 16.2). The
            # events of the 101 then wait until the dialer's first write left, or until
            # the accepter handed the dialer's first bytes over (held; _fast_pick.py).
            fast = client.fast_start and FAST_START in upgrade.peer_extensions
            held: list[Event] = []
            emit = held.append if fast else self.emit
            emit(
                ServerResponded(
                    self.clock(),
                    str(upgrade.observed_addr) if upgrade.observed_addr else None,
                    tuple(str(a) for a in upgrade.peer_addrs),
                    lobby_s,
                )
            )
            if (warning := observed_warning(upgrade.observed_addr)) is not None:
                observed = upgrade.observed_addr
                said = str(observed) if observed else None
                self.emit(ObservedAddrWarning(self.clock(), said, warning))
            meta = Meta(
                self.method, self.token, upgrade.observed_addr, tuple(mine), upgrade.peer_addrs
            )

            relay_candidate = Candidate(self.new_id(), str(server_addr), "relay", "relay")
            relay = Link(relay_candidate, reader, writer, True, local, server_addr)
            emit(RelayReady(self.clock(), relay_candidate))
            self.stage = "racing for a connection"
            nat64 = nat64_prefix(local, server_addr, upgrade.observed_addr)
            if fast:
                # No race: the relay is picked at once (client/_fast_pick.py).
                upgrader = await start_fast(
                    self, relay, listeners, port, upgrade.peer_addrs, held=held
                )
                handed_over = True
                upgrader.routes(paths.uplinks, paths.bound_only, nat64)  # the same ways out
                return upgrader.make_conn(meta, self.events)
            race = Race(
                method=self.method,
                token=self.token,
                spaces=client.spaces,
                picker=client.picker,
                listeners=listeners,
                port=port,
                peer_addrs=upgrade.peer_addrs,
                relay=relay,
                clock=self.clock,
                emit=self.emit,
                new_id=self.new_id,
                uplinks=paths.uplinks,
                bound_only=paths.bound_only,
                nat64=nat64,
                budget=SynBudget(client.syn_budget, client.syn_history),
            )
            handed_over = True
            winner = await race.run()
            # Classic conns go silent too (a blackhole): bounded, not TCP's 15 minutes
            # (docs/PROTOCOL.md 16.11).
            guard(winner.reader, winner.writer, relay=winner.is_relay)
            return Conn(
                reader=winner.reader,
                writer=winner.writer,
                is_relay=winner.is_relay,
                local_addr=winner.local,
                remote_addr=winner.remote,
                meta=meta,
                events=self.events,
                elapsed_s=self.clock(),
            )
        finally:
            if not handed_over:
                for sock in listeners:
                    sock.close()
                if writer is not None:
                    writer.close()

    async def _connect_server(
        self, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Addr]:
        """TCP (and TLS) to the server from our port, over IPv4 when the host has it."""
        started = self.clock()
        sock, agent, peer = await server_socket(self.server, port, self.proxy, self.paths)
        return await self._finish_server_conn(sock, started, agent, peer)

    async def _finish_server_conn(
        self,
        sock: socket.socket,
        started: float,
        proxy_agent: str | None,
        peername: tuple[Any, ...] | None = None,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Addr]:
        """TLS (for ``https://``) on a connected socket, then the ``ServerConnected`` event."""
        server = self.server
        ssl_context: ssl.SSLContext | None = None
        if server.tls:
            ssl_context = self.client.ssl_context or ssl.create_default_context()
        try:
            # Plain TCP: the stream without loop turns (client/_link.py), the request goes now.
            pair = open_stream_now(sock, peername=peername) if ssl_context is None else None
            reader, writer = pair or await open_stream(
                sock,
                ssl_context=ssl_context,
                server_hostname=server.host if ssl_context else None,
            )
            small_reads(writer.transport)  # until the 101 is in (client/_link.py)
        except OSError as exc:  # ssl.SSLError is an OSError
            raise tls_failure(server, exc) from exc
        # The transport asked the kernel already; it says None when the conn is gone (the
        # socket's own call then raises, as it did before the transport was made).
        try:
            peer = writer.get_extra_info("peername") or sock.getpeername()
        except OSError:
            writer.close()
            raise
        server_addr = Addr.from_sockaddr(peer)
        ssl_object = writer.get_extra_info("ssl_object")
        local = Addr.from_sockaddr(writer.get_extra_info("sockname"))
        self.emit(
            ServerConnected(
                self.clock(),
                str(server_addr),
                str(local),
                self.clock() - started,
                tls=ssl_object is not None,
                tls_version=ssl_object.version() if ssl_object is not None else None,
                proxy=str(self.proxy) if self.proxy is not None else None,
                proxy_agent=proxy_agent or None,
            )
        )
        return reader, writer, server_addr

    async def _read_head(self, reader: asyncio.StreamReader) -> Head:
        """The response head, line by line, so that bytes after it stay in ``reader``."""
        return await read_response_head(reader, self.stage, tls=self.server.tls)
