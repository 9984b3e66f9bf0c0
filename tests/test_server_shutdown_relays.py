"""A server that ends relays itself (shutdown, idle timeout) resets them: no peer may take the
server's end for the other peer's end of stream.

After the ``101`` a relayed conn is raw TCP (docs/PROTOCOL.md section 8), so a ``FIN``
from the server reads as the other peer's end. A ``rdv serve`` stopped by SIGTERM while
``rdv dial`` was streaming into ``rdv accept > file`` left the file cut at 1.2 MB of 4 MB
and ``rdv accept`` exited 0; ``rdv dial`` blamed the peer. A reset tells both the truth.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from tests.server_support import RawClient, running_server
from tests.test_server_cli import Served, rdv_serve


async def _ending(client: RawClient, within: float = 20.0) -> str:
    """How the conn ends, read to its end: ``reset`` or ``eof``."""
    async with asyncio.timeout(within):
        while True:
            try:
                chunk = await client.reader.read(1 << 20)
            except ConnectionResetError:
                return "reset"
            if not chunk:
                return "eof"


@pytest.mark.parametrize("splice", [False, True], ids=["copy", "splice"])
async def test_close_resets_relays_in_flight(splice: bool) -> None:
    async with running_server("native", splice=splice) as env:
        # Streaming (its reader stalled: the server holds bytes for it) and idle pairs.
        busy_d, busy_a = await env.relayed_pair("busy")
        busy_d.send(b"x" * (8 << 20))
        await env.wait_for(lambda: env.server.stats().bytes_relayed > 1 << 20, within=20)
        idle_d, idle_a = await env.relayed_pair("idle")
        await env.server.close()
        endings = [await _ending(c) for c in (busy_a, busy_d, idle_a, idle_d)]
        assert endings == ["reset"] * 4


async def test_sigterm_resets_relays_in_flight() -> None:
    async with rdv_serve([]) as served:
        env = served.env()
        accepter = await env.request("ACCEPT", "t")
        await asyncio.sleep(0.1)
        dialer = await env.request("DIAL", "t")
        await dialer.read_head()
        await accepter.read_head()
        dialer.send(b"CONTINUE\nhello")
        assert await accepter.read_exactly(14) == b"CONTINUE\nhello"
        assert await served.stop(signal.SIGTERM) == 0
        assert [await _ending(accepter), await _ending(dialer)] == ["reset", "reset"]
    assert any("(shutdown)" in line for line in served.stderr_lines), served.stderr_lines


@pytest.mark.parametrize("splice", [False, True], ids=["copy", "splice"])
async def test_idle_timeout_resets_the_pair(splice: bool) -> None:
    """The idle timeout is the server's end too: a FIN made ``rdv accept`` under a quiet
    ``tail -f | rdv dial`` exit 0 as if the stream had ended."""
    async with running_server("native", splice=splice, idle_timeout=0.5) as env:
        dialer, accepter = await env.relayed_pair("quiet")
        dialer.send(b"y" * (1 << 20))  # a spliced flow, then silence
        assert len(await accepter.read_exactly(1 << 20, within=20)) == 1 << 20
        assert [await _ending(accepter), await _ending(dialer)] == ["reset", "reset"]


async def _relayed_cli_pair(served: Served, token: str) -> tuple[RawClient, RawClient]:
    env = served.env()
    accepter = await env.request("ACCEPT", token)
    await asyncio.sleep(0.1)
    dialer = await env.request("DIAL", token)
    await dialer.read_head()
    await accepter.read_head()
    dialer.send(b"CONTINUE\n")
    assert await accepter.read_exactly(9) == b"CONTINUE\n"
    return dialer, accepter


async def test_drain_lets_open_pairs_end_on_their_own() -> None:
    """``--drain``: a rolling restart behind a balancer need not cut the pairs in flight
    (HAProxy passes a backend's reset on to the clients as a plain end of stream)."""
    async with rdv_serve(["--drain", "600"]) as served:
        dialer, accepter = await _relayed_cli_pair(served, "drained")
        waiting = await served.env().request("ACCEPT", "waiting")
        await asyncio.sleep(0.1)
        served.process.send_signal(signal.SIGTERM)
        assert (await waiting.read_until_eof(within=20)).endswith(b"shutting down, try again")
        late = await served.env().request("DIAL", "late")
        got = await late.read_for(3)
        assert b" 503 " in got, got
        # The pair relays on, both ways, after the signal ...
        dialer.send(b"after the signal")
        assert await accepter.read_exactly(16, within=20) == b"after the signal"
        accepter.send(b"still here")
        assert await dialer.read_exactly(10, within=20) == b"still here"
        assert served.process.returncode is None
        # ... and the server stops once it ended (not after the 600 s).
        await dialer.close()
        assert await _ending(accepter) == "eof"
        await accepter.close()  # the pair ends at its second EOF (section 8)
        stderr = served.process.stderr
        assert stderr is not None
        async with asyncio.timeout(20):
            served.stderr_lines += (await stderr.read()).decode().splitlines()
            assert await served.process.wait() == 0
    text = "\n".join(served.stderr_lines)
    assert "draining 1 open pairs for up to 600s" in text, text
    assert "(dialer EOF)" in text, text


async def test_a_second_signal_cuts_the_drain_short() -> None:
    async with rdv_serve(["--drain", "600"]) as served:
        dialer, accepter = await _relayed_cli_pair(served, "cut")
        served.process.send_signal(signal.SIGTERM)
        stderr = served.process.stderr
        assert stderr is not None
        async with asyncio.timeout(20):
            while b"draining" not in await stderr.readline():
                pass
        assert await served.stop(signal.SIGINT) == 0
        assert [await _ending(accepter), await _ending(dialer)] == ["reset", "reset"]
    assert any("second signal: resetting" in line for line in served.stderr_lines)
