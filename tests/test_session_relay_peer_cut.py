"""A peer whose conn to a live relay ends inside a record is still "the peer hung up".

A sender SIGKILLed on a classic relay (tests/test_transfer_server_gone.py) left the
receiver with one of three endings, at random: "the peer hung up" (the server's FIN came
after the sender's last whole record), "connection lost mid-frame" (the sender died
inside a write: about 1 run in 12 on a loaded machine) or "connection lost: [Errno 104]
Connection reset by peer" (the server closed our conn with our acks unread). All three
are the same event, told by a server that still answers. Here a real server relays two
real sessions, and the sender's side writes half a record and ends its conn.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rdv_core.session._record import RECORD_HEADER
from rdv_core.wire import AddrSpace

from tests.test_session_rdv import _pair


async def _cut_inside_a_record(url: str, tmp_path: Path, spaces: AddrSpace) -> str:
    dl = tmp_path / "dl"
    dl.mkdir()
    sender, receiver = await _pair(url, "4611-fox-opal", "4611-fox-opal", spaces, dl, [], [])
    try:
        assert sender.conn is not None and sender.conn.is_relay == (spaces == AddrSpace.NONE)
        transport = sender.conn.writer.transport
        # The start of a record of 1000 bytes, as a peer that dies mid-write leaves it.
        transport.write(RECORD_HEADER.pack(1000) + bytes(100))
        transport.write_eof()
        async with asyncio.timeout(30):
            return await receiver.wait_closed()
    finally:
        await receiver.close()
        async with asyncio.timeout(30):  # our cut: no close of its own after its EOF
            await sender.wait_closed()
        await sender.close()


async def test_a_peer_cut_inside_a_record_on_a_live_relay_hung_up(url: str, tmp_path: Path) -> None:
    assert await _cut_inside_a_record(url, tmp_path, AddrSpace.NONE) == "the peer hung up"


async def test_on_a_direct_conn_the_cut_is_told_as_it_is(url: str, tmp_path: Path) -> None:
    # No server between us: what the conn did is all we know, and it is said.
    why = await _cut_inside_a_record(url, tmp_path, AddrSpace.LOOPBACK4 | AddrSpace.LOOPBACK6)
    assert why == "connection lost mid-frame"
