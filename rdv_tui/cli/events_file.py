"""The ``--events FILE`` of every command (``dial``/``accept``, ``send``/``receive``, ``serve``).

A plain ``open(path, "w")`` of a FIFO waits until some program opens it for reading: with
no reader started yet, the command sat there before its first line, silent, and ``rdv
send`` did not even end on Ctrl-C (the open is retried after each signal, PEP 475). A
FIFO is opened without waiting instead: no reader is an error that says what to do, and
once open the file is blocking again, so a reader that reads slowly loses no event.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import IO


def open_events(path: str, *, append: bool = False) -> IO[str]:
    """``path`` opened for writing event lines (truncated, or appended to).

    Raises:
        OSError: it cannot be opened; for a FIFO that no program reads, ENXIO with a
            ``strerror`` that says to start the reader first.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    flags |= getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO and _is_fifo(path):
            raise OSError(
                errno.ENXIO, "it is a FIFO that no program reads: start the reader first", path
            ) from None
        raise
    try:
        os.set_blocking(fd, True)
        return open(fd, "a" if append else "w", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def _is_fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False
