"""An end-to-end encrypted peer session over any connected stream pair: chat and files.

Lifecycle: :meth:`Session.start` runs the key exchange (crypto.py), then each side
sends its sealed ``hello`` and opens the peer's: a ``hello`` that fails to open means
the peer derived another key, i.e. used another code ("code mismatch", detected by
both sides since both send before they read). Then one reader task dispatches
incoming frames while callers send chat and files, full duplex.

Rules that keep it correct:
- Sealing and writing a frame happen with no ``await`` in between, so frames leave
  in nonce order without a lock; bulk senders ``drain()`` after each chunk.
- The reader task never waits on flow control: its replies (acks, results, fails)
  are small and rate-limited, written without ``drain()``. Two peers pushing files
  at each other therefore cannot deadlock.
- An offer is answered in its own task, so a person deciding does not stall chat.
- Transfer ids are chosen by the sender; events tell directions apart with
  ``direction`` (``in`` / ``out``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from pathlib import Path

from cryptography.exceptions import InvalidTag

from rdv_core.client._conn import Conn
from rdv_core.events import (
    ChatReceived,
    ChatSent,
    Clock,
    EventCallback,
    SessionClosed,
    SessionEstablished,
)
from rdv_core.session import _frames as fr
from rdv_core.session._channel import StreamChannel, open_channel
from rdv_core.session._codes import Code, parse_code
from rdv_core.session._crypto import SESSION_VERSION, Opener, exchange_keys
from rdv_core.session._errors import (
    CodeMismatch,
    ConnectionLost,
    PeerError,
    ProtocolViolation,
    SessionError,
    TamperedError,
)
from rdv_core.session._incoming import IncomingSide, OfferCallback
from rdv_core.session._outgoing import OutgoingSide
from rdv_core.session._record import MAX_DATA_PAYLOAD, MAX_PLAINTEXT

log = logging.getLogger("rdv.session")

#: File bytes per data frame. 256 KiB keeps chat latency low on slow links (a chat
#: line waits behind at most about one chunk) while per-frame costs stay negligible.
DEFAULT_CHUNK = 256 * 1024
#: Seconds for the key exchange and hello.
HANDSHAKE_TIMEOUT = 30.0
#: Seconds close() waits for the peer to see our ``close`` before hanging up.
CLOSE_TIMEOUT = 5.0


class Session(IncomingSide, OutgoingSide):
    """One encrypted session between two rdv peers over a connected stream pair.

    Sending files (:meth:`send_paths`) comes from :class:`OutgoingSide`, receiving them
    from :class:`IncomingSide`; this class holds the handshake, the reader, chat and close.

    Args:
        reader: The connection's reader (after rdv's ``CONTINUE``, or any stream).
        writer: The connection's writer.
        code: The shared code (``7-tulip-orbit``), as text or parsed.
        is_dialer: True on exactly one side (the rdv dialer); it picks key directions.
        on_event: Receives every session event (never the code or keys).
        on_offer: Decides about incoming offers; without it, offers are declined.
        download_dir: Where received files go; without it, offers are declined.
        is_relay: Whether the conn goes through the server's relay (for events).
        peer_addr: The peer's address as seen on this conn (for events).
        chunk_size: File bytes per data frame (at most 1 MiB).
        handshake_timeout: Seconds for the key exchange and key confirmation.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        code: str | Code,
        *,
        is_dialer: bool,
        on_event: EventCallback | None = None,
        on_offer: OfferCallback | None = None,
        download_dir: Path | None = None,
        is_relay: bool = False,
        peer_addr: str = "",
        chunk_size: int = DEFAULT_CHUNK,
        clock: Clock | None = None,
        agent: str = "rdv-python",
        handshake_timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        if not 1 <= chunk_size <= MAX_DATA_PAYLOAD:
            raise ValueError(f"chunk_size must be in 1..{MAX_DATA_PAYLOAD}")
        self._streams = (reader, writer)
        self._channel = StreamChannel(reader, writer)
        self._code = code if isinstance(code, Code) else parse_code(code)
        self._is_dialer = is_dialer
        self._on_event = on_event
        self.on_offer = on_offer
        self.download_dir = download_dir
        self.is_relay = is_relay
        self.peer_addr = peer_addr
        self.chunk_size = chunk_size
        self.handshake_timeout = handshake_timeout
        self._clock = clock or Clock()
        self._agent = agent
        self.peer_agent = ""
        self._sealer = None
        self._opener: Opener | None = None
        self._plain = bytearray(MAX_PLAINTEXT)
        self._reader_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self._closing = False
        self.close_reason = ""
        self.error = None
        self._next_id = 1
        self._next_batch = 1
        self._outgoing = {}
        self._incoming = {}
        self._answers = {}
        self._open_offers = set()
        self._claimed_ids = set()
        #: Results of every incoming file, in completion order.
        self.received = []
        #: The rdv conn underneath, when opened by :func:`connect_session` (else None).
        self.conn: Conn | None = None

    # ----- public API

    async def start(self) -> None:
        """Exchange keys, confirm them with ``hello``, start reading.

        Raises:
            CodeMismatch: the peer used a different code.
            ProtocolViolation: the peer is not an rdv session peer, or misbehaved.
            ConnectionLost: the connection ended.
            ConnectionLost: also when no handshake completes within ``handshake_timeout``.
        """
        try:
            async with asyncio.timeout(self.handshake_timeout):
                self._channel = open_channel(*self._streams)
                self._sealer, self._opener = await exchange_keys(
                    self._channel, self._code, is_dialer=self._is_dialer
                )
                self._write(fr.Hello(SESSION_VERSION, self._agent, ("files", "chat")))
                await self._channel.drain()
                try:
                    hello = await self._read_frame()
                except TamperedError:
                    raise CodeMismatch() from None
                if not isinstance(hello, fr.Hello):
                    raise ProtocolViolation("the peer's first frame was not hello")
                if hello.version != SESSION_VERSION:
                    raise ProtocolViolation(f"the peer speaks session version {hello.version}")
                self.peer_agent = hello.agent
        except (SessionError, TimeoutError, OSError) as exc:
            error = _as_session_error(exc)
            self._end(error)
            raise error from exc
        established = SessionEstablished(
            self._clock(), self.is_relay, self.peer_addr, SESSION_VERSION
        )
        self._emit(established)
        log.info("session established (%s)", "relay" if self.is_relay else "p2p")
        self._reader_task = asyncio.create_task(self._read_loop(), name="rdv-session-reader")

    async def send_chat(self, text: str) -> None:
        """Send a chat message (at most 16 KiB of UTF-8).

        Raises:
            SessionError: the session is closed.
            FrameError: the message is too long.
        """
        self._check_open()
        self._write(fr.Chat(text))
        self._emit(ChatSent(self._clock(), text))
        await self._drain()

    async def wait_closed(self) -> str:
        """Wait until the session ends; return why (``closed`` or ``closed by peer`` if clean)."""
        await self._closed.wait()
        return self.close_reason

    async def close(self, reason: str = "closed") -> None:
        """End the session cleanly: tell the peer, let it hang up first, release everything."""
        if self.closed:
            return
        if self._sealer is not None and not self._closing:
            self._closing = True
            try:
                self._write(fr.Close(reason))
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self._channel.drain()
                    if self._reader_task is not None:
                        await asyncio.shield(self._reader_task)
            except (OSError, TimeoutError, SessionError) as exc:
                log.debug("close: %r", exc)
        self._end(None, reason)
        if self._reader_task is not None and not self._reader_task.done():
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ----- frames in

    async def _read_frame(self) -> fr.Frame:
        assert self._opener is not None
        ciphertext = await self._channel.read_record()
        try:
            size = self._opener.open_into(ciphertext, memoryview(self._plain))
        except InvalidTag:
            raise TamperedError(
                "a frame failed authentication: the data was corrupted or tampered with"
            ) from None
        return fr.decode(memoryview(self._plain)[:size])

    async def _read_loop(self) -> None:
        error: SessionError | None = None
        reason = "closed by peer"
        try:
            while True:
                frame = await self._read_frame()
                if isinstance(frame, fr.Close):
                    reason = "closed by peer" if frame.reason == "closed" else frame.reason
                    break
                self._dispatch(frame)
        except ConnectionLost as exc:
            if self._closing:
                reason = "closed"
            else:
                error = exc
        except SessionError as exc:
            error = exc
            if not isinstance(exc, PeerError):
                self._write_reply(fr.Error(str(exc)))
                with contextlib.suppress(OSError, TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._channel.drain()
        except Exception as exc:  # a bug must still end the session and release its waiters
            log.exception("session reader failed")
            error = SessionError(f"internal error: {exc!r}")
        self._end(error, reason)

    def _dispatch(self, frame: fr.Frame) -> None:
        match frame:
            case fr.Data():
                self._on_data(frame)
            case fr.Ack(id_, received):
                self._on_ack(id_, received)
            case fr.Chat(text):
                self._emit(ChatReceived(self._clock(), text))
            case fr.Offer():
                self._spawn(self._answer_offer(frame, self._admit_offer(frame)))
            case fr.Accept(batch) | fr.Reject(batch):
                answer = self._answers.pop(batch, None)
                if answer is None:
                    raise ProtocolViolation(f"answer to an unknown offer {batch}")
                if not answer.done():
                    answer.set_result(frame)
            case fr.Done(id_, digest, algorithm):
                self._on_done(id_, digest, algorithm)
            case fr.Result():
                self._on_result(frame)
            case fr.Fail(id_, side, reason):
                self._on_fail(id_, side, reason)
            case fr.Error(message):
                raise PeerError(f"the peer reported: {message}")
            case fr.Hello():
                raise ProtocolViolation("unexpected hello after the handshake")

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_fail(self, id_: int, side: str, reason: str) -> None:
        """A receiver's ``fail`` ends one of our sends; a sender's, one of our receives."""
        if side == "receiver":
            out = self._outgoing.get(id_)
            if out is not None:
                self._finish_outgoing(out, False, "", f"receiver: {reason}")
            return
        state = self._incoming.pop(id_, None)
        if state is not None and not state.failed:
            self._fail_incoming(state, f"sender: {reason}", tell_sender=False)

    # ----- the end

    def _end(self, error: SessionError | None, reason: str = "closed") -> None:
        """Release everything once; fail whatever is pending; emit SessionClosed."""
        if self._closed.is_set():
            return
        self.error = error
        self.close_reason = str(error) if error else reason
        self._closed.set()
        failure = error or ConnectionLost(f"session ended ({self.close_reason})")
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(failure)
        self._answers.clear()
        for out in list(self._outgoing.values()):
            self._finish_outgoing(out, False, "", f"session ended: {self.close_reason}")
        for state in list(self._incoming.values()):
            if not state.failed:
                self._fail_incoming(state, f"session ended: {self.close_reason}", tell_sender=False)
        self._incoming.clear()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(OSError, RuntimeError):
            self._channel.close()
        if error is not None:
            log.warning("session ended: %s", error)
        self._emit(SessionClosed(self._clock(), self.close_reason))


def _as_session_error(exc: BaseException) -> SessionError:
    if isinstance(exc, SessionError):
        return exc
    if isinstance(exc, TimeoutError):
        return ConnectionLost("the session handshake timed out")
    return ConnectionLost(f"connection lost: {exc}")
