"""The socket channel stops reading above 2 MiB of unread bytes and reads again below
1 MiB: a record of the largest size (1 MiB of data, ``chunk_size=MAX_DATA_PAYLOAD``) left
at the head of 1 MiB and a few bytes, still short of its end, waited for bytes that
nobody read. The session hung (a real loopback TCP connection here, records of the
largest size written by the test's own end).
"""

from __future__ import annotations

import asyncio

from rdv_core.session._channel import PAUSE_ABOVE, RESUME_BELOW, SocketChannel, open_channel
from rdv_core.session._record import MAX_RECORD, RECORD_HEADER

from tests.session_support import stream_pair


def _record(fill: int) -> bytes:
    return RECORD_HEADER.pack(MAX_RECORD) + bytes([fill]) * MAX_RECORD


async def _held(channel: SocketChannel, n: int) -> None:
    while channel._end - channel._start < n:  # noqa: ASYNC110 (the loop's reads fill it)
        await asyncio.sleep(0.01)


async def test_a_largest_record_short_of_its_end_while_paused_is_read() -> None:
    first, second = _record(1), _record(2)
    stream = first + second
    # Reading pauses at 2 MiB + 30 held, and stays paused once the first record is read
    # (1 MiB + 5 left): the second record then needs 20 bytes more than the channel has.
    paused_at = PAUSE_ABOVE + 30
    assert paused_at - len(first) >= RESUME_BELOW and paused_at < len(stream)
    async with stream_pair() as ((reader, writer), (_, peer)):
        channel = open_channel(reader, writer)
        assert isinstance(channel, SocketChannel)
        async with asyncio.timeout(30):
            # In steps, so that no read of the channel ends between them: all but the
            # last 130 bytes before the pause, then those in one segment, then the rest.
            peer.write(stream[: PAUSE_ABOVE - 100])
            await _held(channel, PAUSE_ABOVE - 100)
            peer.write(stream[PAUSE_ABOVE - 100 : paused_at])
            await _held(channel, paused_at)
            peer.write(stream[paused_at:])
            await peer.drain()
            body = await channel.read_record()
            assert bytes(body[:1]) == b"\x01" and len(body) == MAX_RECORD
            body = await channel.read_record()
            assert bytes(body[:1]) == b"\x02" and len(body) == MAX_RECORD
        channel.close()
