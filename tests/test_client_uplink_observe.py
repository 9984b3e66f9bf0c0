"""Asking the server, from each extra uplink, where its NAT maps our port (PROTOCOL.md 17.3).

On loopback nothing translates, so the answers here are all "the uplink's own address" (and
so nothing to add); the translated case runs in the lab (tests/natlab/test_environments.py,
preset ``two-uplinks-nat``). What is checked here: the real request on a real server, the
rules for when nothing is asked, and that a dead uplink or a server without the route costs
at most the stated wait and adds nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

from rdv_core.client._sockets import bound_socket, local_port
from rdv_core.client._uplink_observe import (
    UPLINK_ANSWER_WAIT_S,
    _observed_from,
    ask_uplink_mappings,
)
from rdv_core.client._uplinks import LocalPaths, Uplink
from rdv_core.wire import AddrSpace, parse_server_url

from tests.doctor_support import probe_server

LO = Uplink("lo", ipaddress.ip_address("127.0.0.2"))


async def test_an_untranslated_uplink_adds_nothing_but_was_asked() -> None:
    async with probe_server("native") as env:
        listener = bound_socket(socket.AF_INET, 0, "127.0.0.1")
        try:
            port = local_port(listener)
            server = parse_server_url(env.url)
            # The question itself: the server saw the uplink's own address and our port.
            observed = await _observed_from(server, LO, port, None)
            assert observed is not None and str(observed) == f"127.0.0.2:{port}"
            mappings = ask_uplink_mappings(
                server, LocalPaths((LO,)), port, behind_proxy=False, ssl_context=None
            )
            assert await mappings.addrs(AddrSpace.DEFAULT | AddrSpace.LOOPBACK4) == []
        finally:
            listener.close()


async def test_nothing_is_asked_where_the_answer_would_mislead() -> None:
    server = parse_server_url("http://127.0.0.1:9")
    for paths, port, proxied in (
        (LocalPaths((LO,)), 0, False),  # no listening port: no direct conns at all
        (LocalPaths((LO,)), 40000, True),  # through a proxy the server sees the proxy
        (LocalPaths((LO,), bound_only=True), 40000, False),  # --interface: the conn says it
        (LocalPaths(()), 40000, False),  # one uplink: the server conn is the answer
    ):
        mappings = ask_uplink_mappings(server, paths, port, behind_proxy=proxied, ssl_context=None)
        assert mappings._tasks == []
        assert await mappings.addrs(AddrSpace.DEFAULT) == []


async def test_a_server_without_the_route_or_a_dead_uplink_adds_nothing_in_time() -> None:
    async with probe_server("native", probes=False) as env:  # like the Go server: no route
        server = parse_server_url(env.url)
        assert await _observed_from(server, LO, 0, None) is None
    # An address this machine does not have: the bind fails, no packet leaves.
    absent = Uplink("lo", ipaddress.ip_address("192.0.2.1"))
    assert await _observed_from(server, absent, 0, None) is None
    # A server that accepts and never answers: the wait is bounded.
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    try:
        port = silent.sockets[0].getsockname()[1]
        quiet = parse_server_url(f"http://127.0.0.1:{port}")
        started = time.monotonic()
        mappings = ask_uplink_mappings(
            quiet, LocalPaths((LO,)), 40000 + port % 1000, behind_proxy=False, ssl_context=None
        )
        assert await mappings.addrs(AddrSpace.DEFAULT) == []
        assert time.monotonic() - started < UPLINK_ANSWER_WAIT_S + 1.0
    finally:
        silent.close()
        await silent.wait_closed()
