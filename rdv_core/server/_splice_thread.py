"""A bulk flow of the zero-copy relay moved off the loop: one thread per direction.

docs/PROTOCOL.md section 8; on the wire nothing changes. The loop-driven splice relay
(:mod:`._splice`) pays, per read, a wake-up of the loop and its Python (the callback, the
pipe taken from the pool and given back, the reader armed and disarmed): about 0.3 server
CPU s/GiB, on a 2-core machine whose two peers fill both cores (issue 14) the third of a
core that held the relay under 0.9 of p2p. Once a flow is bulk (it turned to splice, see
:data:`._splice.SPLICE_FROM`), a :class:`Mover` moves it in a thread instead: ``poll(2)``
on the source, a splice into the flow's own pipe, a splice out of it, and back
to ``poll``: no loop turn per read. Its pipe is bigger (:data:`THREAD_PIPE_SIZE`): in the
kernel a splice costs per call as much as per byte (each write to the destination
pushes segments over loopback and wakes its reader), and a bulk read fills any pipe. A
read takes what the destination's send buffer has room for (``SO_SNDBUF`` less
``SIOCOUTQ``), and never less than ``PipePool.size``: what the server holds for a
destination that stopped reading stays one loop-path read at most (256 KiB by default),
as on the loop path. Interactive traffic keeps the
loop path and its round trip: :data:`SMALL_READS_BACK` reads in a row under
:data:`._splice.COPY_BELOW` hand the flow back to the loop (:attr:`Mover.outcome`
``small``).

The thread only moves bytes. Every decision stays on the loop: the thread's end (an EOF,
an error of either socket, a small read) is posted with ``call_soon_threadsafe`` and the
loop reclaims the flow (:meth:`Mover.join`) and acts as the loop path would, so a
half-close is passed on, a reset passed as a reset, and ``connection_lost`` reported on
the loop. The loop may reclaim a flow at any time (a close, an abort, a half-close
toward its destination, a server's shutdown): it sets :attr:`Mover.stopping`, writes the
flow's eventfd, which every ``poll`` of the thread watches, and joins the thread. The
sockets stay non-blocking and every splice is ``SPLICE_F_NONBLOCK``, so the thread only
ever waits in ``poll``: it ends within a system call's time, and no descriptor is closed
while the thread may still use it (the loop closes them, after the join).

Bytes read are counted by the thread, as it reads them and before it passes them on,
with the flow's ``count`` (the relayer's per-direction counter: only that flow adds to
it, on the loop or in its thread, never both at once; a thread's start and join order
the two). So the server's stats, its idle timeout and a half-open pair's quiet
(``HALF_OPEN_QUIET_S``) see a moved flow exactly as one on the loop: no peer ever holds a
byte the stats do not count. A report per read posted to the loop instead cost that
loop wake-up per read again (bench/_transfer_relay.py: 0.30-0.37 server CPU s/GiB, no
better than the loop path). ``count`` also stamps the pair's activity, with
``time.monotonic()``, not ``loop.time()``: on uvloop that would update libuv's cached
clock from this thread, a store racing the loop's own (the relayer's ``_now``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import select
import socket
import sys
import termios
import threading
from collections.abc import Callable
from socket import SO_SNDBUF, SOL_SOCKET
from typing import Final, Literal

__all__ = [
    "MAX_RELAY_THREADS",
    "SMALL_READS_BACK",
    "THREADS_ENV",
    "THREAD_PIPE_SIZE",
    "Mover",
    "Outcome",
    "threads_wanted",
]

#: At most this many flows are moved by threads, server-wide; the others keep the loop
#: path. Each costs a thread (its stack), an eventfd and a pipe of
#: :data:`THREAD_PIPE_SIZE` (its pages only while it holds bytes); and the threads share
#: the process's cores (two, the machine of issue 14) and its GIL for their few Python
#: steps per read: beyond a few bulk flows per core they would only take turns. Eight is
#: two bulk pairs, both ways, per core on that machine.
MAX_RELAY_THREADS: Final = 8
#: A moved flow's pipe: Linux's ``fs.pipe-max-size`` by default, so any user may have it
#: (past it ``F_SETPIPE_SZ`` needs CAP_SYS_RESOURCE; the pipe then keeps its size).
#: Measured on the 2-core machine of issue 14 (bench/_transfer_relay.py): 256 KiB reads
#: cost the server 0.32-0.36 CPU s/GiB in threads (no gain on the loop path's
#: 0.31-0.37), 512 KiB 0.28, 1 MiB 0.22-0.25.
THREAD_PIPE_SIZE: Final = 1 << 20
#: ``RDV_RELAY_THREADS=0`` keeps every flow on the loop path (to measure one against
#: the other in the same run, bench/transfer.py ``--relay-threads``).
THREADS_ENV: Final = "RDV_RELAY_THREADS"

#: Small reads in a row that hand a moved flow back to the loop. A bulk stream's reads
#: come short now and then (the tail of a sender's write): handed back at the first,
#: a flow of bench/transfer.py went back and forth every 3 to 300 reads, a thread started
#: each time; interactive traffic waits no longer in a thread than on the loop.
SMALL_READS_BACK: Final = 4
_FLAGS: Final = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)
_WAIT_IN: Final = select.POLLIN | select.POLLPRI
_WAIT_OUT: Final = select.POLLOUT
_INT: Final = bytes(4)

Outcome = Literal["moving", "stopped", "eof", "small", "src error", "dst error"]


def _outq(fd: int) -> int:
    """Bytes in a TCP socket's send queue, not yet acknowledged (``SIOCOUTQ``)."""
    got = fcntl.ioctl(fd, termios.TIOCOUTQ, _INT)
    return int.from_bytes(got, sys.byteorder, signed=True)


def threads_wanted(choice: int | None) -> int:
    """How many relay threads a server may run: ``choice``, or by default
    :data:`MAX_RELAY_THREADS` unless ``RDV_RELAY_THREADS=0``."""
    if choice is None:
        raw = os.environ.get(THREADS_ENV, "1").strip().lower()
        choice = 0 if raw in ("0", "no", "off") else MAX_RELAY_THREADS
    return max(0, min(choice, MAX_RELAY_THREADS))


class Mover:
    """One direction ``src_fd`` -> ``pipe`` -> ``dst_fd``, moved by a thread (module doc).

    Created and started on the loop (:meth:`start`). ``count(n)`` is called in the
    thread for each read (it must only add to counters); ``on_end`` on the loop (through
    ``call_soon_threadsafe``) with this mover, when the thread ends on its own. What the
    thread leaves is read after :meth:`join`: :attr:`outcome`, :attr:`error` and
    :attr:`held` (bytes still in the pipe, for the destination).
    """

    __slots__ = (
        "_count",
        "_loop",
        "_on_end",
        "_thread",
        "_wake",
        "dst",
        "dst_fd",
        "error",
        "held",
        "least",
        "outcome",
        "pipe",
        "size",
        "small_below",
        "src_fd",
        "stopping",
    )

    def __init__(
        self,
        src_fd: int,
        dst_fd: int,
        pipe: tuple[int, int],
        wake: int,
        *,
        dst: socket.socket,
        size: int,
        least: int,
        small_below: int,
        count: Callable[[int], None],
        on_end: Callable[[Mover], None],
    ) -> None:
        self.src_fd = src_fd
        self.dst_fd = dst_fd
        self.pipe = pipe
        self._wake = wake
        #: Bytes a read takes at most (the pipe's size), and at least when dst is full.
        self.size = size
        self.least = min(least, size)
        self.dst = dst
        self.small_below = small_below
        self._count = count
        self._on_end = on_end
        self._loop = asyncio.get_running_loop()
        #: Set by the loop: end at the next step (the eventfd wakes a waiting poll).
        self.stopping = False
        self.outcome: Outcome = "moving"
        self.error: OSError | None = None
        #: Bytes in the pipe, not yet sent to dst.
        self.held = 0
        self._thread = threading.Thread(
            target=self._run, name=f"rdv-relay-{src_fd}->{dst_fd}", daemon=True
        )

    @classmethod
    def open(
        cls,
        src_fd: int,
        dst_fd: int,
        *,
        dst: socket.socket,
        least: int,
        small_below: int,
        count: Callable[[int], None],
        on_end: Callable[[Mover], None],
    ) -> Mover | None:
        """A mover with a pipe and an eventfd of its own (three descriptors, counted by
        :data:`MAX_RELAY_THREADS`), or None when the server is out of fds."""
        try:
            pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        except OSError:
            os.close(pipe[0])
            os.close(pipe[1])
            return None
        # As PipePool's: a user over fs.pipe-user-pages-soft gets EPERM, 64 KiB works.
        with contextlib.suppress(OSError):
            fcntl.fcntl(pipe[1], fcntl.F_SETPIPE_SZ, THREAD_PIPE_SIZE)
        size = fcntl.fcntl(pipe[1], fcntl.F_GETPIPE_SZ)
        return cls(
            src_fd,
            dst_fd,
            pipe,
            wake,
            dst=dst,
            size=size,
            least=least,
            small_below=small_below,
            count=count,
            on_end=on_end,
        )

    def start(self) -> bool:
        """Start the thread; False (its descriptors closed) if the system has none to give."""
        try:
            self._thread.start()
        except RuntimeError:  # "can't start new thread": the loop path goes on
            for fd in (self._wake, *self.pipe):
                os.close(fd)
            return False
        return True

    def join(self) -> None:
        """Stop the thread (if it still moves) and wait for it; on the loop, once."""
        self.stopping = True
        with contextlib.suppress(OSError):
            os.eventfd_write(self._wake, 1)
        self._thread.join()
        os.close(self._wake)
        self._wake = -1

    # ----- the thread

    def _run(self) -> None:
        src, dst, (pipe_r, pipe_w) = self.src_fd, self.dst_fd, self.pipe
        size, least, sndbuf = self.size, self.least, self.dst.getsockopt
        waiting_in, waiting_out = select.poll(), select.poll()
        waiting_in.register(src, _WAIT_IN)
        waiting_in.register(self._wake, select.POLLIN)
        waiting_out.register(dst, _WAIT_OUT)
        waiting_out.register(self._wake, select.POLLIN)
        splice, count, small = os.splice, self._count, self.small_below
        held = n = smalls = 0
        outcome: Outcome = "stopped"
        try:
            while not self.stopping:
                if not held:
                    waiting_in.poll()  # src readable (or ended, or failed), or woken
                    if self.stopping:
                        break
                    try:  # as much as dst has room for: little is held if it is full
                        room = sndbuf(SOL_SOCKET, SO_SNDBUF) - _outq(dst)
                    except OSError:  # dst failed: the splice out will say how
                        room = 0
                    try:
                        n = splice(src, pipe_w, min(size, max(least, room)), flags=_FLAGS)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        outcome, self.error = "src error", exc
                        break
                    if n == 0:
                        outcome = "eof"
                        break
                    held = n
                    self.held = n
                    count(n)
                try:
                    held -= splice(pipe_r, dst, held, flags=_FLAGS)
                except BlockingIOError:
                    waiting_out.poll()  # dst writable (or failed), or woken
                    continue
                except OSError as exc:
                    outcome, self.error = "dst error", exc
                    break
                finally:
                    self.held = held
                if held:
                    continue
                if n >= small:
                    smalls = 0
                    continue
                smalls += 1
                if smalls >= SMALL_READS_BACK:
                    outcome = "small"  # interactive again: back to the loop path
                    break
        finally:
            self.held = held
            self.outcome = outcome
            if not self.stopping:
                with contextlib.suppress(RuntimeError):  # the loop is closed: no one to tell
                    self._loop.call_soon_threadsafe(self._on_end, self)
