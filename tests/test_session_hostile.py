"""A crafted sender (speaking the frame protocol by hand) against a real receiving Session."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from rdv_core.events import Event, FileFailed, FileRejected
from rdv_core.session import Session, parse_code
from rdv_core.session import _frames as fr
from rdv_core.session import _record as rec
from rdv_core.session._channel import StreamChannel
from rdv_core.session._crypto import SESSION_VERSION, Opener, Sealer, exchange_keys
from rdv_core.session._files import DIGEST

from tests.session_support import accept_all, stream_pair

CODE = "12-otter-quill"


class CraftedPeer:
    """The dialer side, built from the primitives, free to send anything."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.sealer: Sealer
        self.opener: Opener

    async def handshake(self) -> None:
        self.sealer, self.opener = await exchange_keys(
            StreamChannel(self.reader, self.writer), parse_code(CODE), is_dialer=True
        )
        await self.send(fr.Hello(SESSION_VERSION, "crafted"))
        assert isinstance(await self.recv(), fr.Hello)

    async def send(self, frame: fr.Frame) -> None:
        await self.send_plain(fr.encode(frame))

    async def send_plain(self, plain: bytes) -> None:
        sealed = self.sealer.seal(plain)
        self.writer.write(rec.RECORD_HEADER.pack(len(sealed)) + sealed)
        await self.writer.drain()

    async def recv(self) -> fr.Frame:
        length = rec.record_length(await self.reader.readexactly(4))
        data = await self.reader.readexactly(length)
        out = bytearray(length - rec.TAG_SIZE)
        size = self.opener.open_into(data, memoryview(out))
        frame = fr.decode(bytes(out[:size]))
        if isinstance(frame, fr.Data):
            return fr.Data(frame.id, bytes(frame.payload))
        return frame

    async def answer_close(self) -> None:
        """Read up to the other side's Close and hang up, as a real peer does: the other
        side's ``close()`` then ends at once, not after its 5 s wait (CLOSE_TIMEOUT)."""
        while not isinstance(await self.recv(), fr.Close):
            pass
        self.writer.close()


HOSTILE = [
    "../escape.txt",
    "a/../../escape.txt",
    "/etc/passwd",
    "C:evil.txt",
    "CON",
    "nul.txt",
    "com1.log",
    "a\x00b",
    "dir\\..\\x",
    "a//b",
    "./x",
    "x/.",
    "trailing.",
    "trailing ",
    "x.rdvpart",
    "",
    "a" * 300,
    "ctl\x1bchar",
]


@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_name_is_refused(tmp_path: Path, name: str) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    events: list[Event] = []
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(
            rb,
            wb,
            CODE,
            is_dialer=False,
            on_offer=accept_all,
            download_dir=dl,
            on_event=events.append,
        )
        await asyncio.gather(peer.handshake(), receiver.start())
        await peer.send(fr.Offer(1, (fr.OfferedFile(1, name, 4, 0),)))
        answer = await peer.recv()
        assert isinstance(answer, fr.Reject), answer
        assert "unsafe name" in answer.reason
        # Data for the refused transfer is a protocol violation: the session ends.
        await peer.send(fr.Data(1, b"evil"))
        error = await peer.recv()
        assert isinstance(error, fr.Error) and "unknown transfer" in error.message
        await receiver.wait_closed()
    assert [e.type for e in events if isinstance(e, FileRejected)] == ["FileRejected"]
    assert list(dl.iterdir()) == []
    assert not (tmp_path / "escape.txt").exists()


async def test_symlink_in_download_folder_is_not_followed(tmp_path: Path) -> None:
    dl = tmp_path / "dl"
    outside = tmp_path / "outside"
    dl.mkdir()
    outside.mkdir()
    os.symlink(outside, dl / "link")
    os.symlink(outside / "target.txt", dl / "file.txt")
    events: list[Event] = []
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(
            rb,
            wb,
            CODE,
            is_dialer=False,
            on_offer=accept_all,
            download_dir=dl,
            on_event=events.append,
        )
        await asyncio.gather(peer.handshake(), receiver.start())
        files = (fr.OfferedFile(1, "link/x.txt", 4, 0), fr.OfferedFile(2, "file.txt", 4, 0))
        await peer.send(fr.Offer(1, files))
        answer = await peer.recv()
        assert isinstance(answer, fr.Accept), answer
        assert answer.offsets == ()
        reasons = dict(answer.failed)
        assert "symlink" in reasons[1] and "symlink" in reasons[2]
        await asyncio.gather(receiver.close(), peer.answer_close())
    assert list(outside.iterdir()) == []
    assert len([e for e in events if isinstance(e, FileFailed)]) == 2


async def test_more_data_than_offered_fails_the_file(tmp_path: Path) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(rb, wb, CODE, is_dialer=False, on_offer=accept_all, download_dir=dl)
        await asyncio.gather(peer.handshake(), receiver.start())
        await peer.send(fr.Offer(1, (fr.OfferedFile(7, "small.txt", 3, 0),)))
        assert isinstance(await peer.recv(), fr.Accept)
        await peer.send(fr.Data(7, b"toolong"))
        fail = await peer.recv()
        assert isinstance(fail, fr.Fail) and fail.side == "receiver"
        assert "more than the offered" in fail.reason
        await asyncio.gather(receiver.close(), peer.answer_close())
    assert not (dl / "small.txt").exists()


async def test_wrong_digest_is_not_kept(tmp_path: Path) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(rb, wb, CODE, is_dialer=False, on_offer=accept_all, download_dir=dl)
        await asyncio.gather(peer.handshake(), receiver.start())
        await peer.send(fr.Offer(1, (fr.OfferedFile(3, "f.txt", 4, 0),)))
        assert isinstance(await peer.recv(), fr.Accept)
        await peer.send(fr.Data(3, b"abcd"))
        await peer.send(fr.Done(3, "00" * 32, DIGEST))
        result = await peer.recv()
        while isinstance(result, fr.Ack):
            result = await peer.recv()
        assert isinstance(result, fr.Result)
        assert not result.ok and "digest mismatch" in result.reason
        await asyncio.gather(receiver.close(), peer.answer_close())
    assert list(dl.iterdir()) == []


async def test_digest_of_another_algorithm_fails_the_file_and_keeps_the_data(
    tmp_path: Path,
) -> None:
    dl = tmp_path / "dl"
    dl.mkdir()
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(rb, wb, CODE, is_dialer=False, on_offer=accept_all, download_dir=dl)
        await asyncio.gather(peer.handshake(), receiver.start())
        await peer.send(fr.Offer(1, (fr.OfferedFile(3, "f.txt", 4, 0),)))
        assert isinstance(await peer.recv(), fr.Accept)
        await peer.send(fr.Data(3, b"abcd"))
        await peer.send(fr.Done(3, "00" * 32, "sha256"))
        result = await peer.recv()
        while isinstance(result, fr.Ack):
            result = await peer.recv()
        assert isinstance(result, fr.Result)
        assert not result.ok and "'sha256'" in result.reason and DIGEST in result.reason
        await asyncio.gather(receiver.close(), peer.answer_close())
    assert not (dl / "f.txt").exists()
    assert (dl / "f.txt.rdvpart").read_bytes() == b"abcd"


@pytest.mark.parametrize(
    "plain",
    [bytes([0x7F]) + b"{}", bytes([fr.FrameType.CHAT]) + b"not json", bytes([fr.FrameType.ACK])],
    ids=["unknown-type", "bad-json", "short-ack"],
)
async def test_bad_frames_end_the_session_with_a_clear_error(tmp_path: Path, plain: bytes) -> None:
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(rb, wb, CODE, is_dialer=False)
        await asyncio.gather(peer.handshake(), receiver.start())
        await peer.send_plain(plain)
        error = await peer.recv()
        assert isinstance(error, fr.Error)
        await receiver.wait_closed()
    assert receiver.error is not None
    assert error.message == str(receiver.error)


async def test_oversized_record_ends_the_session(tmp_path: Path) -> None:
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(rb, wb, CODE, is_dialer=False)
        await asyncio.gather(peer.handshake(), receiver.start())
        wa.write(rec.RECORD_HEADER.pack(rec.MAX_RECORD + 1))
        await wa.drain()
        error = await peer.recv()
        assert isinstance(error, fr.Error) and "oversized frame" in error.message
        await receiver.wait_closed()
    assert "oversized frame" in receiver.close_reason


async def test_reused_transfer_id_ends_the_session(tmp_path: Path) -> None:
    never = asyncio.Event()

    async def undecided(offer: object) -> bool:
        await never.wait()
        return False

    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(rb, wb, CODE, is_dialer=False, on_offer=undecided, download_dir=tmp_path)
        await asyncio.gather(peer.handshake(), receiver.start())
        await peer.send(fr.Offer(1, (fr.OfferedFile(5, "a.txt", 1, 0),)))
        await peer.send(fr.Offer(2, (fr.OfferedFile(5, "b.txt", 1, 0),)))
        error = await peer.recv()
        assert isinstance(error, fr.Error) and "reuses a transfer id" in error.message
        await receiver.wait_closed()
