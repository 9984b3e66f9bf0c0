"""``rdv send`` / ``rdv receive`` with stderr in a file or a pipe (a log, ``2>&1 | tee``),
as real processes against a real server on loopback.

Rich wrapped every line at the width (80 columns, or ``$COLUMNS``) also where nothing
reads it as a terminal: a log read ``connected, encrypted: relay: direct connections
are disabled (address spaces: `` and ``none)`` on the next line, and grep found neither
half. Only the errors had been kept whole, one by one. Now no line is wrapped there.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.test_session_cli import rdv

CONNECTED = "connected, encrypted: relay: direct connections are disabled (address spaces: none)"


async def test_no_line_is_wrapped_in_a_pipe(url: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"hi\n")
    dl = tmp_path / ("a download folder with a name long enough to pass sixty columns" * 2)
    code = "4501-fox-opal"
    common = ("--server", url, "--spaces", "none", "--no-fast-start")
    narrow = {"COLUMNS": "60"}
    (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(
        rdv("send", str(tmp_path / "a.txt"), "--code", code, *common, env=narrow),
        rdv("receive", code, "--dir", str(dl), "--yes", *common, env=narrow),
    )
    assert rc_s == 0 and rc_r == 0, (err_s, err_r)
    assert CONNECTED in err_s.splitlines(), err_s
    assert CONNECTED in err_r.splitlines(), err_r
    assert f"done: 1 file verified in {dl}" in err_r.splitlines(), err_r
    # The offer's table is laid out for the width still (its names fold in their column).
    table = err_r.split("The sender offers:\n")[1].split("accepting")[0]
    assert table and all(len(line) <= 60 for line in table.splitlines()), err_r
