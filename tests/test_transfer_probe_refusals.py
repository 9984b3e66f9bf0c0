"""What ``rdv send`` / ``rdv receive`` say when an offer cannot be taken, as real processes
against a real server on loopback.

A receiver whose download folder had no room for the offer (refused before anyone is
asked, ``--yes`` included) printed ``2/0 files``, ``0 of 0 files verified ...; 2 failed``
and ``the session ended without files (closed by peer)``: it never said which files or why.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from tests.test_session_cli import rdv


def _sparse_bigger_than_free(path: Path) -> None:
    """A file of more bytes than the download folder's disk has free (a hole: no blocks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = shutil.disk_usage(path.parent).free * 2 + (1 << 30)
    try:
        with open(path, "wb") as handle:
            handle.truncate(size)
    except OSError as exc:  # a file system with a smaller file size limit
        pytest.skip(f"cannot make a sparse file of {size} bytes here: {exc}")


async def test_an_offer_refused_for_room_says_why_on_the_receiver(url: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    _sparse_bigger_than_free(src / "huge.bin")
    (src / "small.txt").write_bytes(b"x" * 10)
    dl = tmp_path / "dl"
    code = "4171-fox-opal"
    common = ("--server", url, "--spaces", "loopback4")
    (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(
        rdv("send", str(src), "--code", code, *common),
        rdv("receive", code, "--dir", str(dl), "--yes", *common),
    )
    assert rc_s == 1 and "not enough free space" in err_s, err_s
    # The error is the last line: fast start's "switched to p2p: ..." came after it.
    assert err_s.strip().splitlines()[-1].startswith("rdv send: the receiver declined"), err_s
    assert rc_r == 1, err_r
    last = err_r.strip().splitlines()[-1]
    assert last.startswith("rdv receive: 2 refused (src/huge.bin, src/small.txt): "), err_r
    assert "not enough free space in the download folder" in last, err_r
    # The counts tell the truth: two files were offered, none verified.
    assert "0 of 2 files verified" in err_r, err_r
    assert "0 of 0" not in err_r and "2/0 files" not in err_r, err_r
    assert not any(os.scandir(dl))


async def test_the_bar_left_after_a_failed_send_counts_every_file(url: str, tmp_path: Path) -> None:
    """The bar is redrawn at the end of a send that failed, as after one that did not:
    it showed ``0/2 files`` under ``1 of 2 files verified``."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "same.txt").write_bytes(b"hello\n")
    (src / "other.txt").write_bytes(b"new\n")
    dl = tmp_path / "dl" / "src"
    dl.mkdir(parents=True)
    # The receiver holds a different file of the same name, size and mtime: it fails.
    (dl / "other.txt").write_bytes(b"old\n")
    info = (src / "other.txt").stat()
    os.utime(dl / "other.txt", ns=(info.st_atime_ns, info.st_mtime_ns))
    code = "4172-fox-opal"
    common = ("--server", url, "--spaces", "loopback4")
    (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(
        rdv("send", str(src), "--code", code, *common),
        rdv("receive", code, "--dir", str(tmp_path / "dl"), "--yes", *common),
    )
    assert rc_s == 1 and rc_r == 1, (err_s, err_r)
    assert "1 of 2 files verified" in err_s, err_s
    bars = [line for line in err_s.splitlines() if "/2 files" in line]
    assert bars and "1/2 files, 1 failed" in bars[-1], err_s


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
async def test_a_read_only_download_folder_is_refused_before_the_sender_waits(
    url: str, tmp_path: Path
) -> None:
    """``rdv receive --dir`` on a read-only file system accepted the offer and then
    failed every file; it says so at once, before it meets the sender."""
    from tests.test_session_disk import tmpfs

    with tmpfs(tmp_path / "ro", "1m", "ro") as dl:
        rc, _, err = await rdv("receive", "4173-fox-opal", "--dir", str(dl), "--server", url)
    assert rc == 2, err
    assert err.strip() == f"rdv receive: cannot write into {dl}: read-only file system", err
    assert "waiting for the sender" not in err


async def test_a_failed_file_is_one_line_in_a_pipe_at_80_columns(url: str, tmp_path: Path) -> None:
    """Rich wrapped ``failed NAME: REASON`` at 80 columns in a file or a pipe: a log
    read "... already there \\n(kept as it is; ...)"."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "other.txt").write_bytes(b"new\n")
    dl = tmp_path / "dl" / "src"
    dl.mkdir(parents=True)
    (dl / "other.txt").write_bytes(b"old\n")
    info = (src / "other.txt").stat()
    os.utime(dl / "other.txt", ns=(info.st_atime_ns, info.st_mtime_ns))
    code = "4174-fox-opal"
    common = ("--server", url, "--spaces", "loopback4")
    narrow = {"COLUMNS": "80"}
    (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(
        rdv("send", str(src), "--code", code, *common, env=narrow),
        rdv("receive", code, "--dir", str(tmp_path / "dl"), "--yes", *common, env=narrow),
    )
    assert rc_s == 1 and rc_r == 1, (err_s, err_r)
    whole = (
        "failed src/other.txt: a different file with the same name, size and time is "
        "already there (kept as it is; receive into another folder)\n"
    )
    assert whole in err_s and whole in err_r, (err_s, err_r)


async def test_a_download_folder_that_is_a_file_is_named_so(url: str, tmp_path: Path) -> None:
    """``--dir FILE`` said "cannot write into FILE: File exists"."""
    (tmp_path / "f.txt").write_bytes(b"data")
    rc, _, err = await rdv(
        "receive", "4175-fox-opal", "--dir", str(tmp_path / "f.txt"), "--server", url
    )
    assert rc == 2, err
    assert err == f"rdv receive: the download folder {tmp_path / 'f.txt'} is not a folder\n", err


async def test_the_offer_table_shows_the_end_of_a_long_name(url: str, tmp_path: Path) -> None:
    """At 80 columns the table cut long names at the end: ``deep…/report-final.pdf`` and
    ``deep…/report-draft.pdf`` both read ``deep/deeper/…``, the file itself unseen."""
    deep = tmp_path / "src" / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / "report-final.pdf").write_bytes(b"f")
    (deep / "report-draft.pdf").write_bytes(b"d")
    code = "4176-fox-opal"
    common = ("--server", url, "--spaces", "loopback4")
    narrow = {"COLUMNS": "80"}
    (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(
        rdv("send", str(tmp_path / "src"), "--code", code, *common, env=narrow),
        rdv("receive", code, "--dir", str(tmp_path / "dl"), "--yes", *common, env=narrow),
    )
    assert rc_s == 0 and rc_r == 0, (err_s, err_r)
    table = err_r.split("The sender offers")[1].split("accepting 2 files")[0]
    assert "report-final.pdf" in table and "report-draft.pdf" in table, err_r
    assert all(len(line) <= 80 for line in table.splitlines()), err_r


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
async def test_a_send_in_batches_bigger_than_the_free_space_is_noted(
    url: str, tmp_path: Path
) -> None:
    """Only a send's first batch is checked against the free space before the question:
    a send of several batches that could not fit was accepted without a word. When a
    later batch was refused, the sender closed the session under the files accepted
    before (235 of 481 arrived), said "the receiver declined", and the receiver ended
    with "done: 235 files verified" and exit 0, 395 of 630 files missing."""
    from tests.test_session_disk import tmpfs

    src = tmp_path / "src"
    src.mkdir()
    for n in range(600):  # the first batch: small files, which fit
        (src / f"a{n:03}.txt").write_bytes(b"x" * 1024)
    for n in range(30):  # then 3 MiB, which do not
        (src / f"b{n:03}.bin").write_bytes(os.urandom(100 * 1024))
    code = "4177-fox-opal"
    common = ("--server", url, "--spaces", "loopback4")
    with tmpfs(tmp_path / "small", "2m") as dl:
        (rc_s, _, err_s), (rc_r, _, err_r) = await asyncio.gather(
            rdv("send", str(src), "--code", code, *common),
            rdv("receive", code, "--dir", str(dl), "--yes", *common),
        )
        arrived = len(os.listdir(dl / "src"))
    assert rc_s == 1 and rc_r == 1, (err_s, err_r)
    assert "note: the send is 3.5 MiB, 2.0 MiB free in the download folder: later files " in err_r
    refused = 630 - arrived
    assert 0 < refused < 630
    last_s = err_s.strip().splitlines()[-1]
    assert last_s.startswith(
        f"rdv send: the receiver verified {arrived} files, then refused {refused} (not "
        "enough free space"
    ), err_s
    last_r = err_r.strip().splitlines()[-1]
    assert last_r.startswith(f"rdv receive: {arrived} files verified in {dl}; "), err_r
    assert f"; {refused} refused (" in last_r and "not enough free space" in last_r, err_r
    assert f"{arrived} of 630 files verified" in err_r, err_r
