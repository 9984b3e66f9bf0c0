"""The sending side of a session: offers, file data, resume from the receiver's verified prefix.

A sender offers files in batches (each offer frame stays under
:data:`~rdv_core.session._files.OFFER_BYTES`),
waits for the receiver's ``accept`` naming how many bytes of each file it already
holds, hashes that prefix from disk, streams the rest, and ends each file with
``done`` and the whole file's digest; the receiver's ``result`` settles it.

:class:`Outgoing` is owned by a :class:`~rdv_core.session._session.Session`: it sends
through the session's :class:`~rdv_core.session._outbox.Outbox`, reports through the
session's event callback, and the session's reader hands it the receiver's frames
(``accept``, ``reject``, ``ack``, ``result``, a receiver's ``fail``). Transfer ids and
offer batches are numbered here: the sender chooses them.
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
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
from rdv_core.session._data_out import stream_data
from rdv_core.session._errors import (
    ProtocolViolation,
    SessionError,
    TransferFailed,
    TransferRejected,
)
from rdv_core.session._files import (
    DIGEST,
    LocalFile,
    collect,
    hash_prefix,
    new_hasher,
    offer_batches,
    read_whole,
)
from rdv_core.session._outbox import Outbox
from rdv_core.session._transfers import Progress, TransferResult, describe_os_error

#: Offers sent before the current one is answered, to a receiver that announced
#: :data:`PIPELINE_FEATURE` (it allows 16 unanswered offers: docs/PROTOCOL.md 12.6).
OFFERS_AHEAD = 4
#: Longest run of small files streamed without a drain (the channel corks them) and
#: without letting the rest of the loop in (seconds).
YIELD_S = 0.01
#: The ``hello`` feature of a receiver that opens files lazily, one at a time, and so
#: takes offers ahead (docs/PROTOCOL.md section 12.12).
PIPELINE_FEATURE = "pipeline"


@dataclass(slots=True)
class _OutgoingTransfer:
    local: LocalFile
    transfer_id: int
    result: asyncio.Future[TransferResult]
    offset: int = 0
    acked: int = 0
    failed: str = ""
    progress: Progress | None = None
    #: The whole file's digest (hex), for a file sent in a bundle.
    digest: str = ""
    #: Accepted by the receiver; its ``done`` left (a cancel then comes too late: 12.14).
    accepted: bool = False
    sent: bool = False


@dataclass(slots=True)
class _Batch:
    """One offer of a send: its number, its files, the receiver's answer to come."""

    number: int
    transfers: list[_OutgoingTransfer]
    answer: asyncio.Future[fr.Accept | fr.Reject]


class Outgoing:
    """Files this peer sends (``direction`` ``out``); owned by a :class:`Session`.

    Args:
        outbox: Where its frames go, and whether the session is still open.
        emit: The session's event callback.
        clock: The session's clock, for event times.
        chunk_size: File bytes per data frame.
    """

    def __init__(
        self, outbox: Outbox, emit: Callable[[Event], None], clock: Clock, *, chunk_size: int
    ) -> None:
        self._outbox = outbox
        self._emit = emit
        self._clock = clock
        self.chunk_size = chunk_size
        #: Whether the receiver takes offers ahead (its hello named PIPELINE_FEATURE).
        self.pipeline = False
        #: Whether the receiver takes small files in bundles (docs/PROTOCOL.md 12.13).
        self.bundles = False
        self._packer = _bundle.Packer()
        #: Files of the bundle being packed, and of bundles sent and not answered yet.
        self._packing: list[_OutgoingTransfer] = []
        self._sent_bundles: dict[int, list[_OutgoingTransfer]] = {}
        self._next_id = 1
        self._next_batch = 1
        #: Set when the session ends: stops a thread hashing a file's prefix.
        self._stop = threading.Event()
        #: Files offered and not settled yet, by transfer id.
        self._transfers: dict[int, _OutgoingTransfer] = {}
        #: Offers waiting for the receiver's accept or reject, by batch.
        self._answers: dict[int, asyncio.Future[fr.Accept | fr.Reject]] = {}

    async def send_paths(self, paths: Sequence[Path | str]) -> list[TransferResult]:
        """See :meth:`Session.send_paths`."""
        self._outbox.check_open()
        return await self.send_files(await asyncio.to_thread(collect, [Path(p) for p in paths]))

    async def send_files(self, local: Sequence[LocalFile]) -> list[TransferResult]:
        """See :meth:`Session.send_files`."""
        self._outbox.check_open()
        batches = offer_batches(local)
        totals = fr.SendTotals(self._next_batch, len(local), sum(f.size for f in local))
        # A receiver that announced "pipeline" gets the next offers while the current
        # batch streams (no round trip per batch); an older one gets one at a time, as it
        # opens a descriptor per offered file at accept time (docs/PROTOCOL.md 12.12).
        ahead = OFFERS_AHEAD if self.pipeline else 1
        waiting: deque[_Batch] = deque()
        queued = iter(batches)
        offered: list[_OutgoingTransfer] = []
        try:
            while True:
                while len(waiting) < ahead and (files := next(queued, None)) is not None:
                    batch = self._offer(files, totals)
                    waiting.append(batch)
                    offered += batch.transfers
                await self._outbox.drain()
                if not waiting:
                    break
                batch = waiting.popleft()
                answer = await batch.answer
                if isinstance(answer, fr.Reject):
                    try:
                        await self._rejected(batch, answer, waiting)  # raises TransferRejected
                    except TransferRejected:
                        # The files of the batches accepted before are on their way: wait
                        # for their results. Raised at once, the send closed the session
                        # under them: a receiver whose third batch found no room got 235
                        # of its 481 accepted files and the rest were cut off.
                        earlier = [o.result for o in offered if not o.result.done()]
                        await asyncio.gather(*earlier, return_exceptions=True)
                        raise
                else:
                    await self._stream_batch(batch, answer)
        except BaseException:
            self._packer.take()  # a bundle cut short by the error is never sent
            self._packing = []
            # Offers sent ahead hold the session's end too: taken here, or asyncio printed
            # "Future exception was never retrieved" for each (bench/tui_offer.py).
            for ahead_batch in waiting:
                if ahead_batch.answer.done() and not ahead_batch.answer.cancelled():
                    ahead_batch.answer.exception()
            for out in offered:
                if not out.result.done():
                    self._transfers.pop(out.transfer_id, None)
            raise
        results = [await out.result for out in offered]
        failures = [(r.name, r.reason) for r in results if not r.ok]
        if failures:
            raise TransferFailed(failures)
        return results

    # ----- frames from the receiver (the session's reader hands them over)

    def on_answer(self, frame: fr.Accept | fr.Reject) -> None:
        """The receiver's answer to one of our offers."""
        answer = self._answers.pop(frame.batch, None)
        if answer is None:
            raise ProtocolViolation(f"answer to an unknown offer {frame.batch}")
        if not answer.done():
            answer.set_result(frame)

    def on_ack(self, id_: int, received: int) -> None:
        """The receiver holds ``received`` bytes of transfer ``id_``."""
        out = self._transfers.get(id_)
        if out is None or out.progress is None:
            return  # an ack racing a finished transfer
        out.acked = received
        if out.progress.due(received):
            self._emit(out.progress.event(self._clock(), id_, "out", received))

    def on_result(self, frame: fr.Result) -> None:
        """The receiver's verdict on one file."""
        out = self._transfers.get(frame.id)
        if out is None:
            if 0 < frame.id < self._next_id:
                # One of ours, given up by a send cut short (Ctrl-C: send_files lets go of
                # what it offered) while the receiver was still verifying it: its result
                # came during the close. Raised, it ended the close with a protocol error
                # the receiver read as "connection reset", not the interrupt.
                return
            raise ProtocolViolation(f"result for unknown transfer {frame.id}")
        self._finish(out, frame.ok, frame.digest, frame.reason)

    def on_bundled(self, frame: fr.Bundled) -> None:
        """The receiver's verdict on a bundle: the files it names failed, the others are ok."""
        files = self._sent_bundles.pop(frame.number, None)
        if files is None:
            raise ProtocolViolation(f"answer to an unknown bundle {frame.number}")
        failed = dict(frame.failed)
        verified: list[_OutgoingTransfer] = []
        for out in files:
            reason = failed.get(out.transfer_id)
            if reason is None:
                if self._finish(out, True, out.digest, "", report=False):
                    verified.append(out)
            else:
                self._finish(out, False, "", f"receiver: {reason}")
        if verified:  # one event for the bundle, not one per file
            self._emit(
                FilesCompleted(
                    self._clock(),
                    "out",
                    tuple(o.transfer_id for o in verified),
                    tuple(o.local.name for o in verified),
                    tuple(o.local.size for o in verified),
                    tuple(o.digest for o in verified),
                    ("",) * len(verified),
                )
            )

    def on_receiver_failed(self, id_: int, reason: str, cancelled: bool = False) -> None:
        """The receiver's ``fail``: it cannot store this file, or does not want it any
        more (``cancelled``); the session goes on."""
        out = self._transfers.get(id_)
        if out is not None:
            why = _cancel.CANCELLED_BY_PEER if cancelled else f"receiver: {reason}"
            self._finish(out, False, "", why, cancelled=cancelled)

    def cancel(self, id_: int) -> str | None:
        """Stop sending one file, the others go on (docs/PROTOCOL.md 12.14); None, or
        why it cannot be (:mod:`~rdv_core.session._cancel`)."""
        out = self._transfers.get(id_)
        settled = out is None or out.result.done()
        sent = out is not None and (out.sent or bool(out.digest))  # done, or bundled
        why = _cancel.too_late_to_send(known=out is not None, settled=settled, all_sent=sent)
        if why is None and out is not None:
            self._finish(out, False, "", _cancel.CANCELLED, cancelled=True)  # its data stops
            if out.accepted and not self._outbox.closed:  # else: once the answer comes
                self._outbox.write_reply(_cancel.fail_frame(id_, "sender"))
        return why

    def end(self, failure: SessionError, reason: str) -> None:
        """The session ended: unanswered offers raise ``failure``; unsettled files fail."""
        self._stop.set()  # a thread hashing a file's prefix (a resume) stops
        for answer in self._answers.values():
            if not answer.done():
                answer.set_exception(failure)
        self._answers.clear()
        for out in list(self._transfers.values()):
            self._finish(out, False, "", reason)

    # ----- sending files

    def _offer(self, local: list[LocalFile], totals: fr.SendTotals) -> _Batch:
        """Number and send one offer; its answer arrives in the returned batch's future."""
        loop = asyncio.get_running_loop()
        batch = _Batch(self._next_batch, [], loop.create_future())
        self._next_batch += 1
        for item in local:
            out = _OutgoingTransfer(item, self._next_id, loop.create_future())
            self._next_id += 1
            self._transfers[out.transfer_id] = out
            batch.transfers.append(out)
        self._answers[batch.number] = batch.answer
        offered = tuple(
            fr.OfferedFile(o.transfer_id, o.local.name, o.local.size, o.local.mtime_ns)
            for o in batch.transfers
        )
        self._outbox.check_open()
        self._outbox.write(fr.Offer(batch.number, offered, totals))
        self._emit(
            FilesOffered(
                self._clock(),
                batch.number,
                "out",
                tuple(f.id for f in offered),
                tuple(f.path for f in offered),
                tuple(f.size for f in offered),
            )
        )
        return batch

    async def _rejected(self, batch: _Batch, answer: fr.Reject, later: deque[_Batch]) -> None:
        """A batch was declined: so is the rest of the send (files accepted later fail)."""
        rejected = [(o.local.name, answer.reason) for o in batch.transfers]
        for o in batch.transfers:
            self._transfers.pop(o.transfer_id, None)
            if not o.result.cancel():
                continue  # cancelled by the user meanwhile: reported as that already
            self._emit(FileRejected(self._clock(), o.transfer_id, "out", answer.reason))
        reason = f"not sent: the receiver declined an earlier part ({answer.reason})"
        while later:
            other = later.popleft()
            other_answer = await other.answer
            for o in other.transfers:
                if isinstance(other_answer, fr.Accept):
                    self._outbox.write(fr.Fail(o.transfer_id, "sender", reason))
                self._transfers.pop(o.transfer_id, None)
                if o.result.cancel():  # else the user cancelled it meanwhile: said already
                    self._emit(FileRejected(self._clock(), o.transfer_id, "out", reason))
                rejected.append((o.local.name, reason))
        raise TransferRejected(rejected)

    async def _stream_batch(self, batch: _Batch, answer: fr.Accept) -> None:
        """Send every accepted file of ``batch`` in order; results arrive later."""
        by_id = {o.transfer_id: o for o in batch.transfers}
        for id_, reason in answer.failed:
            if id_ in by_id:
                self._finish(by_id[id_], False, "", f"receiver: {reason}")
        accepted_files: list[tuple[_OutgoingTransfer, int]] = []
        for id_, offset in answer.offsets:
            accepted = by_id.get(id_)
            if accepted is None:
                raise ProtocolViolation(f"accept names transfer {id_} that was not offered")
            accepted.accepted = True
            if accepted.failed == _cancel.CANCELLED:  # cancelled before this answer
                self._outbox.write_reply(_cancel.fail_frame(id_, "sender"))
            accepted_files.append((accepted, offset))
        if answer.offsets:
            ids, offsets = zip(*answer.offsets, strict=True)
            self._emit(FilesAccepted(self._clock(), batch.number, "out", ids, offsets))
        turn = time.monotonic()
        for accepted, offset in accepted_files:
            if accepted.result.done():
                continue  # cancelled (either side) before its turn: nothing of it is sent
            if self.bundles and not offset and accepted.local.size <= _bundle.MAX_FILE:
                if self._pack(accepted):
                    await self._outbox.drain()
            else:
                if self._send_bundle():
                    await self._outbox.drain()
                await self._stream(accepted, offset)
            if time.monotonic() - turn > YIELD_S:
                # Small files stream without a drain each (the channel corks them): let
                # flow control, the reader and the rest of the app in now and then.
                await self._outbox.drain()
                await asyncio.sleep(0)
                turn = time.monotonic()
        self._send_bundle()
        await self._outbox.drain()

    def _pack(self, out: _OutgoingTransfer) -> bool:
        """Read a whole small file into the bundle being packed; True if a bundle left."""
        try:
            data = read_whole(out.local)
        except OSError as exc:
            self._sender_failed(out, describe_os_error(exc, f"cannot read {out.local.where}"))
            return False
        digest = new_hasher(data).digest()
        out.digest = digest.hex()
        sent = False
        if not self._packer.fits(len(data)):
            sent = self._send_bundle()
        self._packer.add(out.transfer_id, digest, data)
        self._packing.append(out)
        return sent

    def _send_bundle(self) -> bool:
        """Seal and queue the bundle packed so far, if any (docs/PROTOCOL.md 12.13)."""
        bundle = self._packer.take()
        if bundle is None:
            return False
        self._outbox.check_open()
        self._sent_bundles[bundle.number] = self._packing
        self._packing = []
        self._outbox.write(bundle)
        return True

    async def _stream(self, out: _OutgoingTransfer, offset: int) -> None:
        """Send one file from ``offset``, then ``done`` with the whole file's digest."""
        local = out.local
        id_ = out.transfer_id
        if offset > local.size:
            failure = fr.Fail(id_, "sender", "the receiver holds more bytes than the file has")
            self._outbox.write(failure)
            self._finish(out, False, "", "receiver holds a longer partial file")
            return
        out.offset = out.acked = offset
        out.progress = Progress(local.size, offset)
        try:
            # Opened on the loop: a thread hop per file costs more than the open itself,
            # and a folder of small files is mostly opens (bench/transfer.py --files).
            handle = io.FileIO(local.where, "rb")
        except OSError as exc:
            self._sender_failed(out, describe_os_error(exc, f"cannot read {local.where}"))
            return
        with handle:
            try:
                info = os.fstat(handle.fileno())
                if info.st_size != local.size or max(0, info.st_mtime_ns) != local.mtime_ns:
                    raise OSError(f"{local.where} changed since it was offered")
                if offset:
                    self._emit(TransferResumed(self._clock(), id_, "out", local.name, offset))
                    hasher = await asyncio.to_thread(
                        hash_prefix, local.path, offset, stop=self._stop
                    )
                    handle.seek(offset)
                else:
                    hasher = new_hasher()
                await stream_data(
                    self._outbox,
                    handle,
                    hasher,
                    transfer_id=id_,
                    left=local.size - out.offset,
                    chunk=self.chunk_size,
                    where=str(local.where),
                    stopped=lambda: bool(out.failed),
                )
                if not out.failed:
                    _unchanged_since(handle.fileno(), local)
            except SessionError:
                raise
            except OSError as exc:
                self._sender_failed(out, describe_os_error(exc, f"cannot read {local.where}"))
                return
        if not out.failed and not self._outbox.closed:
            self._outbox.write(fr.Done(id_, hasher.hexdigest(), DIGEST))
            out.sent = True

    def _sender_failed(self, out: _OutgoingTransfer, reason: str) -> None:
        if not self._outbox.closed:
            self._outbox.write_reply(fr.Fail(out.transfer_id, "sender", reason))
        self._finish(out, False, "", reason)

    def _finish(
        self,
        out: _OutgoingTransfer,
        ok: bool,
        digest: str,
        reason: str,
        *,
        report: bool = True,
        cancelled: bool = False,
    ) -> bool:
        """Settle one file; False if it was settled already. ``report`` False: the caller
        reports a verified file itself (one event for a bundle)."""
        if out.result.done():
            return False
        out.failed = "" if ok else reason or "failed"
        self._transfers.pop(out.transfer_id, None)
        local = out.local
        result = TransferResult(
            out.transfer_id, "out", local.name, local.size, ok, digest, reason, "", out.offset
        )
        out.result.set_result(result)
        id_ = out.transfer_id
        if not ok:
            self._emit(FileFailed(self._clock(), id_, "out", local.name, out.failed, cancelled))
        elif report:
            if out.progress is not None:
                self._emit(out.progress.event(self._clock(), id_, "out", local.size, force=True))
            self._emit(FileCompleted(self._clock(), id_, "out", local.name, local.size, digest))
        return True


def _unchanged_since(fd: int, local: LocalFile) -> None:
    """Raise unless the file read through ``fd`` still has its offered size and mtime.

    Checked after the last byte was read, before ``done``: a file written to while it
    was sent (a log, a disk image in use, a document saved meanwhile) arrived as a mix
    of old and new bytes, and its digest, taken of what was read, was "verified" all
    the same. Changed, it fails; sent again once still, it starts over (new mtime).

    Raises:
        OSError: the file changed while it was sent.
    """
    info = os.fstat(fd)
    if info.st_size != local.size or max(0, info.st_mtime_ns) != local.mtime_ns:
        raise OSError(f"{local.where} changed while it was sent; send it again once it is still")
