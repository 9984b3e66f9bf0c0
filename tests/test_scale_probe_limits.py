"""``rdv doctor``'s probe routes behind the real nginx of ``deploy/``: rate-limited per client.

docs/PROTOCOL.md section 15.1 limits ``/.rdv/observed`` per client IP. Behind nginx the TCP
peer of every request is nginx, so that limit keyed by the TCP peer was one bucket for every
client behind the balancer: one client probing in a loop got everyone else's doctor
``429 too many probe requests``. The key is now the client's address as the trusted
proxy forwards it (as for the lobby caps). Clients here are told apart by their loopback
source address (127.0.0.2, 127.0.0.3; the backend trusts only 127.0.0.1, nginx's).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.balancer_support import BACKEND_ARGS, backends, balancer, missing_binary

FLOOD = 400


async def probe(port: int, source: str, count: int, statuses: list[int]) -> list[int]:
    """``count`` ``GET /.rdv/observed`` on one keep-alive conn from ``source``; their
    statuses are appended to ``statuses`` as they come."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        for _ in range(count):
            writer.write(b"GET /.rdv/observed HTTP/1.1\r\nHost: rdv\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split()[1])
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            body = await reader.readexactly(length)
            if status == 200:
                assert json.loads(body)["observed"].startswith(f"{source}:"), body
            statuses.append(status)
    finally:
        writer.close()
    return statuses


async def test_one_client_cannot_use_up_everyones_probes(tmp_path: Path) -> None:
    reason = missing_binary("nginx")
    if reason is not None:
        pytest.skip(reason)
    async with backends(tmp_path, BACKEND_ARGS["nginx"], count=1) as pool:
        addrs = [pool[0].addr] * 3
        async with balancer("nginx", tmp_path, addrs) as lb:
            flooded: list[int] = []
            async with asyncio.timeout(60):
                flood = asyncio.create_task(probe(lb.port, "127.0.0.2", FLOOD, flooded))
                # The flood has used up its own allowance (and, before, everyone's) ...
                while 429 not in flooded and not flood.done():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                # ... while it goes on, another client probes.
                mine = await probe(lb.port, "127.0.0.3", 3, [])
                await flood
    assert 429 in flooded, flooded  # the flooding client is limited ...
    assert mine == [200, 200, 200], mine  # ... and only that client
