"""Both sides started as ``rdv send`` (the same code), as real processes against a real
server on loopback.

The server replaces a waiting request with a newer one of the same method (409); the
two senders replaced each other until one gave up with "someone else may be using this
nameplate on the server (a typo on the other side, another pair with the same
nameplate, or interference)", which never named the likely cause.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path


async def test_two_senders_with_one_code_are_told_to_run_receive(url: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"a")
    code = "4191-fox-opal"
    common = ("--server", url, "--spaces", "loopback4", "--code", code)
    procs = []
    for _ in range(2):
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "rdv_tui",
                "send",
                str(tmp_path / "a.txt"),
                *common,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "COLUMNS": "80"},
            )
        )
        await asyncio.sleep(0.5)  # the first waits in the lobby; the second replaces it
    first = procs[0]
    try:
        assert first.stderr is not None
        async with asyncio.timeout(30):
            while b"(409)" not in (line := await first.stderr.readline()):
                assert line, "the first sender ended without a 409 notice"
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
    text = line.decode()
    assert text.startswith("rdv send: the server replaced our lobby conn (409): "), text
    assert (
        "another rdv send is waiting with this nameplate: if the other side ran rdv send "
        "too, it must run rdv receive instead"
    ) in text, text
