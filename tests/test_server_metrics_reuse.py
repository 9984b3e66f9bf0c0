"""``GET /metrics`` cannot be turned into a way to stall the server.

A render walks every open pair (4 ms at 2,000 relayed pairs, 17-29 ms at 4,000): one client
pipelining scrapes (16 answered per loop turn) made another client's ``/healthz`` wait
516 ms at 2,000 pairs (``/tmp/lead/metrics_flood.py``, docs/notes/00-summary.md stop 32). A
render that costs more than ``CHEAP_S`` is now served again for ``REUSE_S``; a cheap one
is always fresh. Real server, real sockets; the cost threshold is set to 0 (every render
costly) or left as it is (a small server renders in microseconds).
"""

from __future__ import annotations

import asyncio
import re

import pytest

from rdv_core.server import _metrics

from tests.server_support import RawClient, running_server


async def _scrape(port: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = RawClient(reader, writer)
    client.send(b"GET /metrics HTTP/1.0\r\n\r\n")
    body = (await client.read_until_eof(20.0)).split(b"\r\n\r\n", 1)[1].decode()
    await client.close()
    return body


async def _bad_request(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = RawClient(reader, writer)
    client.send(b"DIAL /x HTTP/1.0\r\nHost: x\r\n\r\n")  # no Upgrade: refused, closed
    await client.read_until_eof(20.0)
    await client.close()


def _rejected(body: str) -> int:
    return sum(int(n) for n in re.findall(r"^rdv_rejects_total\{[^}]*\} (\d+)$", body, re.M))


async def test_a_costly_render_is_served_again_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_metrics, "CHEAP_S", 0.0)  # every render counts as costly
    monkeypatch.setattr(_metrics, "REUSE_S", 0.5)
    async with running_server("native") as env:
        first = await _scrape(env.port)
        await _bad_request(env.port)
        assert await _scrape(env.port) == first  # within REUSE_S: the same text
        await asyncio.sleep(0.6)
        fresh = await _scrape(env.port)
        assert _rejected(fresh) == _rejected(first) + 1, fresh


async def test_a_cheap_render_is_always_fresh() -> None:
    async with running_server("native") as env:
        before = _rejected(await _scrape(env.port))
        await _bad_request(env.port)
        assert _rejected(await _scrape(env.port)) == before + 1
