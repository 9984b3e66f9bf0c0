"""An end-to-end encrypted peer session over any connected stream pair: chat and files.

Lifecycle: :meth:`Session.start` runs the key exchange (:mod:`~rdv_core.session._crypto`),
then each side sends its sealed ``hello`` and opens the peer's: a ``hello`` that fails
to open means the peer derived another key, i.e. used another code ("code mismatch",
detected by both sides since both send before they read). Then one reader task
dispatches incoming frames while callers send chat and files, full duplex.

The session is made of parts it owns, each with one job: the :class:`Outbox` seals
frames out (and says whether the session still takes them), :class:`Outgoing` sends
files, :class:`Incoming` receives them. The session itself holds the handshake, the
reader that dispatches the peer's frames to those parts, chat, and the end.

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
import time
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Literal

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
from rdv_core.session._bundle import FEATURE as BUNDLE_FEATURE
from rdv_core.session._bundle import Bundle
from rdv_core.session._channel import PEER_HUNG_UP, Channel, StreamChannel, open_channel
from rdv_core.session._codes import Code, parse_code
from rdv_core.session._crypto import SESSION_VERSION, Opener, exchange_keys
from rdv_core.session._diagnosis import FEATURE as DIAGNOSIS_FEATURE
from rdv_core.session._diagnosis import DiagnosisExchange
from rdv_core.session._errors import (
    CodeMismatch,
    ConnectionLost,
    PeerError,
    ProtocolViolation,
    SessionError,
    TamperedError,
    connection_lost,
)
from rdv_core.session._files import LocalFile
from rdv_core.session._incoming import MIN_MEAN_FRAME, Incoming, OfferCallback
from rdv_core.session._outbox import Outbox
from rdv_core.session._outgoing import PIPELINE_FEATURE, Outgoing
from rdv_core.session._pipeline import PlainBuffers
from rdv_core.session._record import MAX_DATA_PAYLOAD, MAX_PLAINTEXT
from rdv_core.session._relay_check import CHECK_MAX_S, relay_gone, relay_lost_text
from rdv_core.session._transfers import SESSION_ENDED, EventSink, TransferResult

log = logging.getLogger("rdv.session")

#: File bytes per data frame. 256 KiB keeps chat latency low on slow links (a chat
#: line waits behind at most about one chunk) while per-frame costs stay negligible;
#: 1 MiB records measured no faster here without worker threads (docs/notes: i14b).
DEFAULT_CHUNK = 256 * 1024
#: What our ``hello`` announces: "pipeline" says this receiver opens files lazily and
#: takes offers ahead of the batch being streamed (docs/PROTOCOL.md section 12.12);
#: "bundle" that it takes small files in bundles (section 12.13).
FEATURES = ("files", "chat", DIAGNOSIS_FEATURE, PIPELINE_FEATURE, BUNDLE_FEATURE)
#: Longest run of the reader (and of a sender of small files) without letting the rest
#: of the loop in: a UI on the same loop stays responsive during a burst of small files.
YIELD_S = 0.01
#: Seconds for the key exchange and hello.
HANDSHAKE_TIMEOUT = 30.0
#: Seconds close() waits for the peer to see our ``close`` before hanging up.
CLOSE_TIMEOUT = 5.0


class Session:
    """One encrypted session between two rdv peers over a connected stream pair.

    Sending files (:meth:`send_paths`) is done by its :class:`Outgoing` part, receiving
    them by its :class:`Incoming` part; this class holds the handshake, the reader, chat
    and close.

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
        batched_events: ``on_event`` takes the events that report many files at once
            (:class:`~rdv_core.events.FilesOffered`, ``FilesAccepted``,
            ``FilesCompleted``); without it, it gets a per-file event for each file.
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
        batched_events: bool = False,
    ) -> None:
        if not 2 * MIN_MEAN_FRAME <= chunk_size <= MAX_DATA_PAYLOAD:  # a receiver's bound
            raise ValueError(f"chunk_size must be in {2 * MIN_MEAN_FRAME}..{MAX_DATA_PAYLOAD}")
        self._streams = (reader, writer)
        self._channel: Channel = StreamChannel(reader, writer)
        self._code = code if isinstance(code, Code) else parse_code(code)
        self._is_dialer = is_dialer
        self._events = EventSink(on_event, batched=batched_events)
        self.is_relay = is_relay
        self.peer_addr = peer_addr
        self.handshake_timeout = handshake_timeout
        self._clock = clock or Clock()
        self._agent = agent
        self.peer_agent = ""
        self._opener: Opener | None = None
        self._plains = PlainBuffers(MAX_PLAINTEXT)
        self._reader_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self.close_reason = ""
        self.error: SessionError | None = None
        # The parts get what they need and no reference to the session, so that nothing
        # holds a dropped session alive (no reference cycle).
        self._outbox = Outbox()
        #: What our side reads of an end we asked for (:meth:`close`'s ``ours``).
        self._our_close_reason = "closed"
        emit = self._events.emit
        self._outgoing = Outgoing(self._outbox, emit, self._clock, chunk_size=chunk_size)
        self._incoming = Incoming(
            self._outbox,
            emit,
            self._clock,
            on_offer=on_offer,
            download_dir=download_dir,
            plains=self._plains,
        )
        #: The rdv conn underneath, when opened by :func:`connect_session` (else None).
        self.conn: Conn | None = None
        #: Doctor reports and race events, both ways (docs/PROTOCOL.md section 15.5).
        self.diagnosis = DiagnosisExchange(self._outbox)

    # ----- settings and results, kept by the part they belong to

    @property
    def on_offer(self) -> OfferCallback | None:
        """Decides about incoming offers; without it, offers are declined."""
        return self._incoming.on_offer

    @on_offer.setter
    def on_offer(self, callback: OfferCallback | None) -> None:
        self._incoming.on_offer = callback

    @property
    def download_dir(self) -> Path | None:
        """Where received files go; without it, offers are declined."""
        return self._incoming.download_dir

    @download_dir.setter
    def download_dir(self, folder: Path | None) -> None:
        self._incoming.download_dir = folder

    @property
    def chunk_size(self) -> int:
        """File bytes per data frame."""
        return self._outgoing.chunk_size

    @chunk_size.setter
    def chunk_size(self, size: int) -> None:
        self._outgoing.chunk_size = size

    @property
    def received(self) -> list[TransferResult]:
        """Results of every incoming file, in completion order."""
        return self._incoming.received

    @property
    def closed(self) -> bool:
        """True once the session has ended (cleanly or not)."""
        return self._closed.is_set()

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
                sealer, self._opener = await exchange_keys(
                    self._channel, self._code, is_dialer=self._is_dialer
                )
                self._outbox.open(self._channel, sealer)
                self._outbox.write(fr.Hello(SESSION_VERSION, self._agent, FEATURES))
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
                self._outgoing.pipeline = PIPELINE_FEATURE in hello.features
                self._outgoing.bundles = BUNDLE_FEATURE in hello.features
                self.diagnosis.peer_supports = DIAGNOSIS_FEATURE in hello.features
        except (SessionError, TimeoutError, OSError) as exc:
            error = _as_session_error(exc)
            self._end(error)
            raise error from exc
        established = SessionEstablished(
            self._clock(), self.is_relay, self.peer_addr, SESSION_VERSION
        )
        self._events.emit(established)
        log.info("session established (%s)", "relay" if self.is_relay else "p2p")
        self._reader_task = asyncio.create_task(self._read_loop(), name="rdv-session-reader")

    async def send_chat(self, text: str) -> None:
        """Send a chat message (at most 16 KiB of UTF-8).

        Raises:
            SessionError: the session is closed.
            FrameError: the message is too long.
        """
        self._outbox.check_open()
        self._outbox.write(fr.Chat(text))
        self._events.emit(ChatSent(self._clock(), text))
        await self._channel.drain()

    async def send_paths(self, paths: Sequence[Path | str]) -> list[TransferResult]:
        """Offer files and folders; send what the receiver accepts; wait for its verdicts.

        Returns when the receiver verified every file.

        Raises:
            TransferRejected: the receiver declined.
            TransferFailed: some files failed (each one also has a FileFailed event).
            SessionError: the session ended.
            FileNotFoundError, ValueError, UnsafeName: bad local paths (nothing is sent).
        """
        return await self._outgoing.send_paths(paths)

    async def send_files(self, files: Sequence[LocalFile]) -> list[TransferResult]:
        """:meth:`send_paths` for files already listed by :func:`collect` (not again).

        Raises:
            The errors of :meth:`send_paths` (a file gone since fails on its own).
        """
        try:
            return await self._outgoing.send_files(files)
        except ConnectionLost:
            # A write met the end first; the reader names it (a relay server that went
            # away: _who_ended), a moment later: that is the reason to give.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CHECK_MAX_S + 1):
                    await self._closed.wait()
            if self.error is not None:
                raise self.error from None
            raise

    def cancel_transfer(self, direction: Literal["in", "out"], transfer_id: int) -> str | None:
        """Stop one file (``out``: one we send; ``in``: one we receive), the session and
        the other files go on; the peer reads "cancelled by the peer" (docs/PROTOCOL.md
        12.14). Returns None, or why it cannot be cancelled (it ended, all of it is sent).
        """
        if direction == "out":
            return self._outgoing.cancel(transfer_id)
        return self._incoming.cancel(transfer_id)

    async def wait_closed(self) -> str:
        """Wait until the session ends; return why (``closed`` or ``closed by peer`` if clean)."""
        await self._closed.wait()
        await self._incoming.writers_stopped()  # kept partial files are complete on return
        return self.close_reason

    async def close(self, reason: str = "closed", *, ours: str | None = None) -> None:
        """End the session cleanly: tell the peer, let it hang up first, release everything.

        ``reason`` is what the peer reads; ``ours`` what this side's own files fail with
        and :attr:`close_reason` says (default: ``reason``): ``rdv receive`` stopped by
        SIGTERM tells the sender "the peer was stopped (SIGTERM)" and reads "stopped
        (SIGTERM)" itself.
        """
        if self.closed:
            await self._incoming.writers_stopped()
            return
        ours = reason if ours is None else ours
        self._our_close_reason = ours
        if self._outbox.started and not self._outbox.closing:
            self._outbox.closing = True
            try:
                self._outbox.write(fr.Close(reason))
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self._channel.drain()
                    if self._reader_task is not None:
                        await asyncio.shield(self._reader_task)
            except (OSError, TimeoutError, SessionError) as exc:
                log.debug("close: %r", exc)
        self._end(None, ours)
        if self._reader_task is not None and not self._reader_task.done():
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        await self._incoming.writers_stopped()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ----- frames in

    async def _read_frame(self) -> fr.Frame:
        assert self._opener is not None
        # A buffer first: the record's view is valid only until the channel reads again.
        plain = self._plains.current or await self._plains.ready()
        ciphertext = await self._channel.read_record()
        try:
            size = self._opener.open_into(ciphertext, memoryview(plain))
        except InvalidTag:
            raise TamperedError(
                "a frame failed authentication: the data was corrupted or tampered with"
            ) from None
        return fr.decode(memoryview(plain)[:size])

    async def _read_loop(self) -> None:
        error: SessionError | None = None
        reason = "closed by peer"
        try:
            turn = time.monotonic()
            while True:
                frame = await self._read_frame()
                if isinstance(frame, fr.Close):
                    reason = "closed by peer" if frame.reason == "closed" else frame.reason
                    break
                if isinstance(frame, fr.Done):
                    await self._incoming.settle(frame.id)  # a big file's writes, first
                waiting = self._dispatch(frame)
                self._outbox.check_unsent()  # replies never wait: a peer must read them
                if waiting is not None:
                    await waiting  # disk work to finish first (bounded memory: 12.13)
                if time.monotonic() - turn > YIELD_S:
                    # A full buffer of small files' frames is read without awaiting:
                    # let the app (and our own sender) in now and then.
                    await asyncio.sleep(0)
                    turn = time.monotonic()
        except ConnectionLost as exc:
            if self._outbox.closing:
                # The peer hung up on our Close: the end is ours, in our words (it read
                # "closed" and the reason a stopped rdv receive gave was lost).
                reason = self._our_close_reason
            else:
                error = exc  # who ended it is asked below, out of this handler
        except SessionError as exc:
            error = exc
            if not isinstance(exc, PeerError):
                self._outbox.write_reply(fr.Error(str(exc)))
                with contextlib.suppress(OSError, TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._channel.drain()
        except Exception as exc:  # a bug must still end the session and release its waiters
            log.exception("session reader failed")
            error = SessionError(f"internal error: {exc!r}")
        if isinstance(error, ConnectionLost):
            # Not inside the handler above: an error there would escape the handlers of
            # its own try, and the session would never end (wait_closed hung forever).
            try:
                error = await self._who_ended(error)
            except Exception:
                log.exception("relay check failed")
        self._end(error, reason)

    async def _who_ended(self, exc: ConnectionLost) -> ConnectionLost:
        """``exc``, or on a relay whose server no longer answers, that it went away."""
        conn = self.conn
        if conn is None or not conn.is_relay:
            return exc  # direct: the server carries nothing
        why = await relay_gone(conn.remote_addr)
        if why is not None:
            return ConnectionLost(relay_lost_text(conn.remote_addr, why))
        # The server still answers: it ended the pair because the peer's conn ended
        # (docs/PROTOCOL.md section 8). How ours was cut is the server's timing, not news:
        # a FIN after the peer's last whole record, a FIN inside one (the peer died
        # mid-write), or a reset (the server closed our conn with our acks unread). A
        # killed sender read as any of the three, at random ("connection lost mid-frame").
        return ConnectionLost(PEER_HUNG_UP)

    def _dispatch(self, frame: fr.Frame) -> asyncio.Future[None] | None:
        """Hand one of the peer's frames to the part it is for; a future to await
        before reading on, when that part has too much work in hand."""
        match frame:
            case fr.Data():
                self._incoming.on_data(frame)
            case Bundle():
                return self._incoming.on_bundle(frame)
            case fr.Bundled():
                self._outgoing.on_bundled(frame)
            case fr.Ack(id_, received):
                self._outgoing.on_ack(id_, received)
            case fr.Chat(text):
                self._events.emit(ChatReceived(self._clock(), text))
            case fr.Offer():
                self._spawn(self._incoming.answer(frame, self._incoming.admit(frame)))
            case fr.Accept() | fr.Reject():
                self._outgoing.on_answer(frame)
            case fr.Done(id_, digest, algorithm):
                self._incoming.on_done(id_, digest, algorithm)
            case fr.Result():
                self._outgoing.on_result(frame)
            case fr.Fail(id_, "receiver", reason, cancelled):
                self._outgoing.on_receiver_failed(id_, reason, cancelled)  # one of our sends
            case fr.Fail(id_, _, reason, cancelled):
                self._incoming.on_sender_failed(id_, reason, cancelled)  # one of our receives
            case fr.Error(message):
                raise PeerError(f"the peer reported: {message}")
            case fr.Hello():
                raise ProtocolViolation("unexpected hello after the handshake")
            case fr.Diagnosis(body):
                self.diagnosis.on_frame(body)
        return None

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----- the end

    def _end(self, error: SessionError | None, reason: str = "closed") -> None:
        """Release everything once; fail whatever is pending; emit SessionClosed."""
        if self._closed.is_set():
            return
        self.error = error
        self.close_reason = str(error) if error else reason
        self._closed.set()
        self._outbox.end(error, self.close_reason)
        failure = error or ConnectionLost(f"session ended ({self.close_reason})")
        self._outgoing.end(failure, f"{SESSION_ENDED}: {self.close_reason}")
        self._incoming.end(f"{SESSION_ENDED}: {self.close_reason}")
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(OSError, RuntimeError):
            self._channel.close()
        if error is not None:
            log.warning("session ended: %s", error)
        self._events.emit(SessionClosed(self._clock(), self.close_reason))


def _as_session_error(exc: BaseException) -> SessionError:
    if isinstance(exc, SessionError):
        return exc
    if isinstance(exc, TimeoutError):
        return ConnectionLost("the session handshake timed out")
    return connection_lost(exc)
