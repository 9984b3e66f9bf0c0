"""The state and helpers both transfer sides and the session share: sealing frames out, events.

:class:`SessionBase` declares what :class:`~rdv_core.session._session.Session` sets up in
its constructor, so that the transfer sides (:mod:`~rdv_core.session._outgoing`,
:mod:`~rdv_core.session._incoming`) can be read, and type-checked, on their own.
"""

from __future__ import annotations

import asyncio
import logging
import time

from rdv_core.events import Clock, Event, EventCallback, FileProgress
from rdv_core.session import _frames as fr
from rdv_core.session._channel import Channel
from rdv_core.session._crypto import Sealer
from rdv_core.session._errors import SessionError
from rdv_core.session._record import RECORD_HEADER, TAG_SIZE
from rdv_core.session._transfers import Direction, Progress

log = logging.getLogger("rdv.session")


class SessionBase:
    """What every part of a session uses; :class:`Session` initializes it."""

    _channel: Channel
    _sealer: Sealer | None
    _clock: Clock
    _on_event: EventCallback | None
    _closed: asyncio.Event
    _closing: bool
    close_reason: str
    error: SessionError | None

    @property
    def closed(self) -> bool:
        """True once the session has ended (cleanly or not)."""
        return self._closed.is_set()

    # ----- frames out

    def _check_open(self) -> None:
        if self.closed or self._closing:
            raise self.error or SessionError(f"the session is closed ({self.close_reason})")
        if self._sealer is None:
            raise SessionError("the session is not started")

    def _write(self, frame: fr.Frame) -> None:
        """Seal and queue one frame (no await: frames leave in nonce order)."""
        assert self._sealer is not None
        plain = fr.encode(frame)
        record = bytearray(RECORD_HEADER.size + len(plain) + TAG_SIZE)
        RECORD_HEADER.pack_into(record, 0, len(plain) + TAG_SIZE)
        self._sealer.seal_into(plain, memoryview(record)[RECORD_HEADER.size :])
        self._channel.write(record)

    def _write_reply(self, frame: fr.Frame) -> None:
        """Write a small reply from the reader task; tolerant of a dying connection."""
        if self.closed:
            return
        try:
            self._write(frame)
        except (OSError, RuntimeError) as exc:
            log.debug("reply not sent: %r", exc)

    async def _drain(self) -> None:
        await self._channel.drain()

    # ----- events

    def _emit(self, event: Event) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            log.exception("session event callback failed on %s", event.type)

    def _emit_progress(
        self, id_: int, direction: Direction, done: int, progress: Progress, force: bool = False
    ) -> None:
        if force:
            progress.last_emit = time.monotonic()
        event = FileProgress(
            self._clock(), id_, direction, done, progress.total, progress.rate(done)
        )
        self._emit(event)
