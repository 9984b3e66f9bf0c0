"""Worker threads on the bulk data path: the disk and the hash overlap the socket and AEAD.

One big file costs each peer four steps per byte (docs/PROTOCOL.md section 12.12):
the sender reads, hashes, seals and sends; the receiver receives, opens, writes and
hashes. On one thread they run one after the other, and the side waiting for the
other leaves its core idle. Here the disk and BLAKE3 steps of a big file move to one
worker thread per file, fed in order, while the event loop keeps the steps that must
stay in nonce order (sealing and sending, receiving and opening). File reads and
writes, BLAKE3's ``update`` and OpenSSL's AES-GCM all release the GIL on large
buffers, so the two threads of a peer run at once.

- :class:`ReadAhead` (sender): the worker reads and hashes blocks of the file into a
  small ring of reused buffers; the loop seals records from them and sends.
- :class:`PlainBuffers` and :class:`ChunkWriter` (receiver): the reader opens each
  record into a plaintext buffer of a small pool; a data chunk of a big file lends its
  buffer to the file's writer thread (write, hash), which gives it back when done.

Both are bounded: :data:`READ_AHEAD` bytes of plaintext per sending file,
:data:`PLAIN_DEPTH` plaintext buffers per receiving session; a full ring or pool makes
the loop wait (and, on the receiver, stop reading the socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import queue
from collections import deque
from collections.abc import Callable, Sized
from typing import Protocol

#: Whether big files use worker threads at all. On the 2-vCPU project machine, where
#: both peers of a loopback transfer and other work share two cores, they cost each
#: side 0.2-0.5 CPU s/GiB more (hand-offs, data moving between the cores' caches) and
#: no throughput (A/B in docs/PROTOCOL.md 12.12): there is no idle core to win. With
#: 4 or more, each peer's second thread has a core of its own.
WORKERS = (os.cpu_count() or 1) >= 4
#: Files with fewer bytes left than this go inline, on the loop: a thread hop per
#: file costs more than the overlap gains for small files.
PIPELINE_MIN = 4 << 20


def use_workers(left: int) -> bool:
    """Whether a file with ``left`` bytes to move goes through worker threads."""
    return WORKERS and left >= PIPELINE_MIN


#: Bytes of plaintext the sender's worker reads ahead of the sealing loop, per file.
READ_AHEAD = 2 << 20
#: Plaintext buffers of a receiving session (one is always the reader's own).
PLAIN_DEPTH = 6


class _Digest(Protocol):
    def update(self, data: memoryview, /) -> object: ...


class _Sink(Protocol):
    def write(self, data: memoryview) -> None: ...

    def close(self) -> None: ...


class ReadAhead:
    """Reads ``left`` bytes of ``handle`` and hashes them in a worker thread, ahead of the loop.

    Each item is one record's plaintext: ``prefix`` (the data frame's type and transfer
    id, written once per buffer) and the next at most ``chunk`` bytes of the file, so
    the loop seals it as it is, with no copy. The loop calls :meth:`next_plaintext`
    for each record in file order, seals it, then :meth:`release` s it; :meth:`stop`
    ends the worker (always call it, in ``finally``).
    """

    def __init__(
        self, handle: io.RawIOBase, hasher: _Digest, left: int, prefix: bytes, chunk: int
    ) -> None:
        self._handle = handle
        self._hasher = hasher
        self._left = left
        self._prefix = len(prefix)
        self._chunk = chunk
        self._loop = asyncio.get_running_loop()
        self._free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
        for _ in range(max(2, READ_AHEAD // chunk)):
            self._free.put(bytearray(prefix) + bytearray(chunk))
        #: What the worker read (deque appends and pops are atomic).
        self._ready: deque[tuple[bytearray, int] | BaseException] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._stopped = False
        self._worker = self._loop.run_in_executor(None, self._run)

    async def next_plaintext(self) -> tuple[bytearray, memoryview]:
        """The next record's plaintext (its payload hashed already) and the buffer it is in.

        Raises:
            OSError: reading failed, or the file shrank.
        """
        while not self._ready:
            await _wait_for(self, self._ready)
        item = self._ready.popleft()
        if isinstance(item, BaseException):
            raise item
        buffer, n = item
        return buffer, memoryview(buffer)[: self._prefix + n]

    def release(self, buffer: bytearray) -> None:
        """Hand a sealed record's buffer back to the worker."""
        self._free.put(buffer)

    async def stop(self) -> None:
        """End the worker (after the last record, or early) and wait for it."""
        self._stopped = True
        self._free.put(None)
        await self._worker

    # ----- the worker thread

    def _run(self) -> None:
        start = self._prefix
        while self._left and not self._stopped:
            buffer = self._free.get()
            if buffer is None:
                return
            view = memoryview(buffer)
            try:
                n = self._handle.readinto(view[start : start + min(self._left, self._chunk)])
                if not n:
                    raise OSError("the file shrank while sending")
                self._hasher.update(view[start : start + n])
            except BaseException as exc:  # handed to the loop, raised there
                self._post(exc)
                return
            self._left -= n
            self._post((buffer, n))

    def _post(self, item: tuple[bytearray, int] | BaseException) -> None:
        self._ready.append(item)  # deque appends are atomic
        _wake_from_thread(self)


class PlainBuffers:
    """The plaintext buffers a session's reader opens records into.

    :attr:`current` is where the next record goes. A data chunk handed to a
    :class:`ChunkWriter` :meth:`lend` s it; the reader then takes a buffer given back,
    or allocates one (up to :data:`PLAIN_DEPTH` in all), or waits in :meth:`ready`.
    :meth:`give_back` runs in writer threads.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._made = 1
        #: Buffers given back (list append and pop are atomic: writer threads append).
        self._free: list[bytearray] = []
        self.current: bytearray | None = bytearray(size)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None

    def lend(self) -> bytearray:
        """The current buffer, handed off until :meth:`give_back`; another becomes current."""
        lent = self.current
        assert lent is not None
        if self._free:
            self.current = self._free.pop()
        elif self._made < PLAIN_DEPTH:
            self._made += 1
            self.current = bytearray(self._size)
        else:
            self.current = None
        return lent

    async def ready(self) -> bytearray:
        """The current buffer, once there is one."""
        self._loop = asyncio.get_running_loop()
        while self.current is None:
            if self._free:
                self.current = self._free.pop()
            else:
                await _wait_for(self, self._free)
        return self.current

    def give_back(self, buffer: bytearray) -> None:
        """A lent buffer is free again (from any thread)."""
        self._free.append(buffer)
        _wake_from_thread(self)


class _Waits(Protocol):
    @property
    def _loop(self) -> asyncio.AbstractEventLoop | None: ...

    @property
    def _waiter(self) -> asyncio.Future[None] | None: ...

    @_waiter.setter
    def _waiter(self, waiter: asyncio.Future[None] | None) -> None: ...


async def _wait_for(owner: _Waits, items: Sized) -> None:
    """Wait (on the loop) until a worker thread adds to ``items``.

    The waiter is published before ``items`` is checked again, and a worker checks for
    a waiter after adding: one of the two sees the other, so no wake-up is lost, and a
    worker wakes the loop (a syscall) only when it waits.
    """
    owner._waiter = asyncio.get_running_loop().create_future()
    try:
        if not items:
            await owner._waiter
    finally:
        owner._waiter = None


def _wake_from_thread(owner: _Waits) -> None:
    """After adding to the items a loop may wait for: wake it if it waits."""
    waiter, loop = owner._waiter, owner._loop
    if waiter is not None and loop is not None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_set, waiter)


def _set(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class ChunkWriter:
    """Writes one file's chunks in order in a worker thread (``sink.write`` writes and hashes).

    The loop :meth:`put` s each chunk with the buffer it lives in; the worker writes it
    and hands the buffer back through ``give_back`` (called in the worker thread).
    :meth:`drained` waits for every chunk to be written (before verifying); after a write
    error the worker drops the rest.
    The worker closes ``sink`` when it ends early (an error, an abort): the loop never
    closes a file under its writer.
    """

    def __init__(self, sink: _Sink, give_back: Callable[[bytearray], None]) -> None:
        self._sink = sink
        self._give_back = give_back
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[tuple[bytearray, memoryview] | None] = queue.SimpleQueue()
        self._aborted = False
        #: The write error that ended the worker, for the loop to report.
        self.error: BaseException | None = None
        self._worker = self._loop.run_in_executor(None, self._run)

    @property
    def failed(self) -> bool:
        """True once a write failed (see :attr:`error`) or the writer was aborted."""
        return self.error is not None or self._aborted

    def put(self, buffer: bytearray, chunk: memoryview) -> None:
        """Queue ``chunk`` (a view of ``buffer``, lent until the worker gives it back)."""
        self._queue.put((buffer, chunk))

    async def drained(self) -> BaseException | None:
        """Wait for every queued chunk to be written; the write error, if any."""
        self._queue.put(None)
        await self._worker
        return self.error

    def abort(self) -> None:
        """Stop: the worker writes what is queued (authentic data, in order: a longer
        prefix to resume from), closes the file, and ends (see :meth:`stopped`)."""
        self._aborted = True
        self._queue.put(None)

    async def stopped(self) -> None:
        """Wait for the worker to end (after :meth:`abort` or :meth:`drained`)."""
        await self._worker

    # ----- the worker thread

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            buffer, chunk = item
            if self.error is None:
                try:
                    self._sink.write(chunk)
                except BaseException as exc:  # reported by the loop (see error)
                    self.error = exc
            self._give_back(buffer)
        if self.failed:
            self._sink.close()
