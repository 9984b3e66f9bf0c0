"""Fast start: ``ATTACH`` both ways on a new direct conn (docs/PROTOCOL.md 16.3, 16.5).

The winner of an upgrade attempt's race is authenticated by the attempt's number and
both HELLO nonces (the session id) before the stream moves onto it
(:mod:`rdv_core.client._upgrade`).
"""

from __future__ import annotations

import asyncio
from typing import Final

from rdv_core.client._link import Link
from rdv_core.errors import RdvProtocolError
from rdv_core.faststart import FrameParser
from rdv_core.faststart._frames import NONCE_SIZE, attach_frame, parse_attach

ATTACH_TIMEOUT: Final = 5.0
_ATTACH_SIZE: Final = 5 + 1 + 2 * NONCE_SIZE


async def exchange_attach(link: Link, attempt: int, session_id: bytes) -> None:
    """Send our ``ATTACH`` and check the peer's names the same attempt and session.

    Raises:
        RdvProtocolError: the peer's names another attempt or session, or is no ATTACH.
        OSError, EOFError, ValueError: the conn failed, ended or sent a bad frame
            (``TimeoutError`` after :data:`ATTACH_TIMEOUT`).
    """
    link.writer.write(attach_frame(attempt, session_id))
    async with asyncio.timeout(ATTACH_TIMEOUT):
        raw = await link.reader.readexactly(_ATTACH_SIZE)
    (frame,) = FrameParser().feed(raw)
    their_attempt, their_session = parse_attach(frame)
    if their_attempt != attempt or their_session != session_id:
        raise RdvProtocolError("ATTACH names another attempt or session")
