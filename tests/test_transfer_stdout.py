"""``rdv send`` whose stdout takes nothing: the code is the one thing the user needs.

``> /dev/full`` ended in a traceback ("OSError: [Errno 28] No space left on device");
``>&-`` (closed) waited in the lobby with a code shown nowhere, until --timeout.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.test_session_cli import rdv


async def _sh(script: str, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        "sh", "-c", script, "sh", sys.executable, "-m", "rdv_tui", *args,
        stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def test_a_full_stdout_is_one_line_not_a_traceback(url: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"a")
    rc, err = await _sh('exec "$@" > /dev/full', "send", str(tmp_path / "a.txt"), "--server", url)
    assert rc == 1, err
    assert err == "rdv send: cannot write to stdout: No space left on device\n", err


async def test_a_closed_stdout_needs_a_code_of_ones_own(url: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"a")
    args = ("send", str(tmp_path / "a.txt"), "--server", url, "--timeout", "1")
    rc, err = await _sh('exec "$@" >&-', *args)
    assert rc == 2, err
    assert err == "rdv send: stdout is closed: nowhere to show the code (give one with --code)\n"
    rc, err = await _sh('exec "$@" >&-', *args, "--code", "4601-fox-opal")
    assert rc == 3 and err.endswith("timed out after 1s while waiting for the peer\n"), err


async def test_the_code_still_reaches_a_pipe(url: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"a")
    rc, out, err = await rdv("send", str(tmp_path / "a.txt"), "--server", url, "--timeout", "1")
    assert rc == 3 and out.splitlines()[1].startswith("Code: "), (out, err)
