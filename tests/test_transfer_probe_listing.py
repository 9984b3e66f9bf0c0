"""Listing the folders ``rdv send`` is given, on a real file system."""

from __future__ import annotations

import os
import socket
import sys
from collections import Counter
from pathlib import Path

import pytest

from rdv_core.session import collect

from tests.test_session_cli import rdv


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux's /proc")
def test_a_file_deleted_while_its_folder_is_listed_is_skipped() -> None:
    """A file that goes between the folder's listing and its ``lstat`` is not sent.

    ``/proc/PID/fdinfo`` lists the descriptor of the listing itself, which is closed
    before its entries are looked at: the same race as a program deleting its temporary
    files in a folder being sent. It ended ``rdv send DIR`` (exit 2) with
    ``[Errno 2] No such file or directory: '/proc/.../fdinfo/3'``.
    """
    folder = Path(f"/proc/{os.getpid()}/fdinfo")
    files = collect([folder])
    assert files  # the descriptors still open (pytest's capture files, at least)
    assert all(f.name.startswith("fdinfo/") for f in files)


def _odd_folder(root: Path) -> Path:
    """A folder with one regular file and one of each thing that is not sent."""
    folder = root / "odd"
    (folder / "sub").mkdir(parents=True)
    (folder / "empty").mkdir()
    (folder / "sub" / "a.txt").write_bytes(b"a")
    (folder / "link").symlink_to("sub/a.txt")
    os.mkfifo(folder / "fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "sock"))
    return folder


def test_collect_counts_what_it_leaves_out(tmp_path: Path) -> None:
    skipped: Counter[str] = Counter()
    files = collect([_odd_folder(tmp_path)], skipped)
    assert [f.name for f in files] == ["odd/sub/a.txt"]
    assert skipped == {"symlink": 1, "special file": 2, "empty folder": 1}


async def test_rdv_send_says_what_it_does_not_send(tmp_path: Path) -> None:
    """``rdv send DIR`` left symlinks, fifos, sockets and empty folders out without a
    word, and ended with "the receiver verified 1 file"."""
    folder = _odd_folder(tmp_path)
    rc, out, err = await rdv("send", str(folder), "--server", "http://127.0.0.1:1")
    assert rc == 1 and out.startswith("Sending 1 file, 1 B."), (out, err)
    assert (
        "not sent: 1 empty folder, 2 special files, 1 symlink (only regular files are sent)\n"
    ) in err, err
    (folder / "sub" / "a.txt").unlink()
    rc, out, err = await rdv("send", str(folder), "--server", "http://127.0.0.1:1")
    assert rc == 2 and not out, (out, err)
    assert err == (
        "rdv send: nothing to send (2 empty folders, 2 special files, 1 symlink; "
        "only regular files are sent)\n"
    ), err


def test_the_same_file_or_folder_named_twice_is_sent_once(tmp_path: Path) -> None:
    """``rdv send a.txt a.txt`` and ``rdv send dir dir/`` ended with exit 2 and "two
    files would arrive under the same name"; two different files of one name still do."""
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"a")
    (folder / "b.txt").write_bytes(b"b")
    files = collect([folder / "a.txt", folder / "a.txt"])
    assert [f.name for f in files] == ["a.txt"]
    files = collect([folder, Path(f"{folder}/"), folder / ".." / "dir"])
    assert [f.name for f in files] == ["dir/a.txt", "dir/b.txt"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_bytes(b"another a")
    with pytest.raises(ValueError, match=r"two files would arrive under the same name: a\.txt"):
        collect([folder / "a.txt", other / "a.txt"])


async def test_a_path_with_colons_is_shown_as_it_is(tmp_path: Path) -> None:
    """Rich read ``:b:`` in a path as an emoji code: ``rdv send DIR`` with a file ``a:b``
    in it said "rdv send: .../a🅱 the receiver would refuse the name 'dir/a:b'"."""
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "a:b").write_bytes(b"x")
    rc, out, err = await rdv("send", str(folder), "--server", "http://127.0.0.1:1")
    assert rc == 2 and not out, (out, err)
    assert err.startswith(f"rdv send: nothing to send: {folder}/a:b: the receiver would refuse"), (
        err
    )
