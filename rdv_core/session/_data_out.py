"""The sender's data loop for one file: read, hash, seal into reused records, send.

:class:`RecordRing` holds the sealed records of one file's stream. A fresh
``bytearray`` per record (what the sender did before) is an allocation of a record's
size per frame: glibc serves a 256 KiB block from ``mmap`` or from a heap top it
trims again, so the kernel zeroes and maps fresh pages for most records, and on a VM
whose balloon reports free pages to the host (the project machine: virtio-balloon
with free page reporting) the host faults them in again. The sender of a 1 GiB file
took 3,000-37,000 page faults per GiB that way (docs/notes/issue-14-receiver.md).
The ring reuses a record's buffer once the kernel has taken every byte of it, which
the channel tells (:meth:`~rdv_core.session._channel.Channel.taken`): asyncio's
transports on 3.12+ and uvloop's keep a reference to what the socket did not take,
so a buffer is never rewritten while a transport still points into it.

:func:`stream_data` is the loop itself (moved here from ``_outgoing``): a big file's
reads and hashing run in a worker thread on machines where that pays
(:class:`~rdv_core.session._pipeline.ReadAhead`, docs/PROTOCOL.md section 12.12), a
small one inline. Sealing and writing a record happen with no ``await`` between, as
:class:`~rdv_core.session._outbox.Outbox` requires (12.11: nonce order).
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Callable

from rdv_core.session._files import Hasher
from rdv_core.session._frames import FrameType
from rdv_core.session._outbox import Outbox
from rdv_core.session._pipeline import ReadAhead, use_workers
from rdv_core.session._record import DATA_HEADER, RECORD_HEADER, TAG_SIZE

#: Record buffers one file's stream keeps for reuse. The sender drains to the
#: transport's low-water mark after every record, so the kernel has taken all but the
#: last one or two; a record whose buffer is still referenced is never waited for: a
#: fresh one is made instead. Bound: this many records per file being sent.
RING_SLOTS = 4
#: Files with fewer chunks than this send fresh records (a ring would cost more).
RING_MIN_RECORDS = 3


class RecordRing:
    """Record buffers of one stream, reused once the kernel took every byte of them."""

    __slots__ = ("_outbox", "_slots")

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        #: Buffers in the order they were written, each with the channel's ``written``
        #: count just after it: it is free again once ``taken()`` reaches that count.
        self._slots: deque[tuple[bytearray, int]] = deque()

    def send(self, plain: memoryview) -> None:
        """Seal one frame's plaintext into a record and queue it (no await)."""
        sealer, channel = self._outbox.sealer, self._outbox.channel
        assert sealer is not None and channel is not None
        size = RECORD_HEADER.size + len(plain) + TAG_SIZE
        record = self._take(size)
        view = memoryview(record)[:size]
        RECORD_HEADER.pack_into(view, 0, len(plain) + TAG_SIZE)
        sealer.seal_into(plain, view[RECORD_HEADER.size :])
        # A memoryview: the transport slices what the kernel did not take without a copy.
        channel.write(view)
        self._slots.append((record, channel.written))
        if len(self._slots) > RING_SLOTS:
            self._slots.popleft()  # still in a transport: dropped, the transport frees it

    def _take(self, size: int) -> bytearray:
        channel = self._outbox.channel
        assert channel is not None
        if self._slots:
            record, mark = self._slots[0]
            taken = channel.taken()
            if taken is not None and taken >= mark and len(record) >= size:
                self._slots.popleft()
                return record
        return bytearray(size)


def send_fresh(outbox: Outbox, plain: memoryview) -> None:
    """Seal one frame's plaintext into a fresh record and queue it (no await)."""
    sealer, channel = outbox.sealer, outbox.channel
    assert sealer is not None and channel is not None
    record = bytearray(RECORD_HEADER.size + len(plain) + TAG_SIZE)
    RECORD_HEADER.pack_into(record, 0, len(plain) + TAG_SIZE)
    sealer.seal_into(plain, memoryview(record)[RECORD_HEADER.size :])
    channel.write(memoryview(record))


async def stream_data(
    outbox: Outbox,
    handle: io.RawIOBase,
    hasher: Hasher,
    *,
    transfer_id: int,
    left: int,
    chunk: int,
    where: str,
    stopped: Callable[[], bool],
) -> None:
    """Send ``left`` bytes of ``handle`` as ``data`` frames of ``chunk`` bytes, hashing them.

    Stops early when ``stopped()`` (the transfer failed meanwhile).

    Raises:
        OSError: reading failed, or the file shrank.
        SessionError: the session closed.
    """
    prefix = bytes([FrameType.DATA]) + transfer_id.to_bytes(4, "big")
    ring = RecordRing(outbox) if left > chunk * (RING_MIN_RECORDS - 1) else None
    send = ring.send if ring is not None else (lambda plain: send_fresh(outbox, plain))
    if not use_workers(left):
        await _stream_inline(outbox, handle, hasher, prefix, left, chunk, where, stopped, send)
        return
    ahead = ReadAhead(handle, hasher, left, prefix, chunk)
    try:
        while left and not stopped():
            outbox.check_open()
            buffer, plain = await ahead.next_plaintext()
            if stopped():  # failed (cancelled) while it read: no data after a fail (12.14)
                break
            send(plain)
            ahead.release(buffer)
            left -= len(plain) - DATA_HEADER
            if left:
                await outbox.drain()
    finally:
        await ahead.stop()


async def _stream_inline(
    outbox: Outbox,
    handle: io.RawIOBase,
    hasher: Hasher,
    prefix: bytes,
    left: int,
    chunk: int,
    where: str,
    stopped: Callable[[], bool],
    send: Callable[[memoryview], None],
) -> None:
    """Read into a reused buffer, hash, seal and send, one chunk at a time, on the loop."""
    plain = bytearray(prefix) + bytearray(min(left, chunk))
    view = memoryview(plain)
    while left and not stopped():
        outbox.check_open()
        n = handle.readinto(view[DATA_HEADER : DATA_HEADER + min(left, chunk)])
        if not n:
            raise OSError(f"{where} shrank while sending")
        hasher.update(view[DATA_HEADER : DATA_HEADER + n])
        send(view[: DATA_HEADER + n])
        left -= n
        if left:
            await outbox.drain()
