"""Sealed frames out of one session: what the session and both transfer directions write to.

A :class:`~rdv_core.session._session.Session` owns one :class:`Outbox` and hands it to
its :class:`~rdv_core.session._outgoing.Outgoing` and
:class:`~rdv_core.session._incoming.Incoming` sides; it is all they know of the
connection. Two rules make it correct without a lock:

- Sealing and writing a frame happen with no ``await`` in between, so frames leave in
  nonce order; bulk senders ``drain()`` after each chunk.
- Replies from the reader task (:meth:`Outbox.write_reply`: acks, results, fails) are
  small and rate-limited and never wait on flow control, so two peers pushing files at
  each other cannot deadlock.
  A peer that sends and never reads would so grow our write buffer without end
  (rejects of 4 KiB names: 10 MB a second on loopback); past :data:`MAX_UNSENT` unsent
  bytes the session ends instead (:meth:`Outbox.check_unsent`, docs/PROTOCOL.md 12.11).
"""

from __future__ import annotations

import logging

from rdv_core.session import _frames as fr
from rdv_core.session._channel import Channel
from rdv_core.session._crypto import Sealer
from rdv_core.session._errors import ConnectionLost, ProtocolViolation, SessionError
from rdv_core.session._record import RECORD_HEADER, TAG_SIZE
from rdv_core.session._transfers import SESSION_ENDED

log = logging.getLogger("rdv.session")

#: Bytes written and not read by the peer above which the session ends. Our own bulk
#: writes wait for flow control (a chunk or an offer over the high-water mark); only
#: the reader's replies do not, and an rdv peer reads them as they come.
MAX_UNSENT = 64 << 20


class Outbox:
    """Seals frames and queues them on the session's channel, once the keys are known.

    The session moves it through its life: :meth:`open` (the handshake derived the
    keys; nothing may be sent before), :attr:`closing` (the session queued its
    ``close``: callers may send nothing more, the reader's replies still go) and
    :meth:`end` (the session ended: nothing is sent any more). It holds no reference
    to the session, so a session and its parts are freed as soon as they are dropped.
    """

    __slots__ = ("_close_reason", "_error", "channel", "closed", "closing", "overflowed", "sealer")

    def __init__(self) -> None:
        #: Where frames go, and the sealer of this direction: both set by :meth:`open`.
        self.channel: Channel | None = None
        self.sealer: Sealer | None = None
        #: Set by the session once its ``close`` frame is queued.
        self.closing = False
        #: Set by :meth:`end`.
        self.closed = False
        self._error: SessionError | None = None
        self._close_reason = ""
        #: Set by :meth:`check_unsent` when the peer stopped reading.
        self.overflowed = False

    def open(self, channel: Channel, sealer: Sealer) -> None:
        """Start sending on ``channel``, sealing with ``sealer``."""
        self.channel = channel
        self.sealer = sealer

    def end(self, error: SessionError | None, close_reason: str) -> None:
        """The session ended (with ``error``, or cleanly): refuse every frame from now on."""
        self.closed = True
        self._error = error
        self._close_reason = close_reason
        if self.overflowed and self.channel is not None:
            # What the peer never read would stay queued as long as the conn lives.
            self.channel.abort()

    @property
    def started(self) -> bool:
        """True once :meth:`open` was called."""
        return self.sealer is not None

    def check_open(self) -> None:
        """Raise unless callers may send (the session started and is not closing or closed).

        Raises:
            SessionError: the session is closed (its error, when it ended with one).
        """
        if self.closed or self.closing:
            raise self._error or SessionError(f"the session is closed ({self._close_reason})")
        if self.sealer is None:
            raise SessionError("the session is not started")

    def write(self, frame: fr.Frame) -> None:
        """Seal and queue one frame (no await: frames leave in nonce order)."""
        assert self.sealer is not None and self.channel is not None
        plain = fr.encode(frame)
        record = bytearray(RECORD_HEADER.size + len(plain) + TAG_SIZE)
        RECORD_HEADER.pack_into(record, 0, len(plain) + TAG_SIZE)
        self.sealer.seal_into(plain, memoryview(record)[RECORD_HEADER.size :])
        self.channel.write(record)

    def write_reply(self, frame: fr.Frame) -> None:
        """Write a small reply from the reader task; tolerant of a dying connection."""
        if self.closed:
            return
        try:
            self.write(frame)
        except (OSError, RuntimeError) as exc:
            log.debug("reply not sent: %r", exc)

    def check_unsent(self) -> None:
        """Raise if the peer left more than :data:`MAX_UNSENT` bytes unread (the reader
        calls this after each frame: the replies it writes never wait, 12.11).

        Raises:
            ProtocolViolation: the peer sends but does not read.
        """
        if self.channel is not None and self.channel.unsent() > MAX_UNSENT:
            self.overflowed = True
            raise ProtocolViolation(
                f"the peer left more than {MAX_UNSENT >> 20} MiB of our replies unread while"
                " it kept sending, which would hold this side's memory without bound: the"
                " session was ended (the peer is not reading; send again with an rdv peer)"
            )

    async def drain(self) -> None:
        """Wait for the channel's flow control (see :meth:`Channel.drain`).

        Raises:
            ConnectionLost: the conn is gone; once the session has ended, with the
                session's reason: the peer's close was read and the session closed the
                conn under a file being sent, whose next drain said "the peer hung up"
                (``rdv send``'s last line, after the peer said it was stopped).
        """
        assert self.channel is not None
        try:
            await self.channel.drain()
        except ConnectionLost:
            if self.closed:
                raise self._error or ConnectionLost(
                    f"{SESSION_ENDED}: {self._close_reason}"
                ) from None
            raise
