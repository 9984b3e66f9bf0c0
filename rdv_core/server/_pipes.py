"""The pipes of the zero-copy relay (:mod:`._splice`): one pool per server.

A spliced flow takes an empty pipe for a read and gives it back once the read has been
passed on whole, so only directions whose destination is full hold one. The pool keeps at
most two free pipes per open spliced conn and :data:`POOL_FREE` in all: a server with no
spliced pair holds no pipe. Out of descriptors, :meth:`PipePool.get` says so (None) and
the flow copies that read instead. A flow moved to a thread (:mod:`._splice_thread`) takes
one of :attr:`PipePool.threads`, the server's bound on relay threads, and makes a pipe and
an eventfd of its own (counted by that bound); back on the loop, its pipe comes here if it
is empty.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from typing import Final

from rdv_core.server._splice_thread import threads_wanted

__all__ = ["POOL_FREE", "PipePool"]

#: Free pipes the pool keeps at most (and at most two per spliced conn).
POOL_FREE: Final = 16
_OUT_OF_FDS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM})


class PipePool:
    """Empty pipes shared by every spliced pair of a server (see module doc)."""

    __slots__ = ("_free", "conns", "moved", "size", "threads")

    def __init__(self, size: int, threads: int | None = None) -> None:
        self.size = size
        #: Relay threads still to be had (:mod:`._splice_thread`); ``threads``: at most
        #: that many (0: none, every flow on the loop), None: ``RDV_RELAY_THREADS``.
        self.threads = threads_wanted(threads)
        #: Flows handed to a relay thread so far (each time one turned bulk).
        self.moved = 0
        self._free: list[tuple[int, int]] = []
        #: Spliced conns open: the pool keeps at most two free pipes per conn.
        self.conns = 0

    @property
    def free(self) -> int:
        return len(self._free)

    def get(self) -> tuple[int, int] | None:
        """An empty pipe ``(read_fd, write_fd)``, or None when the server is out of fds."""
        if self._free:
            return self._free.pop()
        try:
            r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno in _OUT_OF_FDS:
                return None
            raise
        # 64 KiB (16 slots) by default: a read would move 64 KiB at most. A user over
        # fs.pipe-user-pages-soft gets EPERM: the default size still works.
        with contextlib.suppress(OSError):
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, self.size)
        return r, w

    def put(self, pipe: tuple[int, int], empty: bool = True) -> None:
        """Give a pipe back (closed if it may hold bytes, or the pool has enough)."""
        if empty and len(self._free) < min(POOL_FREE, 2 * self.conns):
            self._free.append(pipe)
        else:
            os.close(pipe[0])
            os.close(pipe[1])

    def conn_closed(self) -> None:
        self.conns -= 1
        self._trim()

    def close(self) -> None:
        """Close every free pipe (server shutdown)."""
        self.conns = 0
        self._trim()

    def _trim(self) -> None:
        while len(self._free) > min(POOL_FREE, 2 * self.conns):
            r, w = self._free.pop()
            os.close(r)
            os.close(w)
