"""docs/PROTOCOL.md section 5, used codes: a receiver who comes back with a code whose
pair already met is told so (``410``) soon, not at the lobby timeout (``408``).

Before, ``rdv receive CODE`` a second time waited the whole lobby timeout and read
``408 no matching peer found``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import pytest

from rdv_core import AddrSpace, Client, PickFirst, RejoinPolicy, ServerRejectedError
from rdv_core.server._core import RdvServer
from rdv_core.server._native import serve_native
from rdv_core.server._used_codes import USED_CODE, UsedCodes

from tests.proc_support import kill_left
from tests.server_support import Env
from tests.test_server_lobby import upgrade_error

TOKEN = "rdv-session-482913"
GONE = upgrade_error(410, "Gone", USED_CODE)


async def _met(env: Env, token: str) -> None:
    """A pair met with ``token`` and both peers went away."""
    dialer, accepter, _, _ = await env.pair(token)
    await dialer.close()
    await accepter.close()
    await env.wait_for(lambda: env.server.open_conns == 0)


async def test_a_receiver_with_a_used_code_is_told_soon(env: Env) -> None:
    env.server.lobby_timeout = 30.0
    env.server.used_code_wait = 0.2
    await _met(env, TOKEN)
    loop = asyncio.get_running_loop()
    started = loop.time()
    again = await env.request("ACCEPT", TOKEN)
    assert await again.read_until_eof() == GONE
    assert 0.15 < loop.time() - started < 2.0
    assert env.server.stats().rejects_by_status == {410: 1}


async def test_the_410_log_line_names_the_used_code(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """``rdv serve -v`` logged ``Rejected status=410 reason=this code was already used ...
    remote=... method=ACCEPT``: no token, so an operator could not tell which code came
    back. Now it names it as every other lobby line does (``token=...``, escaped)."""
    from rdv_core.events import Rejected
    from rdv_tui.cli.commands.serve_logs import EventLog

    env.server.used_code_wait = 0.05
    await _met(env, TOKEN)
    again = await env.request("ACCEPT", TOKEN)
    assert await again.read_until_eof() == GONE
    gone = [e for e in env.events if isinstance(e, Rejected) and e.status == 410]
    assert [e.token for e in gone] == [TOKEN]
    log = EventLog(verbose=1, stream=None)
    with caplog.at_level(logging.INFO, logger="rdv.server"):
        log(gone[0])
    assert caplog.messages == [
        f"Rejected token={TOKEN} status=410 reason={USED_CODE} remote={gone[0].remote} "
        "method=ACCEPT"
    ], caplog.messages


async def test_a_sender_who_comes_back_meanwhile_still_meets_the_receiver(env: Env) -> None:
    env.server.used_code_wait = 1.0
    await _met(env, TOKEN)
    receiver = await env.request("ACCEPT", TOKEN)
    await env.wait_lobby(1)
    sender = await env.request("DIAL", TOKEN)
    assert (await receiver.read_head()).startswith(b"HTTP/1.1 101 ")
    assert (await sender.read_head()).startswith(b"HTTP/1.1 101 ")


async def test_senders_and_other_tokens_wait_as_before(env: Env) -> None:
    """A sender may reuse a code of its own, a pipe-mode pair its fixed token for ever."""
    env.server.used_code_wait = 0.1
    await _met(env, TOKEN)
    await _met(env, "fixed-token")
    sender = await env.request("DIAL", TOKEN)
    accepter = await env.request("ACCEPT", "fixed-token")
    await env.wait_lobby(2)
    assert await sender.read_for(0.4) == b""
    assert await accepter.read_for(0.0) == b""
    assert env.server.stats().lobby == 2


@pytest.mark.fronts("native")
async def test_a_rejoining_receiver_takes_the_410_as_final(env: Env) -> None:
    """PROTOCOL 18: every 4xx stands; the 410 is not rejoined."""
    env.server.used_code_wait = 0.1
    await _met(env, TOKEN)
    events: list[object] = []
    client = Client(
        spaces=AddrSpace.LOOPBACK,
        rejoin=RejoinPolicy(first_s=0.05),
        timeout=10,
        on_event=events.append,
    )
    with pytest.raises(ServerRejectedError) as caught:
        await client.accept(f"http://127.0.0.1:{env.port}{env.prefix}", TOKEN)
    assert caught.value.status == 410
    assert str(caught.value) == f"server rejected: 410 Gone: {USED_CODE}"
    names = [type(e).__name__ for e in events]
    assert "ServerLost" not in names and "LobbyRejoined" not in names, names


def test_the_memory_is_bounded_in_size_and_time_and_names_no_token() -> None:
    used = UsedCodes(limit=3, ttl_s=10.0)
    for n in range(5):
        used.add(f"rdv-session-{n}", now=float(n))
    assert len(used) == 3
    assert [used.used(f"rdv-session-{n}", 4.0) for n in range(5)] == [False, False] + [True] * 3
    assert not used.used("rdv-session-4", 14.0) and len(used) == 0
    used.add("pipe-token", 0.0)
    assert len(used) == 0 and not used.used("pipe-token", 0.0)
    used.add("rdv-session-7", 0.0)
    assert all(isinstance(key, int) for key in used._met)  # keyed digests, no token


async def test_rdv_receive_again_says_the_code_was_used(tmp_path: Path) -> None:
    """The user's story: the code's pair met (here in process: the server sees only its
    token), then a real ``rdv receive`` with the same code."""
    server = RdvServer(lobby_timeout=60)
    server.used_code_wait = 0.2
    async with serve_native(server, host="127.0.0.1", port=0) as front:
        url = front.url.rstrip("/")
        peers = Client(spaces=AddrSpace.NONE, picker=PickFirst())
        accepting = asyncio.create_task(peers.accept(url, TOKEN))
        while server.stats().lobby == 0:  # noqa: ASYNC110 (polls server state)
            await asyncio.sleep(0.01)
        dialer = await peers.dial(url, TOKEN)
        await dialer.close()
        await (await accepting).close()
        code = "482913-tulip-orbit"  # nameplate 482913: the token above
        started = asyncio.get_running_loop().time()
        rc, err = await _rdv("receive", code, "--yes", "--dir", str(tmp_path), "--server", url)
        assert rc != 0
        assert "410 Gone: this code was already used" in err, err
        assert "ask the sender for a new code" in err, err
        assert "Traceback" not in err, err
        assert asyncio.get_running_loop().time() - started < 10


async def _rdv(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rdv_tui",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await kill_left(proc)
    assert proc.returncode is not None
    return proc.returncode, err.decode()
