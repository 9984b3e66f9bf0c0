"""A PROXY protocol header sent to ``rdv serve`` without ``--proxy-protocol``: the log says so.

A balancer set up for ``send-proxy``/``send-proxy-v2`` in front of a server that does not read
the header: every request got ``400 Bad Request`` (Go's bare answer, unchanged) and the
server's ``Rejected`` event, its log line, said ``empty HTTP head`` (v2: the signature starts
with a blank line) or ``malformed request line 'PROXY TCP4 ...'``. It now names the header
and the flag. Real sockets on loopback to a real front.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from rdv_core.events import Event, Rejected
from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native
from rdv_core.wire import Addr, build_proxy_v1, build_proxy_v2

SOURCE, DESTINATION = Addr.parse("192.0.2.1:40000"), Addr.parse("192.0.2.2:8080")


@pytest.mark.parametrize("build", [build_proxy_v1, build_proxy_v2])
async def test_a_proxy_header_to_a_server_without_proxy_protocol(
    build: Callable[[Addr, Addr], bytes],
) -> None:
    header = build(SOURCE, DESTINATION)
    events: list[Event] = []
    server = RdvServer(on_event=events.append)
    front = await start_native(server, host="127.0.0.1", port=0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(header + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 20)
        writer.close()
    finally:
        await front.close()
        await server.close()
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    assert [e.reason for e in events if isinstance(e, Rejected)] == [
        "a PROXY protocol header, and PROXY protocol is off here (rdv serve --proxy-protocol)"
    ]
