"""The sending side of a session: offers, file data, resume from the receiver's verified prefix.

A sender offers files in batches (each offer frame stays under :data:`OFFER_BYTES`),
waits for the receiver's ``accept`` naming how many bytes of each file it already
holds, hashes that prefix from disk, streams the rest, and ends each file with
``done`` and the whole file's digest; the receiver's ``result`` settles it.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Sequence
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
from rdv_core.session._errors import (
    ProtocolViolation,
    SessionError,
    TransferFailed,
    TransferRejected,
)
from rdv_core.session._files import DIGEST, Hasher, LocalFile, collect, hash_prefix, new_hasher
from rdv_core.session._record import DATA_HEADER, MAX_CONTROL_BODY, RECORD_HEADER, TAG_SIZE
from rdv_core.session._transfers import Progress, TransferResult, describe_os_error

#: Encoded bytes of one offer frame at most (a huge folder is offered in several batches,
#: each one answered on its own), safely under the control frame bound.
OFFER_BYTES = MAX_CONTROL_BODY * 3 // 4


@dataclass(slots=True)
class _Outgoing:
    local: LocalFile
    transfer_id: int
    result: asyncio.Future[TransferResult]
    offset: int = 0
    acked: int = 0
    failed: str = ""
    progress: Progress | None = None


class OutgoingSide(SessionBase):
    """Files this peer sends (``direction`` ``out``); part of :class:`Session`."""

    chunk_size: int
    _next_id: int
    _next_batch: int
    _outgoing: dict[int, _Outgoing]
    _answers: dict[int, asyncio.Future[fr.Accept | fr.Reject]]

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
        out.progress = Progress(local.size, offset)
        try:
            handle = await asyncio.to_thread(io.FileIO, local.path, "rb")
        except OSError as exc:
            self._sender_failed(out, describe_os_error(exc, f"cannot read {local.path}"))
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
                self._sender_failed(out, describe_os_error(exc, f"cannot read {local.path}"))
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
        header = DATA_HEADER
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
            record = bytearray(RECORD_HEADER.size + header + n + TAG_SIZE)
            RECORD_HEADER.pack_into(record, 0, header + n + TAG_SIZE)
            sealer.seal_into(view[: header + n], memoryview(record)[RECORD_HEADER.size :])
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
