"""A folder of the download folder swapped for a symlink after the offer was accepted.

Another process of the receiver's machine that can write to the download folder replaces
``sub`` (checked when the offer was accepted) by a symlink to a folder elsewhere before
the data come: the file must not land there (docs/PROTOCOL.md 12.8). Real loopback TCP,
a real receiving :class:`~rdv_core.session.Session`, real files in ``tmp_path``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from blake3 import blake3

from rdv_core.session import _frames as fr
from rdv_core.session._errors import UnsafeName
from rdv_core.session._incoming_file import IncomingFile

from tests.test_session_hostile_files import _result, _send_file, crafted_sender


def _swap(dl: Path, elsewhere: Path) -> None:
    (dl / "sub").rename(dl / "sub.old")
    os.symlink(elsewhere, dl / "sub")


async def test_data_after_the_swap_never_lands_outside(tmp_path: Path) -> None:
    dl, elsewhere = tmp_path / "dl", tmp_path / "elsewhere"
    dl.mkdir()
    elsewhere.mkdir()
    async with crafted_sender(dl) as (peer, _receiver):
        await peer.send(fr.Offer(1, (fr.OfferedFile(1, "sub/a.txt", 5, 0),)))
        answer = await peer.recv()
        assert isinstance(answer, fr.Accept) and answer.failed == (), answer
        _swap(dl, elsewhere)
        await _send_file(peer, 1, b"hello")
        answer = await peer.recv()
        while isinstance(answer, fr.Ack):
            answer = await peer.recv()
        assert isinstance(answer, fr.Fail), answer
        assert "'sub' became a symlink" in answer.reason, answer.reason
    assert list(elsewhere.iterdir()) == []


def test_a_whole_small_file_after_the_swap_never_lands_outside(tmp_path: Path) -> None:
    dl, elsewhere = tmp_path / "dl", tmp_path / "elsewhere"
    dl.mkdir()
    elsewhere.mkdir()
    file = IncomingFile(dl, 1, "sub/a.txt", 5, 0)
    assert file.prepare() == 0
    _swap(dl, elsewhere)
    with pytest.raises(UnsafeName, match="'sub' became a symlink"):
        file.store_whole(b"hello", blake3(b"hello").digest())
    assert list(elsewhere.iterdir()) == []


async def test_a_verified_file_is_placed_in_the_folder_it_was_written_in(tmp_path: Path) -> None:
    """Swapped after the first data: the rest goes on in the real folder, not elsewhere."""
    dl, elsewhere = tmp_path / "dl", tmp_path / "elsewhere"
    dl.mkdir()
    elsewhere.mkdir()
    async with crafted_sender(dl) as (peer, _receiver):
        await peer.send(fr.Offer(1, (fr.OfferedFile(1, "sub/a.txt", 10, 0),)))
        answer = await peer.recv()
        assert isinstance(answer, fr.Accept) and answer.failed == (), answer
        await peer.send(fr.Data(1, b"hello"))
        while not (dl / "sub" / "a.txt.rdvpart").exists():
            await peer.recv()  # an ack: the first bytes are written
        _swap(dl, elsewhere)
        await _send_file(peer, 1, b"world", blake3(b"helloworld").hexdigest())
        result = await _result(peer)
        assert result.ok, result.reason
    assert list(elsewhere.iterdir()) == []
    assert (dl / "sub.old" / "a.txt").read_bytes() == b"helloworld"


@pytest.mark.parametrize("size", [5, 70_000])  # whole (a bundle's file), then resumable
def test_a_deep_name_past_path_max_arrives(tmp_path: Path, size: int) -> None:
    """19 folders of 200 bytes and a 255-byte name under a long download folder: more than
    Linux's 4096-byte PATH_MAX in all, which a path-based ``open`` refused (``File name
    too long``); relative to the folder's descriptor it arrives."""
    dl = tmp_path / ("b" * 60)
    dl.mkdir()
    name = "/".join(["d" * 200] * 19 + ["f" * 255])
    assert len(f"{dl}/{name}.rdvpart".encode()) > 4096
    data = os.urandom(size)
    file = IncomingFile(dl, 1, name, size, 0)
    assert file.prepare() == 0
    if size < 64 * 1024:
        file.store_whole(data, blake3(data).digest())
    else:
        file.write(memoryview(data))
        ok, _, reason = file.finish(blake3(data).hexdigest())
        assert ok, reason
    folder = os.open(dl, os.O_RDONLY)
    try:
        for part in name.split("/")[:-1]:
            inner = os.open(part, os.O_RDONLY, dir_fd=folder)
            os.close(folder)
            folder = inner
        assert os.listdir(folder) == ["f" * 255]
        with open(os.open("f" * 255, os.O_RDONLY, dir_fd=folder), "rb") as got:
            assert got.read() == data
    finally:
        os.close(folder)


async def test_a_download_folder_deleted_while_receiving_is_named(tmp_path: Path) -> None:
    """It said ``cannot finish a.txt: No such file or directory``; the next file too."""
    dl = tmp_path / "dl"
    dl.mkdir()
    async with crafted_sender(dl) as (peer, _receiver):
        offered = (fr.OfferedFile(1, "a.txt", 10, 0), fr.OfferedFile(2, "b.txt", 5, 0))
        await peer.send(fr.Offer(1, offered))
        answer = await peer.recv()
        assert isinstance(answer, fr.Accept) and answer.failed == (), answer
        await peer.send(fr.Data(1, b"hello"))
        while not (dl / "a.txt.rdvpart").exists():
            await peer.recv()  # an ack: the first bytes are written
        shutil.rmtree(dl)
        await _send_file(peer, 1, b"world", blake3(b"helloworld").hexdigest())
        result = await _result(peer)
        assert not result.ok
        assert result.reason == "cannot finish a.txt: its folder was deleted while receiving"
        await _send_file(peer, 2, b"hello")
        answer = await peer.recv()
        while isinstance(answer, fr.Ack):
            answer = await peer.recv()
        assert isinstance(answer, fr.Fail), answer
        assert answer.reason == (
            f"cannot write b.txt: the download folder {dl} was deleted while receiving"
        )
