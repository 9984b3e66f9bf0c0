"""Sending the same folder twice, as real processes against a real server on loopback.

README: "Files already received in full (same name, size and mtime) are checked against
the sender's digest and not sent again, so sending a folder twice only moves what is
missing." A file that had met a different one of its name was saved as ``f (1).txt``;
each later run saved yet another copy (``f (2).txt``, ``f (3).txt``, ...).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from tests.test_session_cli import rdv


async def _send_folder(url: str, src: Path, dl: Path, code: str) -> tuple[str, str]:
    common = ("--server", url, "--spaces", "loopback4")
    (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(
        rdv("send", str(src), "--code", code, *common),
        rdv("receive", code, "--dir", str(dl), "--yes", *common),
    )
    assert rc_s == 0 and rc_r == 0, (err_s, err_r)
    return err_s, err_r


async def test_a_file_saved_under_a_numbered_name_is_not_saved_again(
    url: str, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f.txt").write_bytes(b"new\n")
    (src / "big.bin").write_bytes(os.urandom(200_000))  # data frames, not a bundle
    dl = tmp_path / "dl"
    (dl / "src").mkdir(parents=True)
    (dl / "src" / "f.txt").write_bytes(b"an older, different file\n")
    (dl / "src" / "big.bin").write_bytes(b"another one\n")
    _, err_r = await _send_folder(url, src, dl, "4201-fox-opal")
    assert "verified src/f (1).txt" in err_r and "verified src/big (1).bin" in err_r, err_r
    for code in ("4202-fox-opal", "4203-fox-opal"):
        err_s, err_r = await _send_folder(url, src, dl, code)
        assert "already there: src/f.txt" in err_r, err_r
        assert "verified src/f (1).txt" in err_r and "verified src/big (1).bin" in err_r, err_r
        assert "(195.3 KiB resumed)" in err_s, err_s  # nothing of big.bin moved again
    assert sorted(os.listdir(dl / "src")) == ["big (1).bin", "big.bin", "f (1).txt", "f.txt"]
    assert (dl / "src" / "f (1).txt").read_bytes() == b"new\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
async def test_a_folder_sent_again_to_a_nearly_full_disk_is_not_refused(
    url: str, tmp_path: Path
) -> None:
    """The free-space check counted files already received whole as still to come: a
    folder sent again after a break (or twice) to a disk that could not hold it twice
    was refused, "not enough free space: the offer needs 3.0 MiB, 1.0 MiB free", though
    nothing of it had to move."""
    from tests.test_session_disk import tmpfs

    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.bin", "b.bin"):
        (src / name).write_bytes(os.urandom(1536 * 1024))
    with tmpfs(tmp_path / "small", "4m") as dl:
        await _send_folder(url, src, dl, "4204-fox-opal")
        err_s, err_r = await _send_folder(url, src, dl, "4205-fox-opal")
        assert "already there: src/a.bin" in err_r and "already there: src/b.bin" in err_r
        assert "(3.0 MiB resumed)" in err_s, err_s
        assert sorted(os.listdir(dl / "src")) == ["a.bin", "b.bin"]
