"""A peer waiting in the lobby when its server conn is lost rejoins it (PROTOCOL.md 18).

Real ``rdv serve`` processes, stopped and started again on the same port, and real
``rdv`` commands. Before, the waiting ``rdv receive`` / ``rdv accept`` ended with ``503
rdv server shutting down, try again`` or "the server closed the connection before
answering": the user had to run it again and share a new code, and a partner typing the
old one met an empty lobby. Now it rejoins with the same token at the same URL, bounded,
and the partner who comes later finds it; an answer the server gave on purpose (a 4xx)
is not retried.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.balancer_support import wait_until
from tests.proc_support import kill_left
from tests.session_support import file_digest
from tests.test_server_cli import rdv_serve
from tests.test_transfer_probe_interrupt import _finish, _start

RDV = [sys.executable, "-m", "rdv_tui"]


def _joins(events: Path) -> int:
    """How many requests joined that server's lobby so far (its ``--events`` file)."""
    text = events.read_text() if events.exists() else ""
    whole = text[: text.rfind("\n") + 1]  # a line without its newline is still being written
    return sum(json.loads(line)["type"] == "PeerJoined" for line in whole.splitlines())


async def _joined(events: Path, count: int = 1) -> None:
    """Wait until ``count`` requests joined that server's lobby."""
    await wait_until(lambda: _joins(events) >= count, 20, step=0.02)


async def test_a_waiting_receive_survives_a_server_restart(tmp_path: Path) -> None:
    src = tmp_path / "notes.bin"
    src.write_bytes(bytes(range(256)) * 4096)
    dl, code = tmp_path / "dl", "4701-fox-opal"
    first = tmp_path / "first.jsonl"
    async with rdv_serve(["--events", str(first)]) as served:
        port, url = served.port, served.url
        common = ("--server", url, "--spaces", "none", "--timeout", "20")
        receiver = await _start("receive", code, "--dir", str(dl), "--yes", *common)
        try:
            await _joined(first)
            assert await served.stop(signal.SIGTERM) == 0  # its lobby hears 503 at once
        except BaseException:
            await kill_left(receiver)
            raise
    try:
        async with rdv_serve(["--listen", f"127.0.0.1:{port}"]) as again:
            assert again.url == url
            sender = await _start("send", str(src), "--code", code, *common)
            (rc_s, err_s), (rc_r, err_r) = await asyncio.gather(_finish(sender), _finish(receiver))
    finally:
        await kill_left(receiver)
    assert rc_r == 0 and rc_s == 0, (err_r, err_s)
    assert file_digest(dl / "notes.bin") == file_digest(src)
    lost = (
        "the rdv server went away while we waited (503 rdv server shutting down, try again): "
        "rejoining in 0.5 s (1/6)"
    )
    assert lost in err_r, err_r
    assert "rejoined the lobby " in err_r and "waiting for the peer again (the same code)" in err_r


async def test_a_killed_server_gone_for_good_ends_the_wait_after_the_rejoins(
    tmp_path: Path,
) -> None:
    """A killed server (no answer, a plain close) that stays away: each rejoin is
    refused, and after the last one the command says so and exits 1; its --events
    JSONL holds the rejoins too."""
    served_events, events = tmp_path / "served.jsonl", tmp_path / "accept.jsonl"
    async with rdv_serve(["--events", str(served_events)]) as served:
        accept = await asyncio.create_subprocess_exec(
            *RDV, "accept", "--spaces", "none", "--rejoin", "1", "--events", str(events),
            served.url, "gone-for-good",
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            await _joined(served_events)
            await asyncio.sleep(0.5)  # a close this soon after the request is an answer
            served.process.kill()
            async with asyncio.timeout(20):
                _, err = await accept.communicate()
        finally:
            await kill_left(accept)
    lines = err.decode().splitlines()
    assert accept.returncode == 1, lines
    assert lines == [
        "rdv accept: the rdv server went away while we waited (closed without answering): "
        "rejoining in 0.5 s (1/1)",
        "rdv accept: the rdv server went away while we waited and did not come back: "
        "1 rejoin over 0.5 s failed (the last: connection refused); try again once the "
        "server is back",
    ], lines
    types = [json.loads(line)["type"] for line in events.read_text().splitlines()]
    assert types.count("ServerLost") == 1 and "LobbyRejoined" not in types, types
    assert types[-1] == "AttemptFailed", types


async def test_an_answer_given_on_purpose_is_not_rejoined(tmp_path: Path) -> None:
    """A newer ``rdv accept`` with the same token replaces the waiting one (409): a
    rejoin would evict it in turn, and so on; the older one ends at once, as before."""
    served_events = tmp_path / "served.jsonl"
    async with rdv_serve(["--events", str(served_events)]) as served:
        args = ("accept", "--spaces", "none", served.url, "taken")
        older = await asyncio.create_subprocess_exec(
            *RDV, *args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        newer: asyncio.subprocess.Process | None = None
        try:
            await _joined(served_events)
            newer = await asyncio.create_subprocess_exec(
                *RDV, *args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            async with asyncio.timeout(20):
                _, err = await older.communicate()
            await _joined(served_events, 2)
            assert newer.returncode is None  # still waiting: nobody evicted it
        finally:
            await kill_left(older, *([newer] if newer else []))
    text = err.decode()
    assert older.returncode == 1, text
    assert "409 Conflict: replaced by another conn" in text, text
    assert "rejoin" not in text, text
    assert _joins(served_events) == 2
