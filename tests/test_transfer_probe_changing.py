"""A file written to while ``rdv send`` sends it, as real processes against a real
server on loopback.

The sender hashes what it reads, so a file changed in the middle of its transfer (a
log, a disk image in use, a document saved meanwhile) arrived as a mix of old and new
bytes and was "verified" all the same: the receiver's copy matched neither version.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from tests.proc_support import kill_left

SIZE = 512 * 1024 * 1024  # a hole: read fast, but a transfer of a second or so


async def _run(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rdv_tui",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_a_file_written_to_while_it_is_sent_fails_on_both_sides(
    url: str, tmp_path: Path
) -> None:
    src = tmp_path / "disk.img"
    fd = os.open(src, os.O_CREAT | os.O_WRONLY, 0o644)
    os.ftruncate(fd, SIZE)
    dl = tmp_path / "dl"
    code = "4221-fox-opal"
    common = ("--server", url, "--spaces", "loopback4")
    sender = await _run("send", str(src), "--code", code, *common)
    receiver = await _run("receive", code, "--dir", str(dl), "--yes", *common)
    try:
        partial = dl / "disk.img.rdvpart"
        async with asyncio.timeout(30):
            while not (partial.exists() and partial.stat().st_size > 0):  # noqa: ASYNC110 (another process writes it)
                await asyncio.sleep(0.005)
        os.pwrite(fd, b"written meanwhile", 0)  # already sent: only the mtime tells
        async with asyncio.timeout(60):
            (_, err_s), (_, err_r) = await asyncio.gather(
                sender.communicate(), receiver.communicate()
            )
    finally:
        os.close(fd)
        await kill_left(sender, receiver)
    text_s, text_r = err_s.decode(), err_r.decode()
    assert (sender.returncode, receiver.returncode) == (1, 1), (text_s, text_r)
    assert "changed while it was sent" in text_s and "changed while it was sent" in text_r
    assert not (dl / "disk.img").exists()
