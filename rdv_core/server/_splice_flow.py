"""One direction of the zero-copy relay: a :class:`Flow`, ``src`` -> pipe -> ``dst``.

docs/PROTOCOL.md section 8; :mod:`._splice` has the design (the module doc) and the
conns (:class:`~._splice.SplicedConn`). A flow is driven by the loop (readers and
writers) while its traffic is small or no relay thread can be had, and by a thread of
its own while it is bulk (:mod:`._splice_thread`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from rdv_core.server._pipes import PipePool
from rdv_core.server._splice_thread import Mover, Outcome

if TYPE_CHECKING:
    from rdv_core.server._splice import SplicedConn

__all__ = ["COPY_BELOW", "READS_PER_EVENT", "SPLICE_FROM", "Flow"]

#: A read by copy of at least this many bytes turns a flow to splice; a spliced read of
#: fewer turns it back. Splicing a small read costs more than copying it (the kernel
#: copies an skb's linear part into a fresh page for the pipe): interactive traffic keeps
#: the copy relay's round trip, bulk moves without copies.
SPLICE_FROM: Final = 64 * 1024
COPY_BELOW: Final = 16 * 1024
#: Reads a flow does per readiness event while each is passed on whole: fewer wakeups
#: at volume, and one busy pair cannot keep the loop from the others for long (it goes on
#: in the next loop turn). A reader always reads until the socket is empty (EAGAIN), at
#: its end, or at an error: under uvloop an error is reported once (see _on_readable).
READS_PER_EVENT: Final = 4
_FLAGS: Final = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)


class Flow:
    """One direction: ``src`` -> pipe -> ``dst`` (see module doc)."""

    __slots__ = (
        "_count",
        "_loop",
        "_pool",
        "_view",
        "backlog",
        "bulk",
        "dst",
        "mover",
        "pending",
        "pipe",
        "reading",
        "spliced",
        "src",
        "writing",
    )

    def __init__(
        self,
        src: SplicedConn,
        dst: SplicedConn,
        pool: PipePool,
        view: Callable[[], memoryview],
        count: Callable[[int], None],
    ) -> None:
        self.src = src
        self.dst = dst
        self._pool = pool
        self._view = view
        self._count = count
        self._loop = src._loop
        self.pipe: tuple[int, int] | None = None
        #: Bytes to send before the pipe's: the pair's first bytes, or a read by copy.
        self.backlog = memoryview(b"")
        #: Bytes read from src (or given first), not yet sent to dst.
        self.pending = 0
        self.reading = False
        self.writing = False
        #: Reads go through a pipe (else by copy): see SPLICE_FROM.
        self.bulk = False
        #: A read went through a pipe since the flow turned bulk: it may go to a thread.
        self.spliced = False
        #: The thread moving this flow while it is bulk (:mod:`._splice_thread`).
        self.mover: Mover | None = None

    def start_reading(self) -> None:
        if not self.reading and not self.src.is_closing() and not self.dst.is_closing():
            self.reading = True
            self._loop.add_reader(self.src.fd, self._on_readable)

    def stop_reading(self) -> None:
        self.on_loop()
        if self.reading:
            self.reading = False
            self._loop.remove_reader(self.src.fd)

    def drop(self) -> None:
        """dst is gone: what it was to get is thrown away; src is not read any more."""
        self.stop_reading()
        if self.writing:
            self.writing = False
            self._loop.remove_writer(self.dst.fd)
        if self.pipe is not None:
            self._pool.put(self.pipe, empty=False)
            self.pipe = None
        self.backlog = memoryview(b"")
        self.pending = 0

    def send_first(self, data: bytes) -> None:
        """Send ``data`` before anything read from src (the pair's first bytes)."""
        if data:
            self.backlog = memoryview(data)
            self.pending = len(data)
        self._send()

    def _on_readable(self) -> None:
        for _ in range(READS_PER_EVENT):
            n = self._read()
            if not n or not self._send():
                return  # emptied (EAGAIN), ended, failed, or dst full (reading stopped)
        # More to read: go on in the next loop turn, the other pairs first, rather than
        # wait for the poll. uvloop reports an error on a descriptor (a peer's reset
        # behind bytes we had not read yet) with one call of this reader, then drops the
        # descriptor from its poll: a reader that stopped there (after these reads, or
        # after a short one, taken for an empty socket) was never called again, and the
        # pair stayed open for good, the other peer waiting mid-stream.
        self._loop.call_soon(self._go_on)

    def _go_on(self) -> None:
        if self.reading:
            self._on_readable()

    def _read(self) -> int:
        """One read from src into a pipe (or by copy): how many bytes, 0 if none."""
        if not self.bulk:
            n = self._copy_read()
            if n >= SPLICE_FROM:
                self.bulk = True  # the next reads are likely as big: splice them
            return n
        pipe = self._pool.get()
        if pipe is None:
            return self._copy_read()
        try:
            n = os.splice(self.src.fd, pipe[1], self._pool.size, flags=_FLAGS)
        except BlockingIOError:
            self._pool.put(pipe)
            return 0
        except OSError as exc:
            self._pool.put(pipe)
            self.src.fail(exc)
            return 0
        if n == 0:
            self._pool.put(pipe)
            self._eof()
            return 0
        if n < COPY_BELOW:
            self.bulk = False
        self.spliced = self.bulk
        self.pipe = pipe
        self.pending = n
        self._count(n)
        return n

    def _copy_read(self) -> int:
        view = self._view()
        try:
            n = self.src.sock.recv_into(view)
        except BlockingIOError:
            return 0
        except OSError as exc:
            self.src.fail(exc)
            return 0
        if n == 0:
            self._eof()
            return 0
        self._count(n)
        try:
            sent = self.dst.sock.send(view[:n])
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            self.dst.fail(exc)
            return 0
        if sent < n:
            # Copied out of the shared buffer: the next read may reuse it at once.
            self.backlog = memoryview(bytes(view[sent:n]))
            self.pending = n - sent
        return n

    def _eof(self) -> None:
        self.stop_reading()
        self.src.on_eof()

    def _send(self) -> bool:
        """Pass on what is pending; True if all of it went (reading goes on).

        While dst is full, src is not read: dst is watched for writability instead.
        """
        dst_fd = self.dst.fd
        try:
            while self.backlog:
                sent = self.dst.sock.send(self.backlog)
                self.backlog = self.backlog[sent:]
                self.pending -= sent
            while self.pending:
                assert self.pipe is not None
                self.pending -= os.splice(self.pipe[0], dst_fd, self.pending, flags=_FLAGS)
        except BlockingIOError:
            pass
        except OSError as exc:
            self.dst.fail(exc)
            return False
        if self.pending:
            self.stop_reading()
            if not self.writing:
                self.writing = True
                self._loop.add_writer(dst_fd, self._on_writable)
            return False
        if self.pipe is not None:
            self._pool.put(self.pipe)
            self.pipe = None
        if self.writing:
            self.writing = False
            self._loop.remove_writer(dst_fd)
        if self.dst.closing or self.dst.eof_wanted:
            self.dst.drained()
            return False
        if self.spliced and self._pool.threads and self._to_thread():
            return False
        self.start_reading()
        return self.reading

    def _on_writable(self) -> None:
        # A slow reader that drains what we hold is activity, not idleness.
        self.dst.on_progress()
        self._send()

    # ----- moved by a thread while bulk (rdv_core/server/_splice_thread.py)

    def _to_thread(self) -> bool:
        """Hand this bulk flow, nothing pending, to a thread of its own; False: no thread
        (the bound is reached, or out of fds), the loop goes on moving it."""
        if self.src.is_closing() or self.dst.is_closing():
            return False
        mover = Mover.open(
            self.src.fd,
            self.dst.fd,
            dst=self.dst.sock,
            least=self._pool.size,
            small_below=COPY_BELOW,
            count=self._count,
            on_end=self._on_moved_end,
        )
        if mover is None:
            return False
        self.stop_reading()
        if not mover.start():
            return False  # the caller starts reading again
        self._pool.threads -= 1
        self._pool.moved += 1
        self.mover = mover
        return True

    def on_loop(self) -> None:
        """Take this flow back from its thread (if it has one): what the thread leaves
        (bytes held, an EOF or an error it met) is the loop's again."""
        if self.mover is not None:
            self._reclaim(resume=False)

    def _on_moved_end(self, mover: Mover) -> None:
        if mover is self.mover:
            self._reclaim(resume=True)

    def _reclaim(self, *, resume: bool) -> None:
        mover, self.mover = self.mover, None
        assert mover is not None
        mover.join()
        self._pool.threads += 1
        if mover.held:
            self.pipe, self.pending = mover.pipe, mover.held
        else:
            self._pool.put(mover.pipe)
        outcome = mover.outcome
        if outcome in ("stopped", "small", "moving"):
            self.bulk = self.spliced = outcome != "small"
            if resume:
                self._send()  # what it held, then reading on the loop path
            elif self.pending and not self.writing:
                self.writing = True
                self._loop.add_writer(self.dst.fd, self._on_writable)
        elif resume:
            self._settle(outcome, mover.error)
        else:  # the caller is closing a conn: what the thread met comes after that
            self._loop.call_soon(self._settle, outcome, mover.error)

    def _settle(self, outcome: Outcome, error: OSError | None) -> None:
        if outcome == "eof":
            if not self.src.is_closing():
                self._eof()
        elif error is not None:
            (self.src if outcome == "src error" else self.dst).fail(error)
