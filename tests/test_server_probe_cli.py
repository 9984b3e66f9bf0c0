"""``rdv serve`` probed as an operator meets it: files that cannot be opened or written.
A real process each time."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest

from tests.server_support import EOF
from tests.test_server_cli import rdv_serve, serve_command


def _serve(args: list[str]) -> subprocess.CompletedProcess[str]:
    """``rdv serve`` that is expected to refuse its arguments at once."""
    return subprocess.run(
        [*serve_command(), "--listen", "127.0.0.1:0", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("where", ["missing-dir/events.jsonl", "."])
def test_events_file_that_cannot_be_opened_is_refused_plainly(tmp_path: Path, where: str) -> None:
    # Before: a Python traceback (FileNotFoundError / IsADirectoryError) and exit 1.
    target = tmp_path / where
    result = _serve(["--events", str(target)])
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert f"rdv serve: cannot open --events {target}: " in result.stderr, result.stderr


async def test_an_events_file_that_fails_keeps_the_pair_lines_and_says_so_once() -> None:
    # /dev/full answers every write with ENOSPC: a disk that filled up. Before: every event
    # logged an ERROR with a traceback, and the pair lines (written after the event) were lost.
    async with rdv_serve(["--events", "/dev/full"]) as served:
        env = served.env()
        for token in ("full-1", "full-2"):
            accepter = await env.request("ACCEPT", token)
            await asyncio.sleep(0.1)
            dialer = await env.request("DIAL", token)
            await dialer.read_head()
            await accepter.read_head()
            dialer.send(b"CONTINUE\nhi")
            assert await accepter.read_exactly(11) == b"CONTINUE\nhi"
            await dialer.close()
            assert await accepter.read_for(2.0) == EOF.encode()
        assert await served.stop() == 0
    text = "\n".join(served.stderr_lines)
    assert "Traceback" not in text, text
    for n, token in ((1, "full-1"), (2, "full-2")):
        assert re.search(rf"pair {n} token={token} \S+ -> \S+: relayed, D->A 2 B", text), text
    complaints = [line for line in served.stderr_lines if "--events" in line]
    assert len(complaints) == 1, text
    assert "cannot write --events /dev/full" in complaints[0], text
    assert "No space left on device" in complaints[0], text
