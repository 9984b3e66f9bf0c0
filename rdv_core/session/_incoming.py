"""The receiving side of a session: answering offers, writing file data, verifying it.

An offer is checked in the reader task (ids, batch, names), then answered in its own
task so that a person deciding does not stall chat. Accepted files are written as
they arrive (see :class:`~rdv_core.session._incoming_file.IncomingFile`) and verified against
the sender's digest on ``done``; a failure keeps the partial file to resume.

:class:`Incoming` is owned by a :class:`~rdv_core.session._session.Session`: the
session's reader hands it the sender's frames (``offer``, ``data``, ``done``, a
sender's ``fail``) and runs each answer in a task of the session's; it replies through
the session's :class:`~rdv_core.session._outbox.Outbox` and reports through the
session's event callback.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from rdv_core.events import (
    Clock,
    Event,
    FileCompleted,
    FileFailed,
    FileRejected,
    FilesAccepted,
    FilesCompleted,
    FilesOffered,
    TransferResumed,
)
from rdv_core.session import _bundle, _cancel
from rdv_core.session import _frames as fr
from rdv_core.session._claimed import ClaimedIds
from rdv_core.session._errors import ProtocolViolation, UnsafeName
from rdv_core.session._files import DIGEST, SIDECAR_MIN, no_room_for, size_text
from rdv_core.session._incoming_batch import Job as _Job
from rdv_core.session._incoming_batch import prepare_all, store_all
from rdv_core.session._incoming_file import IncomingFile
from rdv_core.session._outbox import Outbox
from rdv_core.session._pipeline import ChunkWriter, PlainBuffers, use_workers
from rdv_core.session._transfers import Progress, TransferResult, describe_os_error

log = logging.getLogger("rdv.session")

#: Offers the peer may have waiting for an answer at once (each holds a task).
MAX_OPEN_OFFERS = 16
#: Fewest file bytes per data frame, on average over a file's frames, checked every
#: :data:`FRAMES_CHECKED` frames (docs/PROTOCOL.md 12.6): 1-byte frames cost a receiver
#: 6 us each, 5000 times the CPU per byte of 256 KiB frames; at 600 it is 15 times.
#: rdv's smallest chunk is twice this (a file's last frame may be short).
MIN_MEAN_FRAME = 512
FRAMES_CHECKED = 1024
_CPU = ", costing this side thousands of times a normal transfer's CPU: the session was ended"
#: Bundles stored at once (each holds up to 256 KiB of file bytes, in a thread); the
#: reader waits for one to finish before it reads past the next.
BUNDLES_AT_ONCE = 2


#: The reason of an offer the receiver's ``on_offer`` declined (a person said no).
DECLINED = "declined by the receiver"


@dataclass(frozen=True, slots=True)
class IncomingOffer:
    """Files the peer offers; the ``on_offer`` callback decides about all of them."""

    batch: int
    files: tuple[fr.OfferedFile, ...]
    #: The whole send this batch belongs to, when the sender names it (newer senders):
    #: batches with the same ``send.first`` are parts of one send.
    send: fr.SendTotals | None = None

    @property
    def total_size(self) -> int:
        """Sum of the offered sizes in bytes."""
        return sum(f.size for f in self.files)


OfferCallback = Callable[[IncomingOffer], Awaitable[bool]]
#: One file of a bundle to store: the file, its bytes, the sender's raw digest.


@dataclass(slots=True)
class _IncomingTransfer:
    file: IncomingFile
    failed: str = ""
    #: A big file's writer thread (docs/PROTOCOL.md 12.12), from its first data on.
    writer: ChunkWriter | None = None
    #: Bytes handed to the writer so far (from 0, including the offset).
    queued: int = 0
    #: Data frames and their bytes so far, for :data:`MIN_MEAN_FRAME`.
    frames: int = 0
    arrived: int = 0
    #: Throttled progress, made at the first data (a bundled file never needs one).
    _progress: Progress | None = None

    @property
    def progress(self) -> Progress:
        if self._progress is None:
            self._progress = Progress(self.file.size, self.file.offset)
        return self._progress


class Incoming:
    """Files the peer sends to this one (``direction`` ``in``); owned by a :class:`Session`.

    Args:
        outbox: Where its replies go, and whether the session is still open.
        emit: The session's event callback.
        clock: The session's clock, for event times.
        on_offer: Decides about offers; without it, offers are declined.
        download_dir: Where received files go; without it, offers are declined.
    """

    def __init__(
        self,
        outbox: Outbox,
        emit: Callable[[Event], None],
        clock: Clock,
        *,
        on_offer: OfferCallback | None,
        download_dir: Path | None,
        plains: PlainBuffers | None = None,
    ) -> None:
        self._outbox = outbox
        #: The reader's plaintext buffers: a big file's chunks are lent to its writer.
        self._plains = plains
        self._emit = emit
        self._clock = clock
        self.on_offer = on_offer
        self.download_dir = download_dir
        #: Results of every incoming file, in completion order.
        self.received: list[TransferResult] = []
        #: Files accepted and still arriving, by transfer id.
        self._transfers: dict[int, _IncomingTransfer] = {}
        #: Batches of offers not answered yet.
        self._open_offers: set[int] = set()
        #: Every transfer id the peer has offered in this session (ids are never reused),
        #: as ranges: a set grew by 80 bytes per id offered, rejected batches too.
        self._claimed_ids = ClaimedIds()
        #: Every batch number offered in this session, as ranges too (docs/PROTOCOL.md
        #: 12.6: a batch offered twice is a violation, answered or not; only the open
        #: batches were checked, so a peer could reuse one once it was answered).
        self._claimed_batches = ClaimedIds("batch number")
        #: Writer threads told to stop (each closes its partial file when it ends).
        self._stopping: list[ChunkWriter] = []
        #: The checked components of each open offer's names, by batch.
        self._parts: dict[int, list[tuple[str, ...]]] = {}
        #: Bundles being stored, and the reader's wait for room among them.
        self._storing: set[asyncio.Task[None]] = set()
        self._room: asyncio.Future[None] | None = None
        #: Set once the latest offer is decided: offers are answered in their own tasks
        #: (pipelined, docs/PROTOCOL.md 12.12), but decided in the order they came, so
        #: ``on_offer`` (a person's prompt, the app's rows) sees batch 1 before batch 2.
        self._decided: asyncio.Event | None = None
        #: Set when the session ends: stops the threads that hash what is held.
        self._stop = threading.Event()

    # ----- offers

    def admit(self, offer: fr.Offer) -> str | None:
        """Protocol checks, in the reader task; returns why to refuse it, or None.

        Raises:
            ProtocolViolation: reused transfer ids or batch, too many open offers, ids
                scattered over too many ranges (docs/PROTOCOL.md 12.6).
        """
        if len(self._open_offers) >= MAX_OPEN_OFFERS:
            raise ProtocolViolation(f"more than {MAX_OPEN_OFFERS} unanswered offers")
        if offer.batch in self._claimed_batches:
            raise ProtocolViolation(f"offer {offer.batch} sent twice")
        self._claimed_ids.claim(f.id for f in offer.files)
        self._claimed_batches.claim((offer.batch,))
        self._open_offers.add(offer.batch)
        return self._check_offer(offer)

    async def answer(self, offer: fr.Offer, refusal: str | None) -> None:
        """Answer an admitted offer (in its own task): ``reject``, or ``accept`` and prepare."""
        earlier, decided = self._decided, asyncio.Event()
        self._decided = decided
        try:
            await self._answer_checked(offer, refusal, earlier, decided)
        finally:
            decided.set()
            self._open_offers.discard(offer.batch)
            self._parts.pop(offer.batch, None)

    async def _answer_checked(
        self,
        offer: fr.Offer,
        refusal: str | None,
        earlier: asyncio.Event | None,
        decided: asyncio.Event,
    ) -> None:
        incoming = IncomingOffer(offer.batch, offer.files, offer.send)
        if refusal is None and self.download_dir is not None:
            # Before anyone decides (--yes included): what cannot fit is refused.
            # Files failed or cancelled (kept to drop their data in flight) write no more.
            transfers = self._transfers.values()
            pending = sum(t.file.size - t.file.received for t in transfers if not t.failed)
            files = [(f.path, f.size, f.mtime_ns) for f in offer.files]
            refusal = await asyncio.to_thread(no_room_for, self.download_dir, files, pending)
        if earlier is not None:
            await earlier.wait()  # the offer before this one is decided first
        # Every offer is reported, the refused ones too: a receiver whose offer was
        # refused before anyone was asked (no room, an unsafe name) saw "0 of 0 file(s)"
        # and "the session ended without files", never which files or why.
        offered = offer.files
        self._emit(
            FilesOffered(
                self._clock(),
                offer.batch,
                "in",
                tuple(f.id for f in offered),
                tuple(f.path for f in offered),
                tuple(f.size for f in offered),
            )
        )
        if refusal is None:
            accepted = False
            if self.download_dir is None:
                refusal = "this peer does not receive files"
            elif self.on_offer is None:
                refusal = DECLINED
            else:
                try:
                    accepted = await self.on_offer(incoming)
                except Exception as exc:
                    log.exception("the offer callback failed")
                    refusal = f"the receiver could not decide ({exc!r})"
                if not accepted and refusal is None:
                    refusal = DECLINED
        decided.set()
        if refusal is not None or self._outbox.closed:
            reason = refusal or "session closed"
            log.info("offer %d rejected: %s", offer.batch, reason)
            self._outbox.write_reply(fr.Reject(offer.batch, reason))
            for f in offer.files:
                self._emit(FileRejected(self._clock(), f.id, "in", reason))
            return
        assert self.download_dir is not None
        # One thread hop for the whole batch (a hop per file costs more than the work).
        parts = self._parts.pop(offer.batch)
        prepared = await asyncio.to_thread(
            prepare_all, self.download_dir, offer.files, parts, self._stop
        )
        if self._outbox.closed:
            return
        offsets: list[tuple[int, int]] = []
        failed: list[tuple[int, str]] = []
        for f, outcome in zip(offer.files, prepared, strict=True):
            if isinstance(outcome, str):
                failed.append((f.id, outcome))
                self.received.append(TransferResult(f.id, "in", f.path, f.size, False, "", outcome))
                self._emit(FileFailed(self._clock(), f.id, "in", f.path, outcome))
                continue
            self._transfers[f.id] = _IncomingTransfer(outcome)
            offsets.append((f.id, outcome.offset))
        self._outbox.write_reply(fr.Accept(offer.batch, tuple(offsets), tuple(failed)))
        if offsets:
            ids, starts = zip(*offsets, strict=True)
            self._emit(FilesAccepted(self._clock(), offer.batch, "in", ids, starts))
        for id_, offset in offsets:
            if offset:
                name = self._transfers[id_].file.name
                self._emit(TransferResumed(self._clock(), id_, "in", name, offset))

    def _check_offer(self, offer: fr.Offer) -> str | None:
        """Why an offer must be refused outright (unsafe or doubled names), or None."""
        names: set[str] = set()
        parts = self._parts[offer.batch] = []
        for f in offer.files:
            try:
                parts.append(IncomingFile.check_name(f.path))
            except UnsafeName as exc:
                return f"unsafe name {f.path!r}: {exc}"
            if f.path in names:
                return f"the offer names {f.path!r} twice"
            names.add(f.path)
        return None

    # ----- frames from the sender (the session's reader hands them over)

    def on_data(self, frame: fr.Data) -> None:
        """The next bytes of a file: write them; ack and report now and then."""
        state = self._transfers.get(frame.id)
        if state is None:
            raise ProtocolViolation(f"data for unknown transfer {frame.id}")
        state.frames += 1
        state.arrived += len(frame.payload)
        if state.frames % FRAMES_CHECKED == 0 and state.arrived < state.frames * MIN_MEAN_FRAME:
            mean = f"{state.arrived // state.frames} bytes on average, not {MIN_MEAN_FRAME}"
            raise ProtocolViolation(f"the peer sent file data in tiny frames ({mean})" + _CPU)
        if state.failed:
            return  # the sender has not seen our fail yet: drop what is in flight
        file = state.file
        try:
            held = self._write(state, frame.payload)  # type: ignore[arg-type]
        except (OSError, ValueError) as exc:
            reason = describe_os_error(exc, f"cannot write {file.name}")
            self._fail(state, reason, tell_sender=True)
            return
        # A file's last bytes are acked after its done (12.6): no second ack for them.
        if held < file.size and state.progress.due(held):
            self._outbox.write_reply(fr.Ack(frame.id, held))
            self._emit(state.progress.event(self._clock(), frame.id, "in", held))

    def _write(self, state: _IncomingTransfer, payload: memoryview) -> int:
        """Write a chunk (a big file's in its writer thread); the bytes held or queued.

        Raises:
            OSError, ValueError: this or an earlier write failed, or too many bytes.
        """
        file = state.file
        if state.writer is None:
            if self._plains is None or not use_workers(file.size - file.received):
                file.write(payload)
                return file.received
            state.writer = ChunkWriter(file, self._plains.give_back)
            state.queued = file.received
        if state.writer.error is not None:
            raise state.writer.error
        if state.queued + len(payload) > file.size:
            raise ValueError(f"the sender sent more than the offered {file.size} bytes")
        # The chunk lives in the reader's current plaintext buffer: lend it to the writer.
        assert self._plains is not None
        state.writer.put(self._plains.lend(), payload)
        state.queued += len(payload)
        return state.queued

    async def writers_stopped(self) -> None:
        """Wait until stopped writer threads have closed their files (partials are whole)."""
        while self._stopping:
            await self._stopping.pop().stopped()

    async def settle(self, id_: int) -> None:
        """Before a ``done``: wait until a big file's writer has written every chunk."""
        state = self._transfers.get(id_)
        if state is not None and state.writer is not None and not state.failed:
            await state.writer.drained()

    def on_done(self, id_: int, digest: str, algorithm: str) -> None:
        """The sender sent every byte: verify the file, tell the sender the verdict."""
        state = self._transfers.get(id_)
        if state is None:
            raise ProtocolViolation(f"done for unknown transfer {id_}")
        if state.failed:
            return
        file = state.file
        if state.writer is not None and state.writer.error is not None:
            reason = describe_os_error(state.writer.error, f"cannot write {file.name}")
            self._fail(state, reason, tell_sender=True)
            del self._transfers[id_]
            return
        try:
            if algorithm != DIGEST:
                file.close()  # the data may be fine: keep the partial file
                ok, ours = False, ""
                reason = f"the sender's digest is {algorithm!r}; this receiver checks {DIGEST}"
            else:
                ok, ours, reason = file.finish(digest)
        except OSError as exc:
            ok, ours, reason = False, "", describe_os_error(exc, f"cannot finish {file.name}")
        del self._transfers[id_]
        self._outbox.write_reply(fr.Ack(id_, file.received))
        self._outbox.write_reply(fr.Result(id_, ok, ours, reason))
        result = TransferResult(
            id_, "in", file.name, file.size, ok, ours, reason, file.placed, file.offset
        )
        self.received.append(result)
        if ok:
            self._emit(state.progress.event(self._clock(), id_, "in", file.received, force=True))
            path = file.placed
            self._emit(FileCompleted(self._clock(), id_, "in", file.name, file.size, ours, path))
            log.info("received %s (%d bytes, %s %s)", file.name, file.size, DIGEST, ours)
        else:
            self._emit(FileFailed(self._clock(), id_, "in", file.name, reason))

    def on_bundle(self, frame: _bundle.Bundle) -> asyncio.Future[None] | None:
        """Whole small files (docs/PROTOCOL.md 12.13): verify and store each, answer once.

        The files are stored in a thread while the reader goes on (creating files is
        most of a small file's cost); with :data:`BUNDLES_AT_ONCE` bundles being stored,
        returns a future the reader awaits before it reads on (bounded memory).

        Raises:
            ProtocolViolation: a file that is unknown, was not accepted from offset 0,
                is larger than :data:`~rdv_core.session._bundle.MAX_FILE`, or whose size
                is not the offered one.
        """
        jobs: list[_Job] = []
        for item in frame.files:
            state = self._transfers.pop(item.id, None)
            if state is None:
                raise ProtocolViolation(f"bundle names unknown transfer {item.id}")
            file = state.file
            whole = not file.offset and not file.received and len(item.data) == file.size
            if not whole or file.size > _bundle.MAX_FILE:
                raise ProtocolViolation(f"bundle holds transfer {item.id} not as accepted")
            if not state.failed:
                # A copy: the reader's plaintext buffer is reused by the next record.
                jobs.append((file, bytes(item.data), item.digest))
        task = asyncio.ensure_future(self._store_bundle(frame.number, jobs))
        self._storing.add(task)
        task.add_done_callback(self._stored)
        if len(self._storing) < BUNDLES_AT_ONCE:
            return None
        self._room = asyncio.get_running_loop().create_future()
        return self._room

    def _stored(self, task: asyncio.Task[None]) -> None:
        self._storing.discard(task)
        if self._room is not None and not self._room.done():
            self._room.set_result(None)

    async def _store_bundle(self, number: int, jobs: list[_Job]) -> None:
        """Store a bundle's files in a thread, then report each and answer the sender."""
        outcomes = await asyncio.to_thread(store_all, jobs)
        failed: list[tuple[int, str]] = []
        verified: list[tuple[IncomingFile, str]] = []
        clock = self._clock
        for (file, _, _), (ok, text) in zip(jobs, outcomes, strict=True):
            id_, name, size = file.transfer_id, file.name, file.size
            if ok:
                where = file.placed
                self.received.append(TransferResult(id_, "in", name, size, True, text, "", where))
                verified.append((file, text))
            else:
                failed.append((id_, text))
                self.received.append(TransferResult(id_, "in", name, size, False, "", text))
                self._emit(FileFailed(clock(), id_, "in", name, text))
        self._outbox.write_reply(fr.Bundled(number, tuple(failed)))
        if verified:  # one event for the bundle, not one per file
            self._emit(
                FilesCompleted(
                    clock(),
                    "in",
                    tuple(f.transfer_id for f, _ in verified),
                    tuple(f.name for f, _ in verified),
                    tuple(f.size for f, _ in verified),
                    tuple(digest for _, digest in verified),
                    tuple(f.placed for f, _ in verified),
                )
            )

    def on_sender_failed(self, id_: int, reason: str, cancelled: bool = False) -> None:
        """The sender's ``fail``: it cannot read this file, or cancelled it (the session
        goes on)."""
        state = self._transfers.pop(id_, None)
        if state is not None and not state.failed:
            why = _cancel.CANCELLED_BY_PEER if cancelled else f"sender: {reason}"
            self._fail(state, why, tell_sender=False, cancelled=cancelled)

    def cancel(self, id_: int) -> str | None:
        """Stop receiving one file, the others go on (docs/PROTOCOL.md 12.14); None, or
        why it cannot be. Its state stays: data still in flight for it is dropped."""
        state = self._transfers.get(id_)
        if state is None or state.failed:
            return _cancel.ENDED  # settled, or not accepted (yet): the offer is decided first
        self._fail(state, _cancel.CANCELLED, tell_sender=True, cancelled=True)
        return None

    def end(self, reason: str) -> None:
        """The session ended: every file still arriving fails (its partial file is kept)."""
        self._stop.set()  # a thread hashing what is held stops at its next block
        for task in list(self._storing):
            task.cancel()  # its thread finishes the files it has; nobody is told
        for state in list(self._transfers.values()):
            if not state.failed:
                self._fail(state, reason, tell_sender=False)
        self._transfers.clear()

    def _fail(
        self, state: _IncomingTransfer, reason: str, *, tell_sender: bool, cancelled: bool = False
    ) -> None:
        state.failed = reason
        file = state.file
        if state.writer is not None:
            state.writer.abort()  # its thread closes the file (never under a write)
            self._stopping.append(state.writer)
        else:
            file.close()
        # Only a file with a sidecar resumes (SIDECAR_MIN): a smaller one is sent again
        # whole, and "kept to resume" would not be true. Binary units, as everywhere.
        kept = ""
        if file.received and file.size >= SIDECAR_MIN:
            kept = f"; partial file kept ({size_text(file.received)}) to resume"
        full = reason + kept
        if tell_sender:
            self._outbox.write_reply(fr.Fail(file.transfer_id, "receiver", full, cancelled))
        self.received.append(
            TransferResult(file.transfer_id, "in", file.name, file.size, False, "", full)
        )
        self._emit(FileFailed(self._clock(), file.transfer_id, "in", file.name, full, cancelled))
        log.warning("receiving %s failed: %s", file.name, full)
