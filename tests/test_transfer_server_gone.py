"""The server dies in the middle of ``rdv send`` / ``rdv receive``: real processes (the
server too, so that it can be killed) on loopback.

Through a relay, both peers read "session ended: the peer hung up" (classic) or "the
connection to the peer was lost" (fast start): each user blamed the other side, which
was fine, while the server had gone. Now a lost relay conn whose server no longer
answers says so; on a direct conn the server carries nothing and the transfer goes on;
a peer that dies on a relay is still "the peer hung up".
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.session_support import file_digest
from tests.test_server_cli import rdv_serve
from tests.test_transfer_probe_interrupt import _finish, _last, _start

SIZE = 512 * 1024 * 1024  # a hole: read fast, but a transfer of a second or so
#: Over a direct conn (no relay to cut), a transfer of a second or so is this much: 512 MiB
#: took 10 s there (the digests of both files included) for the same check.
DIRECT_SIZE = 64 * 1024 * 1024
GONE = "the relay server went away (127.0.0.1:{port}: connection refused)"


def _source(tmp_path: Path, size: int) -> Path:
    src = tmp_path / "big.bin"
    fd = os.open(src, os.O_CREAT | os.O_WRONLY, 0o644)
    os.ftruncate(fd, size)
    os.close(fd)
    return src


async def _cut(
    tmp_path: Path, code: str, path: tuple[str, ...], victim: str, size: int = SIZE
) -> tuple[int, str, int, str, int]:
    """Send big.bin; kill ``victim`` (server, send) once the receiver holds some of it,
    and before it holds all of it (else the kill proved nothing)."""
    src = _source(tmp_path, size)
    dl = tmp_path / "dl"
    async with rdv_serve([]) as served:
        common = ("--server", served.url, *path)
        sender = await _start("send", str(src), "--code", code, *common)
        receiver = await _start("receive", code, "--dir", str(dl), "--yes", *common)
        partial = dl / "big.bin.rdvpart"
        async with asyncio.timeout(30):
            while not (partial.exists() and partial.stat().st_size > 0):  # noqa: ASYNC110 (another process writes it)
                await asyncio.sleep(0.005)
        if victim == "server":
            served.process.kill()
            await served.process.wait()
        else:
            sender.kill()
        assert partial.exists() and partial.stat().st_size < size  # still under way
        (rc_s, err_s), (rc_r, err_r) = await asyncio.gather(_finish(sender), _finish(receiver))
        return rc_s, err_s, rc_r, err_r, served.port


@pytest.mark.parametrize(
    "path",
    [("--spaces", "none", "--no-fast-start"), ("--spaces", "none")],
    ids=["classic-relay", "fast-start-relay"],
)
async def test_a_dead_relay_server_is_named_on_both_sides(
    tmp_path: Path, path: tuple[str, ...]
) -> None:
    rc_s, err_s, rc_r, err_r, port = await _cut(tmp_path, "4401-fox-opal", path, "server")
    assert rc_s == 1 and rc_r == 1, (err_s, err_r)
    gone = GONE.format(port=port)
    assert _last(err_s).startswith(f"rdv send: session ended: {gone}"), err_s
    assert _last(err_s).endswith("run rdv send again to resume (a new code is fine)"), err_s
    assert f"; session ended: {gone}" in _last(err_r), err_r
    assert "hung up" not in err_s + err_r and "peer was lost" not in err_s + err_r


async def test_on_a_direct_conn_the_server_going_does_not_matter(tmp_path: Path) -> None:
    path = ("--spaces", "loopback4", "--no-fast-start")
    rc_s, err_s, rc_r, err_r, _ = await _cut(tmp_path, "4402-fox-opal", path, "server", DIRECT_SIZE)
    assert rc_s == 0 and rc_r == 0, (err_s, err_r)
    assert file_digest(tmp_path / "dl" / "big.bin") == file_digest(tmp_path / "big.bin")


async def test_a_dead_peer_on_a_live_relay_is_still_the_peer(tmp_path: Path) -> None:
    path = ("--spaces", "none", "--no-fast-start")
    _, _, rc_r, err_r, _ = await _cut(tmp_path, "4403-fox-opal", path, "send")
    assert rc_r == 1, err_r
    assert "session ended: the peer hung up" in _last(err_r), err_r
    assert "relay server" not in err_r, err_r


async def test_a_server_that_dies_while_asked_is_gone() -> None:
    """A killed server completes a connect for a moment (the kernel closes its conns,
    ours among the first to notice, before its listening socket), then resets it: the
    first peer to ask read "the peer hung up" where the other read "went away". Here a
    real listener takes the handshake into its backlog and closes under it."""
    import socket

    from rdv_core.session._relay_check import relay_gone
    from rdv_core.wire import Addr

    listener = socket.create_server(("127.0.0.1", 0))
    server = Addr.parse(f"127.0.0.1:{listener.getsockname()[1]}")
    asking = asyncio.ensure_future(relay_gone(server))
    await asyncio.sleep(0.05)  # the handshake is in the backlog: nobody accepts it
    listener.close()  # the server dies: the conn in its backlog is reset
    assert await asking == "connection refused"


async def test_a_live_server_is_not_gone() -> None:
    from rdv_core.server._core import RdvServer
    from rdv_core.server._native import serve_native
    from rdv_core.session._relay_check import relay_gone
    from rdv_core.wire import Addr

    async with serve_native(RdvServer(), host="127.0.0.1", port=0) as front:
        port = int(front.url.rsplit(":", 1)[1].rstrip("/"))
        assert await relay_gone(Addr.parse(f"127.0.0.1:{port}")) is None
