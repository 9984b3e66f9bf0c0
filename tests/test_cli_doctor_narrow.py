"""``rdv doctor``'s text fits a terminal narrower than 60 columns too (real server, real CLI).

The doctor wrapped at ``max(columns, 60)``: in a 50-column terminal every line it had
wrapped at 60 was folded again by the terminal, back to column 0 under the labels; its
first line was never wrapped at all. Now it wraps at the terminal's width down to 40.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys

import pytest

from rdv_core.server._core import RdvServer
from rdv_core.server._native import serve_native

RDV = [sys.executable, "-m", "rdv_tui"]


async def _doctor(url: str, columns: int) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    process = await asyncio.create_subprocess_exec(
        *RDV,
        "doctor",
        url,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**env, "COLUMNS": str(columns)},
    )
    out, _err = await asyncio.wait_for(process.communicate(), 90)
    assert process.returncode is not None
    return process.returncode, out.decode()


def _too_wide(text: str, columns: int) -> list[str]:
    return [line for line in text.splitlines() if len(line) > columns]


@pytest.mark.parametrize("columns", [40, 50, 59])
async def test_the_report_of_a_real_server_fits(columns: int) -> None:
    async with serve_native(RdvServer(), host="127.0.0.1", port=0) as front:
        code, out = await _doctor(front.url, columns)
    assert code in (0, 1), out
    assert "rdv doctor: 1 server" in out
    assert not _too_wide(out, columns), _too_wide(out, columns)


@pytest.mark.parametrize("columns", [40, 50])
async def test_the_report_of_an_unreachable_server_fits(columns: int) -> None:
    with socket.socket() as closed:  # the longest summary: why nothing was measured
        closed.bind(("127.0.0.1", 0))
        code, out = await _doctor(f"http://127.0.0.1:{closed.getsockname()[1]}", columns)
    assert code == 1, out
    assert not _too_wide(out, columns), _too_wide(out, columns)
    assert out.splitlines()[0].startswith("rdv doctor: 1 server, port ")
