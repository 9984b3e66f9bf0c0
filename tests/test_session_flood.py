"""A hostile peer flooding an established session's memory (docs/PROTOCOL.md 12.6).

The crafted peer of tests/test_session_hostile.py speaks the real frames over a real
loopback TCP pair; each test checks the size of the structure the flood used to grow.
"""

from __future__ import annotations

import asyncio

import pytest

from rdv_core.session import Session
from rdv_core.session import _frames as fr
from rdv_core.session._claimed import MAX_RANGES, ClaimedIds
from rdv_core.session._errors import ProtocolViolation

from tests.session_support import reject_all, stream_pair
from tests.test_session_hostile import CODE, CraftedPeer


async def test_declined_offers_of_many_ids_do_not_grow_the_receiver() -> None:
    # Before: every offered id stayed in a set (80 bytes each), rejected batches too:
    # 200 declined offers of 12,000 names took 200 MB. rdv's own ids (1, 2, 3, ...) are
    # one range, whatever their count.
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(rb, wb, CODE, is_dialer=False, on_offer=reject_all)
        await asyncio.gather(peer.handshake(), receiver.start())
        next_id = 1
        for batch in range(1, 11):
            files = tuple(fr.OfferedFile(next_id + i, "a", 0, 0) for i in range(2000))
            next_id += len(files)
            await peer.send(fr.Offer(batch, files))
            assert isinstance(await peer.recv(), fr.Reject)
        assert len(receiver._incoming._claimed_ids) == 1  # was 20,000 ids
        peer.writer.close()
        await asyncio.wait_for(receiver.wait_closed(), 5)


async def test_ids_scattered_over_too_many_ranges_end_the_session() -> None:
    async with stream_pair() as ((ra, wa), (rb, wb)):
        peer = CraftedPeer(ra, wa)
        receiver = Session(rb, wb, CODE, is_dialer=False, on_offer=reject_all)
        await asyncio.gather(peer.handshake(), receiver.start())
        files = tuple(fr.OfferedFile(2 * i + 1, "a", 0, 0) for i in range(MAX_RANGES + 1))
        await peer.send(fr.Offer(1, files))
        error = await peer.recv()
        assert isinstance(error, fr.Error), error
        assert f"more than {MAX_RANGES} ranges" in error.message
        await asyncio.wait_for(receiver.wait_closed(), 5)
    assert receiver.close_reason == error.message


def test_claimed_ranges_merge_and_refuse_reuse() -> None:
    claimed = ClaimedIds()
    claimed.claim([5, 6, 7])
    claimed.claim([1, 2])
    claimed.claim([4, 3])  # fills the gap: one range 1..7
    assert len(claimed) == 1 and 1 in claimed and 7 in claimed and 8 not in claimed
    for reused in ([7], [8, 8], [0, 3]):
        with pytest.raises(ProtocolViolation, match="reuses a transfer id"):
            claimed.claim(reused)
    claimed.claim([0])  # a refused claim took nothing: 0 is still free
    assert len(claimed) == 1 and 0 in claimed
