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
import errno
import io
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidTag

from rdv_core.conn import Conn
from rdv_core.events import (
    ChatReceived,
    ChatSent,
    Clock,
    Event,
    EventCallback,
    FileAccepted,
    FileCompleted,
    FileFailed,
    FileOffered,
    FileProgress,
    FileRejected,
    SessionClosed,
    SessionEstablished,
    TransferResumed,
)
from rdv_core.session import frames as fr
from rdv_core.session.channel import Channel, StreamChannel, open_channel
from rdv_core.session.codes import Code, parse_code
from rdv_core.session.crypto import SESSION_VERSION, TAG_SIZE, Opener, Sealer, exchange_keys
from rdv_core.session.errors import (
    CodeMismatch,
    ConnectionLost,
    PeerError,
    ProtocolViolation,
    SessionError,
    TamperedError,
    TransferFailed,
    TransferRejected,
    UnsafeName,
)
from rdv_core.session.files import (
    DIGEST,
    Hasher,
    IncomingFile,
    LocalFile,
    collect,
    hash_prefix,
    new_hasher,
)

log = logging.getLogger("rdv.session")

#: File bytes per data frame. 256 KiB keeps chat latency low on slow links (a chat
#: line waits behind at most about one chunk) while per-frame costs stay negligible.
DEFAULT_CHUNK = 256 * 1024
#: Progress events and acks per transfer: at most one per this many seconds.
PROGRESS_INTERVAL = 0.1
#: Encoded bytes of one offer frame at most (a huge folder is offered in several batches,
#: each one answered on its own), safely under the control frame bound.
OFFER_BYTES = fr.MAX_CONTROL_BODY * 3 // 4
#: Offers the peer may have waiting for an answer at once (each holds a task).
MAX_OPEN_OFFERS = 16
#: Seconds for the key exchange and hello.
HANDSHAKE_TIMEOUT = 30.0
#: Seconds close() waits for the peer to see our ``close`` before hanging up.
CLOSE_TIMEOUT = 5.0

Direction = Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class IncomingOffer:
    """Files the peer offers; the ``on_offer`` callback decides about all of them."""

    batch: int
    files: tuple[fr.OfferedFile, ...]

    @property
    def total_size(self) -> int:
        """Sum of the offered sizes in bytes."""
        return sum(f.size for f in self.files)


OfferCallback = Callable[[IncomingOffer], Awaitable[bool]]


@dataclass(slots=True)
class TransferResult:
    """How one file ended (both directions).

    Attributes:
        path: Where the receiver stored the verified file (receiver side only).
        resumed_from: Bytes that were already at the receiver when this run started.
    """

    transfer_id: int
    direction: Direction
    name: str
    size: int
    ok: bool
    digest: str = ""
    reason: str = ""
    path: Path | None = None
    resumed_from: int = 0


@dataclass(slots=True)
class _Progress:
    """Throttled progress of one transfer."""

    total: int
    start_bytes: int
    started: float = field(default_factory=time.monotonic)
    last_emit: float = 0.0

    def due(self, done: int) -> bool:
        now = time.monotonic()
        if done >= self.total or now - self.last_emit >= PROGRESS_INTERVAL:
            self.last_emit = now
            return True
        return False

    def rate(self, done: int) -> float:
        elapsed = time.monotonic() - self.started
        return (done - self.start_bytes) / elapsed if elapsed > 0 else 0.0


@dataclass(slots=True)
class _Outgoing:
    local: LocalFile
    transfer_id: int
    result: asyncio.Future[TransferResult]
    offset: int = 0
    acked: int = 0
    failed: str = ""
    progress: _Progress | None = None


@dataclass(slots=True)
class _Incoming:
    file: IncomingFile
    progress: _Progress
    failed: str = ""


class Session:
    """One encrypted session between two rdv peers over a connected stream pair.

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
        if not 1 <= chunk_size <= fr.MAX_DATA_PAYLOAD:
            raise ValueError(f"chunk_size must be in 1..{fr.MAX_DATA_PAYLOAD}")
        self._streams = (reader, writer)
        self._channel: Channel = StreamChannel(reader, writer)
        self._code = code if isinstance(code, Code) else parse_code(code)
        self._is_dialer = is_dialer
        self._on_event = on_event
        self.on_offer: OfferCallback | None = on_offer
        self.download_dir = download_dir
        self.is_relay = is_relay
        self.peer_addr = peer_addr
        self.chunk_size = chunk_size
        self.handshake_timeout = handshake_timeout
        self._clock = clock or Clock()
        self._agent = agent
        self.peer_agent = ""
        self._sealer: Sealer | None = None
        self._opener: Opener | None = None
        self._plain = bytearray(fr.MAX_PLAINTEXT)
        self._reader_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self._closing = False
        self.close_reason = ""
        self.error: SessionError | None = None
        self._next_id = 1
        self._next_batch = 1
        self._outgoing: dict[int, _Outgoing] = {}
        self._incoming: dict[int, _Incoming] = {}
        self._answers: dict[int, asyncio.Future[fr.Accept | fr.Reject]] = {}
        self._open_offers: set[int] = set()
        self._claimed_ids: set[int] = set()
        #: Results of every incoming file, in completion order.
        self.received: list[TransferResult] = []
        #: The rdv conn underneath, when opened by :func:`connect_session` (else None).
        self.conn: Conn | None = None

    # ----- public API

    @property
    def closed(self) -> bool:
        """True once the session has ended (cleanly or not)."""
        return self._closed.is_set()

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

    async def send_paths(self, paths: Sequence[Path | str]) -> list[TransferResult]:
        """Offer files and folders; send what the receiver accepts; wait for its verdicts.

        Returns when the receiver verified every file.

        Raises:
            TransferRejected: the receiver declined.
            TransferFailed: some files failed (each one also has a FileFailed event).
            SessionError: the session ended.
            FileNotFoundError, ValueError, UnsafeName: bad local paths (nothing is sent).
        """
        self._check_open()
        local = await asyncio.to_thread(collect, [Path(p) for p in paths])
        results: list[TransferResult] = []
        for batch in _batches(local):
            results += await self._send_batch(batch)
        failures = [(r.name, r.reason) for r in results if not r.ok]
        if failures:
            raise TransferFailed(failures)
        return results

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
        record = bytearray(fr.RECORD_HEADER.size + len(plain) + TAG_SIZE)
        fr.RECORD_HEADER.pack_into(record, 0, len(plain) + TAG_SIZE)
        self._sealer.seal_into(plain, memoryview(record)[fr.RECORD_HEADER.size :])
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

    # ----- receiving files

    def _admit_offer(self, offer: fr.Offer) -> str | None:
        """Protocol checks, in the reader task; returns why to refuse it, or None.

        Raises:
            ProtocolViolation: reused transfer ids or batch, too many open offers.
        """
        if len(self._open_offers) >= MAX_OPEN_OFFERS:
            raise ProtocolViolation(f"more than {MAX_OPEN_OFFERS} unanswered offers")
        if offer.batch in self._open_offers:
            raise ProtocolViolation(f"offer {offer.batch} sent twice")
        ids = [f.id for f in offer.files]
        if len(set(ids)) != len(ids) or not self._claimed_ids.isdisjoint(ids):
            raise ProtocolViolation("offer reuses a transfer id")
        self._claimed_ids.update(ids)
        self._open_offers.add(offer.batch)
        return self._check_offer(offer)

    async def _answer_offer(self, offer: fr.Offer, refusal: str | None) -> None:
        try:
            await self._answer_offer_checked(offer, refusal)
        finally:
            self._open_offers.discard(offer.batch)

    async def _answer_offer_checked(self, offer: fr.Offer, refusal: str | None) -> None:
        incoming = IncomingOffer(offer.batch, offer.files)
        if refusal is None:
            for f in offer.files:
                self._emit(FileOffered(self._clock(), f.id, "in", f.path, f.size))
            accepted = False
            if self.download_dir is None:
                refusal = "this peer does not receive files"
            elif self.on_offer is None:
                refusal = "declined by the receiver"
            else:
                try:
                    accepted = await self.on_offer(incoming)
                except Exception as exc:
                    log.exception("the offer callback failed")
                    refusal = f"the receiver could not decide ({exc!r})"
                if not accepted and refusal is None:
                    refusal = "declined by the receiver"
        if refusal is not None or self.closed:
            reason = refusal or "session closed"
            log.info("offer %d rejected: %s", offer.batch, reason)
            self._write_reply(fr.Reject(offer.batch, reason))
            for f in offer.files:
                self._emit(FileRejected(self._clock(), f.id, "in", reason))
            return
        assert self.download_dir is not None
        offsets: list[tuple[int, int]] = []
        failed: list[tuple[int, str]] = []
        for f in offer.files:
            file = IncomingFile(self.download_dir, f.id, f.path, f.size, f.mtime_ns)
            try:
                offset = await asyncio.to_thread(file.prepare)
            except (OSError, UnsafeName) as exc:
                reason = _describe_os_error(exc, f"cannot store {f.path}")
                failed.append((f.id, reason))
                self.received.append(TransferResult(f.id, "in", f.path, f.size, False, "", reason))
                self._emit(FileFailed(self._clock(), f.id, "in", f.path, reason))
                continue
            if self.closed:
                file.close()
                return
            self._incoming[f.id] = _Incoming(file, _Progress(f.size, offset))
            offsets.append((f.id, offset))
        self._write_reply(fr.Accept(offer.batch, tuple(offsets), tuple(failed)))
        for id_, offset in offsets:
            self._emit(FileAccepted(self._clock(), id_, "in", offset))
            if offset:
                name = self._incoming[id_].file.name
                self._emit(TransferResumed(self._clock(), id_, "in", name, offset))

    def _check_offer(self, offer: fr.Offer) -> str | None:
        """Why an offer must be refused outright (unsafe or doubled names), or None."""
        names: set[str] = set()
        for f in offer.files:
            try:
                IncomingFile.check_name(f.path)
            except UnsafeName as exc:
                return f"unsafe name {f.path!r}: {exc}"
            if f.path in names:
                return f"the offer names {f.path!r} twice"
            names.add(f.path)
        return None

    def _on_data(self, frame: fr.Data) -> None:
        state = self._incoming.get(frame.id)
        if state is None:
            raise ProtocolViolation(f"data for unknown transfer {frame.id}")
        if state.failed:
            return  # the sender has not seen our fail yet: drop what is in flight
        file = state.file
        try:
            file.write(frame.payload)  # type: ignore[arg-type]
        except (OSError, ValueError) as exc:
            reason = _describe_os_error(exc, f"cannot write {file.name}")
            self._fail_incoming(state, reason, tell_sender=True)
            return
        if state.progress.due(file.received):
            self._write_reply(fr.Ack(frame.id, file.received))
            self._emit_progress(frame.id, "in", file.received, state.progress)

    def _on_done(self, id_: int, digest: str, algorithm: str) -> None:
        state = self._incoming.get(id_)
        if state is None:
            raise ProtocolViolation(f"done for unknown transfer {id_}")
        if state.failed:
            return
        file = state.file
        try:
            if algorithm != DIGEST:
                file.close()  # the data may be fine: keep the partial file
                ok, ours = False, ""
                reason = f"the sender's digest is {algorithm!r}; this receiver checks {DIGEST}"
            else:
                ok, ours, reason = file.finish(digest)
        except OSError as exc:
            ok, ours, reason = False, "", _describe_os_error(exc, f"cannot finish {file.name}")
        del self._incoming[id_]
        self._write_reply(fr.Ack(id_, file.received))
        self._write_reply(fr.Result(id_, ok, ours, reason))
        result = TransferResult(
            id_, "in", file.name, file.size, ok, ours, reason, file.path, file.offset
        )
        self.received.append(result)
        if ok:
            self._emit_progress(id_, "in", file.received, state.progress, force=True)
            path = str(file.path or "")
            self._emit(FileCompleted(self._clock(), id_, "in", file.name, file.size, ours, path))
            log.info("received %s (%d bytes, %s %s)", file.name, file.size, DIGEST, ours)
        else:
            self._emit(FileFailed(self._clock(), id_, "in", file.name, reason))

    def _fail_incoming(self, state: _Incoming, reason: str, *, tell_sender: bool) -> None:
        state.failed = reason
        file = state.file
        file.close()
        kept = f"; partial file kept ({file.received} bytes) to resume" if file.received else ""
        full = reason + kept
        if tell_sender:
            self._write_reply(fr.Fail(file.transfer_id, "receiver", full))
        self.received.append(
            TransferResult(file.transfer_id, "in", file.name, file.size, False, "", full)
        )
        self._emit(FileFailed(self._clock(), file.transfer_id, "in", file.name, full))
        log.warning("receiving %s failed: %s", file.name, full)

    # ----- sending files

    async def _send_batch(self, local: list[LocalFile]) -> list[TransferResult]:
        loop = asyncio.get_running_loop()
        outgoing: list[_Outgoing] = []
        for item in local:
            out = _Outgoing(item, self._next_id, loop.create_future())
            self._next_id += 1
            self._outgoing[out.transfer_id] = out
            outgoing.append(out)
        batch = self._next_batch
        self._next_batch += 1
        answer_future: asyncio.Future[fr.Accept | fr.Reject] = loop.create_future()
        self._answers[batch] = answer_future
        offered = tuple(
            fr.OfferedFile(o.transfer_id, o.local.name, o.local.size, o.local.mtime_ns)
            for o in outgoing
        )
        self._check_open()
        self._write(fr.Offer(batch, offered))
        for o in outgoing:
            self._emit(FileOffered(self._clock(), o.transfer_id, "out", o.local.name, o.local.size))
        try:
            await self._drain()
            answer = await answer_future
        except BaseException:
            for o in outgoing:
                self._outgoing.pop(o.transfer_id, None)
            raise
        if isinstance(answer, fr.Reject):
            for o in outgoing:
                self._outgoing.pop(o.transfer_id, None)
                self._emit(FileRejected(self._clock(), o.transfer_id, "out", answer.reason))
            raise TransferRejected([(o.local.name, answer.reason) for o in outgoing])
        by_id = {o.transfer_id: o for o in outgoing}
        for id_, reason in answer.failed:
            if id_ in by_id:
                self._finish_outgoing(by_id[id_], False, "", f"receiver: {reason}")
        for id_, offset in answer.offsets:
            accepted = by_id.get(id_)
            if accepted is None:
                raise ProtocolViolation(f"accept names transfer {id_} that was not offered")
            self._emit(FileAccepted(self._clock(), id_, "out", offset))
            await self._stream(accepted, offset)
        return [await o.result for o in outgoing]

    async def _stream(self, out: _Outgoing, offset: int) -> None:
        """Send one file from ``offset``, then ``done`` with the whole file's digest."""
        local = out.local
        id_ = out.transfer_id
        if offset > local.size:
            self._write(fr.Fail(id_, "sender", "the receiver holds more bytes than the file has"))
            self._finish_outgoing(out, False, "", "receiver holds a longer partial file")
            return
        out.offset = out.acked = offset
        out.progress = _Progress(local.size, offset)
        try:
            handle = await asyncio.to_thread(io.FileIO, local.path, "rb")
        except OSError as exc:
            self._sender_failed(out, _describe_os_error(exc, f"cannot read {local.path}"))
            return
        with handle:
            try:
                info = os.fstat(handle.fileno())
                if info.st_size != local.size or max(0, info.st_mtime_ns) != local.mtime_ns:
                    raise OSError(f"{local.path} changed since it was offered")
                if offset:
                    self._emit(TransferResumed(self._clock(), id_, "out", local.name, offset))
                    hasher = await asyncio.to_thread(hash_prefix, local.path, offset)
                    handle.seek(offset)
                else:
                    hasher = new_hasher()
                await self._stream_data(out, handle, hasher)
            except SessionError:
                raise
            except OSError as exc:
                self._sender_failed(out, _describe_os_error(exc, f"cannot read {local.path}"))
                return
        if not out.failed and not self.closed:
            self._write(fr.Done(id_, hasher.hexdigest(), DIGEST))
            await self._drain()

    async def _stream_data(self, out: _Outgoing, handle: io.RawIOBase, hasher: Hasher) -> None:
        """The data loop: read into a reused buffer, hash, seal into a fresh record, write.

        One thread on purpose: worker threads for reading and hashing (both release the
        GIL) were measured slower on the 2-core project machine, where both peers keep
        the cores busy: the hand-offs and the data moving between cores' caches cost
        more than the overlap gains.
        """
        sealer = self._sealer
        assert sealer is not None
        header = fr.DATA_HEADER
        plain = bytearray(header + self.chunk_size)
        plain[0] = fr.FrameType.DATA
        plain[1:header] = out.transfer_id.to_bytes(4, "big")
        view = memoryview(plain)
        left = out.local.size - out.offset
        while left and not out.failed:
            self._check_open()
            n = handle.readinto(view[header : header + min(left, self.chunk_size)])
            if not n:
                raise OSError(f"{out.local.path} shrank while sending")
            hasher.update(view[header : header + n])
            # A fresh record each time: the transport may keep a reference to it.
            record = bytearray(fr.RECORD_HEADER.size + header + n + TAG_SIZE)
            fr.RECORD_HEADER.pack_into(record, 0, header + n + TAG_SIZE)
            sealer.seal_into(view[: header + n], memoryview(record)[fr.RECORD_HEADER.size :])
            # A memoryview: the transport slices what the kernel did not take without a copy.
            self._channel.write(memoryview(record))
            left -= n
            await self._drain()

    def _sender_failed(self, out: _Outgoing, reason: str) -> None:
        if not self.closed:
            self._write_reply(fr.Fail(out.transfer_id, "sender", reason))
        self._finish_outgoing(out, False, "", reason)

    def _on_ack(self, id_: int, received: int) -> None:
        out = self._outgoing.get(id_)
        if out is None or out.progress is None:
            return  # an ack racing a finished transfer
        out.acked = received
        if out.progress.due(received):
            self._emit_progress(id_, "out", received, out.progress)

    def _on_result(self, frame: fr.Result) -> None:
        out = self._outgoing.get(frame.id)
        if out is None:
            raise ProtocolViolation(f"result for unknown transfer {frame.id}")
        self._finish_outgoing(out, frame.ok, frame.digest, frame.reason)

    def _on_fail(self, id_: int, side: str, reason: str) -> None:
        if side == "receiver":
            out = self._outgoing.get(id_)
            if out is not None:
                self._finish_outgoing(out, False, "", f"receiver: {reason}")
            return
        state = self._incoming.pop(id_, None)
        if state is not None and not state.failed:
            self._fail_incoming(state, f"sender: {reason}", tell_sender=False)

    def _finish_outgoing(self, out: _Outgoing, ok: bool, digest: str, reason: str) -> None:
        if out.result.done():
            return
        out.failed = "" if ok else reason or "failed"
        self._outgoing.pop(out.transfer_id, None)
        local = out.local
        result = TransferResult(
            out.transfer_id, "out", local.name, local.size, ok, digest, reason, None, out.offset
        )
        out.result.set_result(result)
        if ok:
            if out.progress is not None:
                self._emit_progress(out.transfer_id, "out", local.size, out.progress, force=True)
            self._emit(
                FileCompleted(self._clock(), out.transfer_id, "out", local.name, local.size, digest)
            )
        else:
            self._emit(FileFailed(self._clock(), out.transfer_id, "out", local.name, out.failed))

    # ----- events and the end

    def _emit(self, event: Event) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(event)
        except Exception:
            log.exception("session event callback failed on %s", event.type)

    def _emit_progress(
        self, id_: int, direction: Direction, done: int, progress: _Progress, force: bool = False
    ) -> None:
        if force:
            progress.last_emit = time.monotonic()
        event = FileProgress(
            self._clock(), id_, direction, done, progress.total, progress.rate(done)
        )
        self._emit(event)

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


def _batches(files: list[LocalFile]) -> list[list[LocalFile]]:
    """Split files into offers whose JSON stays under :data:`OFFER_BYTES`."""
    batches: list[list[LocalFile]] = [[]]
    used = 0
    for item in files:
        # JSON escapes can grow a name up to 6x (\uXXXX); ids, sizes, mtimes take < 64.
        cost = 6 * len(item.name.encode()) + 64
        if batches[-1] and used + cost > OFFER_BYTES:
            batches.append([])
            used = 0
        batches[-1].append(item)
        used += cost
    return [b for b in batches if b]


def _as_session_error(exc: BaseException) -> SessionError:
    if isinstance(exc, SessionError):
        return exc
    if isinstance(exc, TimeoutError):
        return ConnectionLost("the session handshake timed out")
    return ConnectionLost(f"connection lost: {exc}")


def _describe_os_error(exc: BaseException, context: str) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        known = {
            errno.ENOSPC: "disk full",
            errno.EDQUOT: "disk quota exceeded",
            errno.EFBIG: "file too large",
            errno.EACCES: "permission denied",
            errno.EPERM: "permission denied",
            errno.EROFS: "read-only file system",
        }
        summary = known.get(exc.errno or 0)
        return f"{context}: {summary} ({exc.strerror})" if summary else f"{context}: {exc.strerror}"
    return f"{context}: {exc}"
