"""Run the doctor: every probe from one shared local port, like the race (docs/PROTOCOL.md 14.2).

The order of one run, all bounded by :data:`~rdv_core.client._probe_http.HTTP_TIMEOUT_S`:

1. Bind port P (SO_REUSEADDR + SO_REUSEPORT, as the race does) and listen on it, over IPv4
   and IPv6: the dial-back and the hairpin probe must find us there, as a peer's SYN would.
2. Per server, from P (:mod:`._main_conn`): the main port (reachability, RTT, TLS),
   ``/.rdv/probes`` (which probe ports exist), ``/.rdv/observed`` (our public address,
   whether ``Upgrade`` arrived), then every probe port. All those conns stay open until the
   end, so each destination keeps its mapping and the samples can be compared (mapping).
   Over IPv4; over IPv6 for a server that has no IPv4 address (docs/PROTOCOL.md 15.2: the
   findings then come from those).
3. IPv6: a fresh conn to every other server that has an IPv6 address (reachability, NAT66).
4. Fresh ports: a few conns from new local ports, one after the other (allocation pattern).
5. Hairpin: a conn from a fresh port to our own observed address, carrying a nonce.
6. Dial-back, where the server offers it: the server's SYN from another port to P's mapping.

A server without the probe routes (the Go rdv/1 server) answers them with an error status:
its findings are "not measured", with that reason, never a failure of the run. The findings
over every server (Upgrade, proxy, IPv6, NAT66) are read in :mod:`._overall`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Final

from rdv_core.client._probe_http import HTTP_TIMEOUT_S, HttpConn, ProbeHttpError, open_conn
from rdv_core.client._sockets import (
    LISTEN_BACKLOG,
    bound_socket,
    family_of,
    local_port,
    reuse_socket,
)
from rdv_core.client._uplinks import Uplink, bind_to_uplink
from rdv_core.doctor import _classify as classify
from rdv_core.doctor import _dialbacks as dialbacks
from rdv_core.doctor import _main_conn as main_conn
from rdv_core.doctor import _overall as overall
from rdv_core.doctor._inbox import HAIRPIN_GREETING, HAIRPIN_TIMEOUT_S, Inbox, listener6
from rdv_core.doctor._main_conn import in_words
from rdv_core.doctor._report import MAX_SERVERS, Finding, Report, Sample, not_measured
from rdv_core.doctor._target import (
    Target,
    drop_unrouted_v4,
    observe,
    resolve,
    sample,
    sockaddr,
)
from rdv_core.doctor._uplinks import plan_doctor_paths
from rdv_core.doctor._via_proxy import no_proxy, through_proxy
from rdv_core.wire import (
    Addr,
    AddrSpace,
    ProtocolError,
    choose_proxy,
    parse_server_url,
    self_addrs,
)

log = logging.getLogger("rdv.doctor")

#: Conns from fresh local ports for the allocation pattern (3 are needed to see a step).
FRESH_PORTS: Final = 4


FindingCallback = Callable[[str, Finding], None]
"""Called with ``(name, finding)`` as each finding is known (the TUI shows them live); an
extra uplink's come as ``name@uplink`` (``nat@eth1 203.0.113.30``, see :func:`uplink_of`)."""


def uplink_of(name: str) -> tuple[str, str]:
    """A live finding's name and uplink: ``("nat", "eth1 203.0.113.30")``; ``""`` for the
    first path's (section 15.8)."""
    finding, _, uplink = name.partition("@")
    return finding, uplink


class Doctor:
    """One doctor run over ``urls``; :meth:`run` returns the :class:`Report`.

    Args:
        urls: rdv server URLs (``http://host:port``, ``https://...``).
        ssl_context: TLS settings for ``https://`` servers (default: system CAs).
        on_finding: Called as each finding is known.
        fresh_ports: Conns from fresh local ports for the allocation pattern.
        proxy: The HTTP proxy to reach the servers through, as ``Client(proxy=...)`` takes it
            (``"none"``: never); None takes it from the environment when ``trust_env`` is set.
            The doctor measures the proxy's tunnel beside the direct probes (section 15.7).
        trust_env: Read the proxy environment when ``proxy`` is None.
        http_timeout_s: What each connect and ``GET`` of the direct conns waits (the tests
            of a server that never answers pass less than the user's 3 s).
        interfaces, sources: ``--interface``/``--source``: measure from those uplinks only
            (the first gives the main findings, the others a report each); empty: the
            default route and every other uplink the race would dial from (section 15.8).
        uplink: Measure from this uplink only: every socket bound to its interface and
            address (``SO_BINDTODEVICE``, as the race dials from it, docs/PROTOCOL.md 15.8),
            only its family's server addresses, no proxy. None: the kernel's default route.
        dial_back_turns: Shared by the runs of one machine's uplinks: a dial-back waits for
            the one of another run behind the same public address (the server allows one at
            a time per address, section 15.8). None: this run's own.

    Raises:
        ValueError: for a bad URL or proxy URL (before any traffic).
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        ssl_context: ssl.SSLContext | None = None,
        on_finding: FindingCallback | None = None,
        fresh_ports: int = FRESH_PORTS,
        proxy: str | None = None,
        trust_env: bool = True,
        http_timeout_s: float = HTTP_TIMEOUT_S,
        interfaces: Sequence[str] = (),
        sources: Sequence[str] = (),
        uplink: Uplink | None = None,
        dial_back_turns: dialbacks.DialBackTurns | None = None,
    ) -> None:
        if not urls:
            raise ValueError("the doctor needs at least one server URL")
        targets: dict[tuple[str, int], Target] = {}
        for url in urls:
            parsed = parse_server_url(url)
            # One server once: a second conn from P to the same address and port is the
            # same 4-tuple, which the kernel refuses ("cannot assign requested address").
            targets.setdefault((parsed.host.lower(), parsed.port), Target(url, parsed))
        if len(targets) > MAX_SERVERS:
            raise ValueError(
                f"at most {MAX_SERVERS} servers (a report names each, section 15.3), "
                f"got {len(targets)}"
            )
        self._servers = list(targets.values())
        self._urls = list(urls)
        self._interfaces, self._sources = tuple(interfaces), tuple(sources)
        if interfaces or sources:
            plan_doctor_paths(urls, interfaces, sources)  # a bad name: before any traffic
        self._uplink = uplink
        # Shared by every uplink's run: the server dials back one address at a time.
        self._turns = dial_back_turns or dialbacks.DialBackTurns()
        if uplink is not None:
            proxy = "none"  # a proxy's tunnel leaves by the default route, not this uplink
        env = os.environ if trust_env else None
        self._proxies = {s.url: choose_proxy(proxy, s.parsed, env) for s in self._servers}
        # Which servers would have a proxy but for NO_PROXY (the finding says "exempt").
        unexempt = (
            None if env is None else {k: v for k, v in env.items() if k.lower() != "no_proxy"}
        )
        self._exempt = {
            s.url
            for s in self._servers
            if self._proxies[s.url] is None and choose_proxy(proxy, s.parsed, unexempt) is not None
        }
        self._ssl = ssl_context
        self._http_timeout_s = http_timeout_s
        self._on_finding = on_finding
        self._fresh_count = fresh_ports
        self._samples: list[Sample] = []
        #: The samples of servers measured over IPv6 (no IPv4 address): the findings'
        #: samples when no IPv4 server gave any.
        self._samples6: list[Sample] = []
        self._fresh: list[Sample] = []
        self._conns: list[HttpConn] = []
        self._findings: dict[str, Finding] = {}
        self._delta: int | None = None

    def _found(self, name: str, finding: Finding) -> None:
        self._findings[name] = finding
        if self._on_finding is not None:
            try:
                self._on_finding(name, finding)
            except Exception:
                log.exception("on_finding callback failed")

    def _relay(self, uplink: Uplink) -> FindingCallback | None:
        """An extra uplink's live findings, to our callback as ``name@uplink``: the app
        showed the first path's only, the others first in the final summary."""
        callback = self._on_finding
        if callback is None:
            return None
        return lambda name, finding: callback(f"{name}@{uplink}", finding)

    async def run(self) -> Report:
        """Measure everything, from every uplink the race would use (section 15.8); never
        raises for a network failure (findings say it)."""
        if self._uplink is not None:
            return await self._run()
        paths = plan_doctor_paths(self._urls, self._interfaces, self._sources)
        self._uplink = paths.first
        if paths.first is not None:  # a proxy's tunnel would leave by the default route
            self._proxies = dict.fromkeys(self._proxies)
        others = [
            Doctor(
                self._urls,
                ssl_context=self._ssl,
                fresh_ports=self._fresh_count,
                http_timeout_s=self._http_timeout_s,
                uplink=uplink,
                dial_back_turns=self._turns,
                on_finding=self._relay(uplink),
            )
            for uplink in paths.extra
        ]
        # At once: each run waits for its dial-back SYN (1.5 s), one after the other would
        # add that per uplink; each has its own port, so their mappings do not mix. Only the
        # dial-backs of uplinks behind one public address take turns (DialBackTurns).
        started = time.perf_counter()
        main, *extra = await asyncio.gather(self._run(), *(d._run() for d in others))
        return dataclasses.replace(
            main,
            # The whole run, every uplink's included (the header says how long it took).
            duration_ms=max(main.duration_ms, (time.perf_counter() - started) * 1000),
            uplink=paths.label,
            uplinks=tuple(
                dataclasses.replace(r, uplink=str(u))
                for r, u in zip(extra, paths.extra, strict=True)
            ),
        )

    async def _run(self) -> Report:
        started = time.perf_counter()
        listener = self._socket(socket.AF_INET, 0)
        listeners = [listener]
        try:
            listener.listen(LISTEN_BACKLOG)
            port = local_port(listener)
            ipv6 = listener6(port) if self._uplink is None else None
            if ipv6 is not None:
                listeners.append(ipv6)
            inbox = Inbox(listeners)
            serving = asyncio.create_task(inbox.serve())
            try:
                await self._measure(port, inbox)
            finally:
                serving.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await serving
                for conn in self._conns:
                    conn.close()
        finally:
            for sock in listeners:
                sock.close()
        return self._report(port, (time.perf_counter() - started) * 1000)

    async def _measure(self, port: int, inbox: Inbox) -> None:
        async with asyncio.TaskGroup() as tasks:
            for server in self._servers:
                tasks.create_task(resolve(server))
        if self._uplink is not None:
            self._uplink_family()
        else:
            for server in self._servers:
                drop_unrouted_v4(server)
        self._same_addresses()
        async with asyncio.TaskGroup() as tasks:
            for server in self._servers:
                if server.v4 is None and server.v6 is not None:
                    # An IPv6-only server (or host): every probe over IPv6, from P, so that
                    # the NAT, mapping, Upgrade and filtering findings are measured there
                    # instead of all "not measured" (section 15.2).
                    tasks.create_task(self._main_conn(server, server.v6, port))
                    continue
                tasks.create_task(
                    main_conn.dual_stack(server, port, self._connect, self._samples, self._samples6)
                )
        for server in self._servers:  # after the direct probes: see through_proxy
            proxy = self._proxies[server.url]
            if proxy is None:
                server.proxy = no_proxy(server, server.url in self._exempt)
            else:
                server.proxy = await through_proxy(server, proxy, self._ssl)
        self._found("proxy", overall.proxy(self._servers))
        # The IPv4 samples when there are any: ports of two families do not compare.
        samples, over_ipv6 = self._samples or self._samples6, self._over_ipv6
        self._found("nat", classify.classify_nat(samples, any_family=over_ipv6))
        self._found("mapping", classify.classify_mapping(samples, any_family=over_ipv6))
        self._found("port_preserved", classify.classify_preserved(samples, any_family=over_ipv6))
        self._found("upgrade", overall.upgrade(self._servers))
        self._found("ipv6", overall.ipv6(self._servers))
        self._found("nat6", overall.nat6(self._servers))
        await self._allocation()
        await self._hairpin(inbox, samples)
        servers = self._servers
        async with asyncio.TaskGroup() as tasks:  # both SYN waits at once: 1.5 s, not 3
            main = tasks.create_task(self._main_dial_back(inbox, samples))
            dial6 = (
                None if over_ipv6 else tasks.create_task(dialbacks.ipv6_dial_back(servers, inbox))
            )
        self._found("filtering", main.result())
        if dial6 is not None:
            self._found("filtering6", dial6.result())
        else:  # one dial-back, over IPv6 already
            self._found("filtering6", dialbacks.filtering6_over_ipv6(main.result(), self._samples6))
        self._found("loss", classify.classify_loss([*samples, *self._fresh]))

    async def _main_dial_back(self, inbox: Inbox, samples: Sequence[Sample]) -> Finding:
        """``filtering``, in this public address's turn (another uplink's run may share it)."""
        public = next((Addr.parse(s.observed).ip for s in samples if s.observed), None)
        async with self._turns.turn(None if public is None else str(public)):
            return await dialbacks.main_dial_back(self._servers, inbox, self._in_findings_family)

    def _socket(self, family: socket.AddressFamily, port: int) -> socket.socket:
        """A reuse socket on ``port``: on the wildcard address, or bound to the uplink (its
        family: an uplink has one address)."""
        if self._uplink is None:
            return bound_socket(family, port)
        sock = reuse_socket(socket.AF_INET if self._uplink.is_ipv4 else socket.AF_INET6)
        try:
            bind_to_uplink(sock, self._uplink, port)
        except OSError:
            sock.close()
            raise
        return sock

    def _uplink_family(self) -> None:
        """An uplink reaches a server over its own family only (an LTE IPv4 address has no
        IPv6 route): the other family's address is not measured from it."""
        assert self._uplink is not None
        other = "v6" if self._uplink.is_ipv4 else "v4"
        for server in self._servers:
            if getattr(server, other) is not None:
                setattr(server, other, None)
                if server.v4 is None and server.v6 is None:
                    server.resolve_error = f"no address of the family of {self._uplink}"

    def _same_addresses(self) -> None:
        """Two names for one server address and port (``localhost`` and ``127.0.0.1``):
        the later is measured through the earlier (the same 4-tuple from P, see __init__)."""
        seen: dict[tuple[str, int], str] = {}
        for server in self._servers:
            for family in ("v4", "v6"):
                ip = getattr(server, family)
                if ip is None:
                    continue
                key = (ip, server.parsed.port)
                if key in seen:
                    setattr(server, family, None)
                    server.resolve_error = f"the same address as {seen[key]}, measured there"
                else:
                    seen[key] = server.url

    async def _connect(self, server: Target, ip: str, port: int, local: int, tls: bool) -> HttpConn:
        family = socket.AF_INET6 if ":" in ip else socket.AF_INET
        sock = self._socket(family, local)
        conn = await open_conn(
            sock,
            sockaddr(ip, port),
            server.parsed.host_header,
            tls_host=server.parsed.host if tls else None,
            ssl_context=self._ssl,
            wait_s=self._http_timeout_s,
        )
        self._conns.append(conn)
        return conn

    async def _main_conn(self, server: Target, ip: str | None, port: int) -> None:
        await main_conn.server_main(server, ip, port, self._connect, self._samples, self._samples6)

    @property
    def _over_ipv6(self) -> bool:
        """Do the findings come from IPv6 conns (no IPv4 server gave a sample)?"""
        return not self._samples and bool(self._samples6)

    def _in_findings_family(self, server: Target) -> bool:
        return server.main_ip is not None and (":" in server.main_ip) == self._over_ipv6

    def _probe_server(self) -> tuple[Target, str] | None:
        """The server the allocation is measured against: one of the findings' family."""
        for server in self._servers:
            if server.directory is not None and self._in_findings_family(server):
                assert server.main_ip is not None
                return server, server.main_ip
        return None

    async def _allocation(self) -> None:
        found = self._probe_server()
        if found is None:
            self._found("allocation", not_measured("no server with the doctor routes"))
            return
        server, ip = found
        for _ in range(self._fresh_count):
            try:
                conn = await self._connect(server, ip, server.parsed.port, 0, server.parsed.tls)
                observed = await observe(conn)
            except (OSError, TimeoutError, ProbeHttpError, ProtocolError) as exc:
                log.info("fresh port: %s", exc)
                continue
            self._fresh.append(sample(conn, observed))
        finding, delta = classify.classify_allocation(self._fresh, any_family=self._over_ipv6)
        self._delta = delta
        self._found("allocation", finding)

    async def _hairpin(self, inbox: Inbox, samples: Sequence[Sample]) -> None:
        nat = self._findings.get("nat")
        first = next((s for s in samples if s.observed), None)
        if nat is None or nat.value is not True or first is None or first.observed is None:
            why = "not behind a NAT" if nat is not None and nat.value is False else "no NAT seen"
            self._found("hairpin", not_measured(why))
            return
        target = Addr.parse(first.observed)
        nonce = secrets.token_hex(8)
        arrived = inbox.expect(HAIRPIN_GREETING, nonce)
        loop = asyncio.get_running_loop()
        sock = self._socket(family_of(target), 0)
        try:
            async with asyncio.timeout(HAIRPIN_TIMEOUT_S):
                await loop.sock_connect(sock, sockaddr(str(target.ip), target.port))
                await loop.sock_sendall(sock, HAIRPIN_GREETING + nonce.encode() + b"\n")
                await arrived
            self._found(
                "hairpin", Finding(True, f"a conn to our own public address {target} reached us")
            )
        except TimeoutError:
            self._found(
                "hairpin",
                Finding(False, f"a conn to our own public address {target} got no answer"),
            )
        except OSError as exc:
            self._found(
                "hairpin",
                Finding(False, f"a conn to our own public address {target}: {in_words(exc)}"),
            )
        finally:
            sock.close()

    def _report(self, port: int, duration_ms: float) -> Report:
        local: dict[str, list[str]] = {}
        for addr in self_addrs(AddrSpace.ALL, 0):
            local.setdefault(addr.space.label, []).append(str(addr.ip))
        return Report(
            local_port=port,
            duration_ms=duration_ms,
            servers=tuple(s.check() for s in self._servers),
            samples=(*self._samples, *self._samples6),
            fresh=tuple(self._fresh),
            findings=dict(self._findings),
            local_addrs={k: tuple(v) for k, v in local.items()},
            allocation_delta=self._delta,
        )


async def run_doctor(
    urls: Sequence[str],
    *,
    ssl_context: ssl.SSLContext | None = None,
    on_finding: FindingCallback | None = None,
    proxy: str | None = None,
    trust_env: bool = True,
    http_timeout_s: float = HTTP_TIMEOUT_S,
    interfaces: Sequence[str] = (),
    sources: Sequence[str] = (),
) -> Report:
    """Measure the network between us and ``urls`` (see :class:`Doctor`); ``interfaces`` and
    ``sources`` as the race's ``--interface``/``--source`` (section 15.8)."""
    doctor = Doctor(
        urls,
        ssl_context=ssl_context,
        on_finding=on_finding,
        proxy=proxy,
        trust_env=trust_env,
        http_timeout_s=http_timeout_s,
        interfaces=interfaces,
        sources=sources,
    )
    return await doctor.run()
