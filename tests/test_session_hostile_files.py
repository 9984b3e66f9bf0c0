"""A crafted sender against the receiver's disk (issue 13, items 6 to 10).

Real loopback TCP, a real receiving :class:`Session`, real files in ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rdv_core.session import Session, collect
from rdv_core.session import _frames as fr
from rdv_core.session._errors import UnsafeName
from rdv_core.session._files import DIGEST, new_hasher
from rdv_core.session._safepath import check_relative_path

from tests.session_support import accept_all, stream_pair
from tests.test_session_hostile import CODE, CraftedPeer


@contextlib.asynccontextmanager
async def crafted_sender(download_dir: Path) -> AsyncIterator[tuple[CraftedPeer, Session]]:
    """A crafted sender and a real receiver that accepts every offer (like ``--yes``)."""
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(
            rb, wb, CODE, is_dialer=False, on_offer=accept_all, download_dir=download_dir
        )
        await asyncio.gather(peer.handshake(), receiver.start())
        try:
            yield peer, receiver
        finally:
            peer.writer.close()  # the crafted side hangs up first: no 5 s close wait
            await asyncio.wait_for(receiver.wait_closed(), 5)


async def _result(peer: CraftedPeer) -> fr.Result:
    answer = await peer.recv()
    while isinstance(answer, fr.Ack):
        answer = await peer.recv()
    assert isinstance(answer, fr.Result), answer
    return answer


async def _send_file(peer: CraftedPeer, id_: int, data: bytes, digest: str | None = None) -> None:
    await peer.send(fr.Data(id_, data))
    await peer.send(fr.Done(id_, digest or new_hasher().update(data).hexdigest(), DIGEST))


# ----- item 6: no symlink is followed, state files included


@pytest.mark.parametrize("planted", [".rdvpart.json", ".rdvpart"])
async def test_a_symlink_planted_at_a_state_file_is_not_followed(
    tmp_path: Path, planted: str
) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    os.symlink(victim, dl / f"report.txt{planted}")
    async with crafted_sender(dl) as (peer, _receiver):
        await peer.send(fr.Offer(1, (fr.OfferedFile(1, "report.txt", 4, 0),)))
        answer = await peer.recv()
        assert isinstance(answer, fr.Accept), answer
        assert answer.offsets == ()
        [(_, reason)] = answer.failed
        assert "symlink" in reason
    assert victim.read_text() == "precious"
    assert not (dl / "report.txt").exists()


# ----- item 7: the names on disk fit, the partial's is shortened


async def test_a_255_byte_name_arrives_twice_with_fitting_partial_and_numbered_names(
    tmp_path: Path,
) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    name = "é" * 100 + "x" * 51 + ".txt"  # 255 bytes of UTF-8
    assert len(name.encode()) == 255
    async with crafted_sender(dl) as (peer, receiver):
        for batch in (1, 2):
            await peer.send(fr.Offer(batch, (fr.OfferedFile(batch, name, 5, batch),)))
            answer = await peer.recv()
            assert isinstance(answer, fr.Accept) and answer.failed == (), answer
            await _send_file(peer, batch, b"hello")
            result = await _result(peer)
            assert result.ok, result.reason
        first, second = (r.path for r in receiver.received)
    assert first is not None and second is not None
    assert first.name == name
    assert second.name != name and second.name.endswith(" (1).txt")
    assert all(len(p.name.encode()) <= 255 for p in dl.iterdir())
    assert first.read_bytes() == second.read_bytes() == b"hello"


# ----- item 8: bidi overrides and C1 controls


@pytest.mark.parametrize(
    "name",
    ["invoice\u202efdp.exe", "a\u2066b.txt", "csi\x9b2J.txt", "nel\x85.txt", "dir\u202d/x.txt"],
)
async def test_bidi_and_c1_characters_in_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafeName, match="control or bidi"):
        check_relative_path(name)
    dl = tmp_path / "dl"
    dl.mkdir()
    async with crafted_sender(dl) as (peer, _receiver):
        await peer.send(fr.Offer(1, (fr.OfferedFile(1, name, 1, 0),)))
        answer = await peer.recv()
        assert isinstance(answer, fr.Reject) and "unsafe name" in answer.reason
    assert list(dl.iterdir()) == []


def test_the_sender_refuses_such_names_before_offering(tmp_path: Path) -> None:
    (tmp_path / "evil\u202egnp.exe").write_bytes(b"x")
    with pytest.raises(UnsafeName, match="control or bidi"):
        collect([tmp_path / "evil\u202egnp.exe"])


# ----- item 9: no digest oracle


async def test_a_failed_result_never_reveals_the_receivers_digest(tmp_path: Path) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    secret = dl / "diary.txt"
    secret.write_bytes(b"dear diary")
    os.utime(secret, ns=(1_000_000_000, 1_000_000_000))
    async with crafted_sender(dl) as (peer, _receiver):
        # Exactly the name, size and mtime of a file the receiver holds.
        await peer.send(fr.Offer(1, (fr.OfferedFile(1, "diary.txt", 10, 1_000_000_000),)))
        answer = await peer.recv()
        assert isinstance(answer, fr.Accept)
        await peer.send(fr.Done(1, "00" * 32, DIGEST))
        result = await _result(peer)
        assert not result.ok and result.digest == ""
        # A file sent in full with a wrong digest: no digest either.
        await peer.send(fr.Offer(2, (fr.OfferedFile(2, "other.txt", 4, 0),)))
        assert isinstance(await peer.recv(), fr.Accept)
        await _send_file(peer, 2, b"abcd", digest="11" * 32)
        result = await _result(peer)
        assert not result.ok and result.digest == ""
    assert secret.read_bytes() == b"dear diary"


async def test_nothing_about_the_disk_is_revealed_before_the_offer_is_accepted(
    tmp_path: Path,
) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    (dl / "a.txt").write_bytes(b"1234")
    os.utime(dl / "a.txt", ns=(5, 5))
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(rb, wb, CODE, is_dialer=False, on_offer=_decline, download_dir=dl)
        await asyncio.gather(peer.handshake(), receiver.start())
        for batch, name in enumerate(["a.txt", "b.txt"], 1):
            await peer.send(fr.Offer(batch, (fr.OfferedFile(batch, name, 4, 5),)))
            answer = await peer.recv()
            assert answer == fr.Reject(batch, "declined by the receiver")
        wa.close()
        await asyncio.wait_for(receiver.wait_closed(), 5)


async def _decline(offer: object) -> bool:
    return False


# ----- item 10: free space


async def test_an_offer_that_cannot_fit_is_refused_even_under_yes(tmp_path: Path) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    async with crafted_sender(dl) as (peer, receiver):
        await peer.send(fr.Offer(1, (fr.OfferedFile(1, "huge.iso", 4 << 60, 0),)))
        answer = await peer.recv()
        assert isinstance(answer, fr.Reject), answer
        assert "not enough free space" in answer.reason and "4.0 EiB" in answer.reason
        # Two offers that fit one by one but not together: the second is refused.
        free = os.statvfs(dl).f_bavail * os.statvfs(dl).f_frsize
        half = free // 2 + (1 << 20)
        await peer.send(fr.Offer(2, (fr.OfferedFile(2, "one.bin", half, 0),)))
        assert isinstance(await peer.recv(), fr.Accept)
        await peer.send(fr.Offer(3, (fr.OfferedFile(3, "two.bin", half, 0),)))
        answer = await peer.recv()
        assert isinstance(answer, fr.Reject) and "not enough free space" in answer.reason
        assert receiver.error is None
    assert sorted(p.name for p in dl.iterdir()) == ["one.bin.rdvpart", "one.bin.rdvpart.json"]
