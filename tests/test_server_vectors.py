"""The native front answers every recorded raw request exactly as the Go reference did.

Driven by ``tests/go_vectors.py`` (bytes recorded from rdv v0.0.6): status line, header
order, body with or without newline, Content-Length or close-delimited, whether the
conn stays open. Only the Date value differs.
"""

from __future__ import annotations

import pytest

from tests.go_vectors import CLOSED_ANSWER, SERVER_ANSWERS, ServerAnswer, without_date
from tests.server_support import EOF, running_server


@pytest.mark.parametrize("vector", SERVER_ANSWERS, ids=[v.name for v in SERVER_ANSWERS])
async def test_native_front_matches_reference_answer(vector: ServerAnswer) -> None:
    async with running_server("native") as env:
        client = await env.raw(vector.request)
        got = await client.read_for(0.4)
        if vector.answer is None:
            assert got == b""
            assert env.server.stats().lobby == 1
            return
        expected = vector.answer + (EOF.encode() if vector.closed else b"")
        assert without_date(got) == without_date(expected)


async def test_native_front_after_shutdown_matches_reference() -> None:
    async with running_server("native") as env:
        await env.server.close()
        client = await env.raw(b"DIAL /tok HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n")
        assert without_date(await client.read_for(0.4)) == without_date(CLOSED_ANSWER)
