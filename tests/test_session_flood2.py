"""A hostile peer inside an established session, part two (docs/PROTOCOL.md 12.6, 15.5).

The crafted peer of tests/test_session_hostile.py speaks the real frames over a real
loopback TCP pair; each test checks a counted structure or what the loop reported.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import cast

import pytest

from rdv_core.session import Session, SessionError, _outbox, parse_code
from rdv_core.session import _frames as fr
from rdv_core.session import _record as rec
from rdv_core.session._channel import StreamChannel
from rdv_core.session._crypto import SESSION_VERSION, exchange_keys
from rdv_core.session._files import LocalFile
from rdv_core.session._incoming import FRAMES_CHECKED

from tests.session_support import accept_all, reject_all, stream_pair
from tests.test_session_hostile import CODE, CraftedPeer


async def test_a_batch_number_reused_after_its_answer_ends_the_session() -> None:
    # Before: only the open batches were checked, so batch 1 offered again once it was
    # rejected was answered again (12.6: a batch offered twice is a violation).
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(rb, wb, CODE, is_dialer=False, on_offer=reject_all)
        await asyncio.gather(peer.handshake(), receiver.start())
        await peer.send(fr.Offer(1, (fr.OfferedFile(1, "a", 0, 0),)))
        assert isinstance(await peer.recv(), fr.Reject)
        for batch in range(2, 1002):  # rdv's numbers 1, 2, 3, ... stay one range
            await peer.send(fr.Offer(batch, (fr.OfferedFile(batch, "a", 0, 0),)))
            assert isinstance(await peer.recv(), fr.Reject)
        await peer.send(fr.Offer(1, (fr.OfferedFile(5000, "a", 0, 0),)))
        error = await peer.recv()
        assert isinstance(error, fr.Error), error
        assert "offer 1 sent twice" in error.message
        await asyncio.wait_for(receiver.wait_closed(), 5)
    assert receiver.close_reason == error.message
    assert len(receiver._incoming._claimed_batches) == 1  # 1001 batches, one range


async def test_offers_ahead_left_unanswered_report_no_unretrieved_error() -> None:
    # Before: a peer that closed with pipelined offers unanswered left their futures
    # holding ConnectionLost, and asyncio printed "Future exception was never retrieved"
    # for each (seen with bench/tui_offer.py).
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        sender = Session(rb, wb, CODE, is_dialer=False)

        async def handshake() -> None:
            peer.sealer, peer.opener = await exchange_keys(
                StreamChannel(ra, wa), parse_code(CODE), is_dialer=True
            )
            await peer.send(fr.Hello(SESSION_VERSION, "crafted", ("files", "pipeline")))
            assert isinstance(await peer.recv(), fr.Hello)

        await asyncio.gather(handshake(), sender.start())
        # Names long enough that a few hundred files fill an offer: several batches.
        local = [LocalFile("/nowhere", f"{i:06d}" + "n" * 200, 0, 0) for i in range(3000)]
        send = asyncio.create_task(sender.send_files(local))
        offers = 0
        while offers < 3:
            offers += isinstance(await peer.recv(), fr.Offer)
        unanswered = list(sender._outgoing._answers.values())
        assert len(unanswered) >= 3
        peer.writer.close()
        with pytest.raises(SessionError):
            await asyncio.wait_for(send, 5)
        await asyncio.wait_for(sender.wait_closed(), 5)
    # What asyncio checks when a future is freed to print "Future exception was never
    # retrieved" (freeing them here is not reliable: the close error's traceback keeps
    # them alive until the session goes).
    assert [f for f in unanswered if f._log_traceback] == []


async def test_a_second_diagnosis_frame_ends_the_session() -> None:
    # Before: each extra one was parsed (up to 256 KiB of JSON) and ignored, without end.
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(rb, wb, CODE, is_dialer=False, on_offer=reject_all)
        await asyncio.gather(peer.handshake(), receiver.start())
        body: dict[str, object] = {"v": 1, "report": None, "events": []}
        await peer.send(fr.Diagnosis(body))
        await peer.send(fr.Diagnosis(body))
        await peer.send(fr.Offer(1, (fr.OfferedFile(1, "a", 0, 0),)))
        error = await peer.recv()
        assert isinstance(error, fr.Error), error
        assert "second diagnosis frame" in error.message
        await asyncio.wait_for(receiver.wait_closed(), 5)
    assert receiver.close_reason == error.message


async def test_a_peer_that_sends_and_never_reads_is_cut_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before: rejects (each naming the refused 4 KiB name) piled up in our transport's
    # write buffer, 10 MB a second, for as long as the peer kept sending. Tried with a
    # smaller bound than 64 MiB, which takes 7 s to reach here.
    monkeypatch.setattr(_outbox, "MAX_UNSENT", 4 << 20, raising=False)
    async with stream_pair() as ((ra, wa), (rb, wb)):
        # Small kernel buffers on both sides: the kernel soon takes no more.
        wa.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        wb.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        peer = CraftedPeer(ra, wa)
        receiver = Session(rb, wb, CODE, is_dialer=False, on_offer=reject_all)
        await asyncio.gather(peer.handshake(), receiver.start())
        cast(asyncio.Transport, wa.transport).pause_reading()  # the peer reads no more
        incoming, name = receiver._incoming, "x" * 4096  # too long: rejected, named
        most = 0
        for batch in range(1, 3001):  # 12 MB of rejects
            if receiver._closed.is_set():
                break
            try:
                await peer.send(fr.Offer(batch, (fr.OfferedFile(batch, name, 0, 0),)))
            except ConnectionError:
                break  # cut off just now
            if batch % 8 == 0:  # at most 16 unanswered: let the receiver keep up
                while not receiver._closed.is_set() and (  # noqa: ASYNC110 (its state)
                    batch not in incoming._claimed_batches or len(incoming._open_offers) > 4
                ):
                    await asyncio.sleep(0)
            most = max(most, wb.transport.get_write_buffer_size())
        assert most < 5 << 20  # the bound and one offer's answers, at most
        await asyncio.wait_for(receiver.wait_closed(), 3)
        assert wb.transport.get_write_buffer_size() == 0  # dropped, not held
    assert "left more than 4 MiB of our replies unread" in receiver.close_reason


async def test_file_data_in_tiny_frames_ends_the_session(tmp_path: Path) -> None:
    # Before: each 1-byte data frame was a write and a hash (6 us, 5000 times the CPU
    # per byte of 256 KiB frames), for as many frames as the peer sent.
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(
            rb, wb, CODE, is_dialer=False, on_offer=accept_all, download_dir=tmp_path
        )
        await asyncio.gather(peer.handshake(), receiver.start())
        size = 3 * FRAMES_CHECKED
        await peer.send(fr.Offer(1, (fr.OfferedFile(1, "f", size, 0),)))
        assert isinstance(await peer.recv(), fr.Accept)
        records = []
        for _ in range(size):
            sealed = peer.sealer.seal(fr.encode(fr.Data(1, b"x")))
            records.append(rec.RECORD_HEADER.pack(len(sealed)) + sealed)
        wa.write(b"".join(records))
        await wa.drain()

        async def past_acks() -> fr.Frame:
            while isinstance(frame := await peer.recv(), fr.Ack):
                pass
            return frame

        error = await asyncio.wait_for(past_acks(), 3)  # before: acks, then nothing
        assert isinstance(error, fr.Error), error
        assert "tiny frames (1 bytes on average, not 512)" in error.message
        await asyncio.wait_for(receiver.wait_closed(), 5)
