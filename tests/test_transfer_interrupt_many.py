"""Ctrl-C on ``rdv send`` of a folder of many files, while the receiver still verifies
the ones already sent (real processes, a real server on loopback, classic relay).

The send let go of its offered files at once, so the results the receiver sent in the
meantime hit "result for unknown transfer 411": the sender printed a traceback
("Future exception was never retrieved ... ProtocolViolation") after its last line, and
the receiver read "connection lost: [Errno 104] Connection reset by peer" instead of
"the peer was interrupted (Ctrl-C)".
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from tests.test_transfer_probe_interrupt import _finish, _last, _start


async def test_ctrl_c_amid_many_results_closes_cleanly(url: str, tmp_path: Path) -> None:
    src = tmp_path / "many"
    src.mkdir()
    block = os.urandom(80_000)  # over 64 KiB: data frames, one result each
    for i in range(1500):
        (src / f"f{i:05d}.bin").write_bytes(block[i % 7 :] + block[: i % 7])
    dl = tmp_path / "dl"
    common = ("--server", url, "--spaces", "none", "--no-fast-start")
    sender = await _start("send", str(src), "--code", "4501-fox-opal", *common)
    receiver = await _start("receive", "4501-fox-opal", "--dir", str(dl), "--yes", *common)
    async with asyncio.timeout(60):
        while not ((dl / "many").is_dir() and len(os.listdir(dl / "many")) > 40):  # noqa: ASYNC110 (another process writes them)
            await asyncio.sleep(0.005)
    sender.send_signal(signal.SIGINT)
    (rc_s, err_s), (rc_r, err_r) = await asyncio.gather(_finish(sender), _finish(receiver))
    assert rc_s == 130 and rc_r == 1, (err_s, err_r)
    assert _last(err_s).startswith("rdv send: interrupted; "), err_s
    assert "ProtocolViolation" not in err_s and "unknown transfer" not in err_s, err_s
    assert "the peer was interrupted (Ctrl-C)" in err_r, err_r
    assert "connection lost" not in err_r, err_r
