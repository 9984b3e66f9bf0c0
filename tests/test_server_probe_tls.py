"""The native front over TLS against clients that never finish the handshake."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import pytest

from rdv_core.server import _native
from rdv_core.server._core import RdvServer
from rdv_core.server._native import start_native

from tests.server_support import RawClient
from tests.test_server_tls import make_cert


async def _silent_then_served(cert: Path, key: Path) -> None:
    """A client that connects and never starts its handshake is closed at the head deadline;
    one that does handshake is served."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    front = await start_native(RdvServer(), ssl=context)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        silent = RawClient(reader, writer)
        started = time.monotonic()
        assert await silent.read_until_eof(within=5.0) == b""
        assert time.monotonic() - started < 3.0
        await silent.close()
        # A client that does handshake in time is served as before.
        client_context = ssl.create_default_context(cafile=str(cert))
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", front.port, ssl=client_context, server_hostname="127.0.0.1"
        )
        client = RawClient(reader, writer)
        client.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await client.read_response())[:1] == (200,)
        await client.close()
    finally:
        await front.close()


async def test_a_silent_tls_client_gets_the_head_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The README: a request head must arrive whole within 30 s. Over TLS a client that
    # connected and sent nothing was held for the loop's default handshake timeout, 60 s.
    monkeypatch.setattr(_native, "HEAD_TIMEOUT_S", 0.5)
    await _silent_then_served(*make_cert(tmp_path))


def test_a_silent_tls_client_gets_the_head_deadline_on_uvloop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.setattr(_native, "HEAD_TIMEOUT_S", 0.5)
    uvloop.run(_silent_then_served(*make_cert(tmp_path)))
