"""A receiver whose file system fills up in the middle of a send, as real processes
against a real server on loopback, into a real tmpfs (root only).

The offer fitted (its bytes and its files were checked against the free space), then
the file system ran out of room for files (a tmpfs of a few inodes: what a disk of
many small files meets long before its bytes run out). The receiver's last line read
``4 files verified in DIR; 16 failed (a, b, c and 13 more)``: why, only on the 16th
line above it; the sender's last line gave the first failure's reason. And that reason
was "disk full" while df showed the bytes free: now it says no inodes are left.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from tests.test_session_cli import rdv
from tests.test_session_disk import needs_root, tmpfs

FIRST = re.compile(
    r"; the first: src/f\d\d\.bin \(cannot write src/f\d\d\.bin: disk full: no free inodes for "
    r"more files \(No space left"
)


@needs_root
async def test_the_receivers_last_line_says_why_files_failed(url: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for n in range(7):  # as many as the free inodes: the offer fits, its folder does not
        (src / f"f{n:02}.bin").write_bytes(os.urandom(100 * 1024))
    code = "4601-fox-opal"
    common = ("--server", url)
    with tmpfs(tmp_path / "small", "50m", "nr_inodes=8") as dl:
        (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(
            rdv("send", str(src), "--code", code, *common),
            rdv("receive", code, "--dir", str(dl), "--yes", *common),
        )
    assert rc_s == 1 and rc_r == 1, (err_s, err_r)
    last = err_r.strip().splitlines()[-1]
    failed = re.match(r"rdv receive: (\d+) files? verified in .*; (\d+) failed \(", last)
    assert failed is not None, err_r
    assert int(failed.group(2)) > 0, err_r
    assert FIRST.search(last), err_r
    assert "no free inodes for more files" in err_s.strip().splitlines()[-1], err_s


@needs_root
async def test_an_offer_of_more_files_than_free_inodes_is_refused(url: str, tmp_path: Path) -> None:
    """Only the bytes were checked: 20 files into room for 7 were accepted, and 13 failed
    one by one ("disk full" while df showed the bytes free)."""
    src = tmp_path / "src"
    src.mkdir()
    for n in range(20):
        (src / f"f{n:02}.bin").write_bytes(b"x" * 1000)
    code = "4602-fox-opal"
    common = ("--server", url)
    with tmpfs(tmp_path / "small", "50m", "nr_inodes=8") as dl:
        (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(
            rdv("send", str(src), "--code", code, *common),
            rdv("receive", code, "--dir", str(dl), "--yes", *common),
        )
        assert os.listdir(dl) == []
    why = "not enough room for files in the download folder: the offer has 20 new files, "
    assert rc_s == 1 and rc_r == 1, (err_s, err_r)
    assert why in err_s.strip().splitlines()[-1], err_s
    last = err_r.strip().splitlines()[-1]
    assert last.startswith("rdv receive: 20 refused (src/f00.bin, "), err_r
    assert why in last and "more (free inodes)" in last, err_r
