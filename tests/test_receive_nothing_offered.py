"""``rdv receive`` when the sender ends without offering a file (the app's user quit
before sending one): the last line says so, with no empty bar or count above it."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from rdv_core.session import connect_session

from tests.proc_support import kill_left

ROOT = Path(__file__).resolve().parents[1]
CODE = "52-quiet-harbour"


async def test_a_send_with_no_offer_ends_in_one_line(url: str, tmp_path: Path) -> None:
    """It ended ``━━━━ 0/0 files 0/0 B``, ``0 of 0 files verified``, then ``rdv receive:
    the session ended without files (...)``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rdv_tui", "receive", CODE, "--server", url, "--yes",
        "--no-fast-start", "--dir", str(tmp_path),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        session = await asyncio.wait_for(connect_session(url, CODE, "send"), 30)
        await session.close()
        assert session.conn is not None
        await session.conn.close()
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        await kill_left(proc)
    text = (out + err).decode()
    assert proc.returncode == 1, text
    assert "the session ended without files" in text
    assert "0/0 files" not in text and "0 of 0 files" not in text, text
