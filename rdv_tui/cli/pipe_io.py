"""stdin and stdout of pipe mode (:mod:`rdv_tui.cli.pipe`), served by daemon threads.

stdin and stdout may be pipes, sockets, regular files or a terminal, so they are served by
threads doing plain blocking ``os.read``/``os.write`` (asyncio's pipe transports refuse
regular files and would switch a shared terminal to non-blocking mode behind the shell's
back). Both threads are daemons that nothing waits for: a read that never returns (a
terminal) or a write to a reader that stopped (``| less`` paused) must not keep the
process alive once rdv is done or interrupted.

Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import queue
import threading
from typing import Final

#: Largest read from stdin / from the peer: big chunks keep per-chunk costs (thread
#: hand-offs, syscalls) negligible when moving files.
CHUNK: Final = 1 << 20
#: Chunks buffered between the stdin thread and the event loop (bounded memory).
STDIN_QUEUE: Final = 8
#: Pipe capacity we ask for on stdin/stdout pipes (Linux caps it at pipe-max-size,
#: 1 MiB by default): fewer, larger reads and writes than the default 64 KiB.
PIPE_SIZE: Final = 1 << 20


def grow_pipe(fd: int) -> None:
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)


class StdinReader:
    """Reads a file descriptor in a daemon thread into an asyncio queue.

    ``b""`` in the queue means EOF; an ``OSError`` means the read failed. At most
    :data:`STDIN_QUEUE` chunks wait in the queue: the thread takes a slot of a
    semaphore before each read and the consumer gives it back (:meth:`get`). The
    thread hands chunks over with ``call_soon_threadsafe`` and never creates a
    coroutine: one made for a loop that closes before running it was reported as
    "coroutine 'Queue.put' was never awaited" after a lost conn.
    """

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self._fd = fd
        self._loop = loop
        self.queue: asyncio.Queue[bytes | OSError] = asyncio.Queue()
        self._slots = threading.Semaphore(STDIN_QUEUE)
        self._thread = threading.Thread(target=self._run, name="rdv-stdin", daemon=True)
        self._end: bytes | OSError | None = None  # an EOF or error take_ready() met
        #: Bytes handed out by :meth:`take_ready` (sent, but not by the pump).
        self.taken_early = 0

    def start(self) -> None:
        """Start reading."""
        grow_pipe(self._fd)
        self._thread.start()

    async def get(self) -> bytes | OSError:
        """The next chunk (``b""`` at EOF) or the read's error."""
        if self._end is not None:
            end, self._end = self._end, None
            return end
        item = await self.queue.get()
        self._slots.release()
        return item

    def take_ready(self) -> bytes:
        """The chunk read already, if any, without waiting (``b""`` if none): fast start's
        early data (``Client(early_data=...)``, docs/PROTOCOL.md 16.2). An EOF or error
        found instead stays for :meth:`get`."""
        if self._end is not None or self.queue.empty():
            return b""
        item = self.queue.get_nowait()
        self._slots.release()
        if isinstance(item, bytes) and item:
            self.taken_early += len(item)
            return item
        self._end = item
        return b""

    def _run(self) -> None:
        while True:
            while not self._slots.acquire(timeout=0.5):
                if self._loop.is_closed():
                    return
            item: bytes | OSError
            try:
                item = os.read(self._fd, CHUNK)
            except OSError as exc:
                item = exc
            try:
                self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
            except RuntimeError:
                return  # the loop is gone: nobody wants more input
            if not isinstance(item, bytes) or not item:
                return


class StdoutError(Exception):
    """Writing to stdout failed (closed pipe, full disk): not a network problem."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(cause.strerror or str(cause))
        self.cause = cause


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class StdoutWriter:
    """Writes chunks to a file descriptor, in order, from one daemon thread.

    A slow stdout consumer must never block the event loop (and with it our upload),
    and a stalled one (``| less`` paused, a terminal stopped with Ctrl-S) must not keep
    the process alive after Ctrl-C: the thread is a daemon, and nothing ever waits for
    it to end. (A ``ThreadPoolExecutor`` did: leaving its ``with`` block joins its
    thread, and its threads are joined at exit too, so an interrupt during a blocked
    ``write()`` hung rdv for good, its conn open.)
    """

    def __init__(self, fd: int, loop: asyncio.AbstractEventLoop) -> None:
        self._fd = fd
        self._loop = loop
        self._jobs: queue.SimpleQueue[tuple[bytes, asyncio.Future[None]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name="rdv-stdout", daemon=True)
        self._thread.start()

    async def write(self, data: bytes) -> None:
        """Write all of ``data``; raises the ``OSError`` of the write."""
        done: asyncio.Future[None] = self._loop.create_future()
        self._jobs.put((data, done))
        await done

    def close(self) -> None:
        """Let the thread end once it has written what it was given."""
        self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            data, done = job
            failure: OSError | None = None
            try:
                _write_all(self._fd, data)
            except OSError as exc:
                failure = exc
            try:
                self._loop.call_soon_threadsafe(_settle, done, failure)
            except RuntimeError:
                return  # the loop is gone: nobody waits for this write
            if failure is not None:
                return


def _settle(done: asyncio.Future[None], failure: OSError | None) -> None:
    if done.done():  # cancelled: an interrupt came while the write was blocked
        return
    if failure is None:
        done.set_result(None)
    else:
        done.set_exception(failure)
