"""The receiving side of a session: answering offers, writing file data, verifying it.

An offer is checked in the reader task (ids, batch, names), then answered in its own
task so that a person deciding does not stall chat. Accepted files are written as
they arrive (see :class:`~rdv_core.session._files.IncomingFile`) and verified against
the sender's digest on ``done``; a failure keeps the partial file to resume.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from rdv_core.events import (
    FileAccepted,
    FileCompleted,
    FileFailed,
    FileOffered,
    FileRejected,
    TransferResumed,
)
from rdv_core.session import _frames as fr
from rdv_core.session._base import SessionBase
from rdv_core.session._errors import ProtocolViolation, UnsafeName
from rdv_core.session._files import DIGEST, IncomingFile
from rdv_core.session._transfers import Progress, TransferResult, describe_os_error

log = logging.getLogger("rdv.session")

#: Offers the peer may have waiting for an answer at once (each holds a task).
MAX_OPEN_OFFERS = 16


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
class _Incoming:
    file: IncomingFile
    progress: Progress
    failed: str = ""


class IncomingSide(SessionBase):
    """Files the peer sends to this one (``direction`` ``in``); part of :class:`Session`."""

    on_offer: OfferCallback | None
    download_dir: Path | None
    received: list[TransferResult]
    _incoming: dict[int, _Incoming]
    _open_offers: set[int]
    _claimed_ids: set[int]

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
                reason = describe_os_error(exc, f"cannot store {f.path}")
                failed.append((f.id, reason))
                self.received.append(TransferResult(f.id, "in", f.path, f.size, False, "", reason))
                self._emit(FileFailed(self._clock(), f.id, "in", f.path, reason))
                continue
            if self.closed:
                file.close()
                return
            self._incoming[f.id] = _Incoming(file, Progress(f.size, offset))
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
            reason = describe_os_error(exc, f"cannot write {file.name}")
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
            ok, ours, reason = False, "", describe_os_error(exc, f"cannot finish {file.name}")
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
