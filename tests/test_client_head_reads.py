"""The server conn reads its ``101`` 64 KiB at a time, then at asyncio's own size again.

asyncio's selector transports read with ``recv(256 KiB)``, a buffer glibc maps and unmaps
for each read; the client lowers that while it waits for the ``101`` (client/_link.py
``small_reads``; the system-call side is pinned in tests/test_connect_syscalls.py). A conn
that goes on to carry the session (the relay) must read as before: what it reads then is
the application's data, in the sizes asyncio was measured with (issue 14).
"""

from __future__ import annotations

import asyncio

from rdv_core.client import Client, Conn
from rdv_core.client._link import HEAD_READ_SIZE, full_reads, small_reads
from rdv_core.wire import parse_spaces


async def test_a_relayed_conn_reads_at_asyncios_size_after_its_101(url: str) -> None:
    relay_only = parse_spaces("none")
    accepting = asyncio.create_task(Client(spaces=relay_only, timeout=5).accept(url, "reads"))
    await asyncio.sleep(0.05)  # the accepter waits in the lobby
    conn: Conn = await Client(spaces=relay_only, timeout=5).dial(url, "reads")
    accepted = await accepting
    try:
        assert conn.is_relay and accepted.is_relay
        for side in (conn, accepted):
            transport = side.writer.transport
            assert "max_size" not in vars(transport), "the relay still reads 64 KiB at a time"
            assert transport.max_size == type(transport).max_size  # type: ignore[attr-defined]
        conn.writer.write(b"ping\n")
        assert await accepted.reader.readline() == b"ping\n"
    finally:
        await conn.close()
        await accepted.close()


async def test_small_reads_is_undone_and_leaves_other_transports_alone() -> None:
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    transport = writer.transport
    try:
        small_reads(transport)
        assert transport.max_size == HEAD_READ_SIZE  # type: ignore[attr-defined]
        full_reads(transport)
        full_reads(transport)  # twice: no error
        assert "max_size" not in vars(transport)
        pipe = asyncio.BaseTransport()  # no max_size of its own: left as it is
        small_reads(pipe)
        assert not hasattr(pipe, "max_size")
    finally:
        writer.close()
        server.close()
        await server.wait_closed()
