"""Secrets on the command line without putting them in argv (standard library only).

A pipe token or a session code given as an argument is visible to every user of the
machine (``ps``, ``/proc/PID/cmdline``) and often lands in shell history. Each command
that takes one also reads it from a file (``--token-file``, ``--code-file``) or from an
environment variable (``$RDV_TOKEN``, ``$RDV_CODE``: only the same user and root can read
a process's environment). Order: the argument, then the file, then the variable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import stat
from collections.abc import Callable

from rdv_tui.cli.race_options import UsageError

#: How a command says, on stderr, that it waits for a FIFO's writer.
Notice = Callable[[str], None]

ENV_TOKEN = "RDV_TOKEN"
ENV_CODE = "RDV_CODE"


def add_secret_file_argument(parser: argparse.ArgumentParser, option: str, what: str) -> None:
    """``--token-file FILE`` / ``--code-file FILE``: read ``what`` from FILE's first line."""
    parser.add_argument(
        option,
        metavar="FILE",
        help=f"read the {what} from the first line of FILE (keeps it out of ps and history)",
    )


def resolve_secret(
    value: str | None, path: str | None, env: str, what: str, notice: Notice | None = None
) -> str | None:
    """The secret from the argument, else the file, else ``$env``; None if none is given.

    A FIFO (``mkfifo code; pass show rdv > code``) with no writer yet is waited for, after
    ``notice`` says so: the open used to wait for the writer in silence. Call it before
    the event loop runs (the default signal dispositions end the wait), or use
    :func:`resolve_secret_async` inside it.

    Raises:
        UsageError: both an argument and a file, or a file that is unreadable or empty.
    """
    fd = _open_secret(value, path, what)
    if fd is None:
        return value if value is not None else _from_env(env)
    assert path is not None
    with _closing(fd):
        if _waits_for_writer(fd):
            _say_waiting(notice, path, what)
            _poll(fd, None)
        return _first_line(fd, path, what)


async def resolve_secret_async(
    value: str | None, path: str | None, env: str, what: str, notice: Notice | None = None
) -> str | None:
    """:func:`resolve_secret` inside the event loop: a FIFO's writer is awaited, not
    waited for in a system call, so the signals the loop handles (``rdv send``'s SIGTERM,
    SIGHUP and Ctrl-C, rdv_tui/transfer_stop.py) end the wait: before, the blocking open
    was retried after each of them (PEP 475) and only SIGKILL ended it."""
    fd = _open_secret(value, path, what)
    if fd is None:
        return value if value is not None else _from_env(env)
    assert path is not None
    with _closing(fd):
        if _waits_for_writer(fd):
            _say_waiting(notice, path, what)
            loop = asyncio.get_running_loop()
            readable = loop.create_future()

            def ready() -> None:
                if not readable.done():
                    readable.set_result(None)

            loop.add_reader(fd, ready)
            try:
                await readable
            finally:
                loop.remove_reader(fd)
        return _first_line(fd, path, what)


def _from_env(env: str) -> str | None:
    return os.environ.get(env, "").strip() or None


def _open_secret(value: str | None, path: str | None, what: str) -> int | None:
    """The secret file's descriptor, opened without waiting for a FIFO's writer; None
    when no file is given."""
    if value is not None and path is not None:
        raise UsageError(f"give the {what} as an argument or in a file, not both")
    if path is None:
        return None
    try:
        # O_NONBLOCK: a FIFO opens at once, writer or not (open(2), fifo(7)).
        return os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        # exc alone repeated the path as a repr: "[Errno 2] No such file or directory: 'f'".
        raise UsageError(f"cannot read the {what} from {path}: {exc.strerror or exc}") from None


class _closing:
    """Closes a descriptor at the end of a ``with`` (os.fdopen would own it too early)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *_: object) -> None:
        os.close(self.fd)


def _waits_for_writer(fd: int) -> bool:
    """True for a FIFO with nothing to read yet: Linux reports neither data nor hang-up on
    a FIFO that no writer has opened, so readiness means the writer came (and wrote or
    left)."""
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):
        return False
    return not _poll(fd, 0)


def _poll(fd: int, timeout_ms: int | None) -> bool:
    """True once ``fd`` has data or its writer left (poll, not select: any fd number)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(timeout_ms))


def _say_waiting(notice: Notice | None, path: str, what: str) -> None:
    if notice is not None:
        notice(f"waiting for a program to write the {what} into the FIFO {path} (Ctrl-C to stop)")


def _first_line(fd: int, path: str, what: str) -> str:
    """The first line of the file, at most 4 KiB, read to its newline or its end."""
    os.set_blocking(fd, True)
    data = b""
    try:
        while b"\n" not in data and len(data) < 4096:
            chunk = os.read(fd, 4096 - len(data))
            if not chunk:
                break
            data += chunk
        line = data.split(b"\n", 1)[0].decode("utf-8").strip()
    except UnicodeDecodeError:
        raise UsageError(f"cannot read the {what} from {path}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"cannot read the {what} from {path}: {exc.strerror or exc}") from None
    if not line:
        raise UsageError(f"{path}: the {what} file is empty")
    return line
