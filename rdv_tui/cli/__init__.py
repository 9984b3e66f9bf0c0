"""The ``rdv`` command: argument parsing and dispatch to one module per subcommand.

Each subcommand lives in ``rdv_tui/cli/commands/<name>.py`` with two functions,
``add_parser(subparsers)`` and ``run(args) -> int``. Beside them: pipe mode
(:mod:`~rdv_tui.cli.pipe`), the race options every conn-opening command shares
(:mod:`~rdv_tui.cli.race_options`), listen addresses (:mod:`~rdv_tui.cli.listen`) and
how sizes, durations and events are written (:mod:`~rdv_tui.cli.formatting`).

Every module of this package imports only the standard library at module level
(``rdv_core``, textual and rich inside the functions that need them), so that
building the parser stays fast and headless commands (serve, dial, accept, lab)
never import textual or rich.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import select
import sys
from collections.abc import Sequence
from types import ModuleType

#: What a shell reports for a process that SIGPIPE ended (128 + 13): ``yes | head -1``.
EXIT_STDOUT_GONE = 141

#: A write that found no room: stdout or a file on a full disk, over quota, past a size limit.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

#: Subcommands in the order ``rdv --help`` lists them.
COMMANDS: tuple[str, ...] = (
    "tui",
    "demo",
    "serve",
    "dial",
    "accept",
    "send",
    "receive",
    "lab",
    "doctor",
)


def _command_module(name: str) -> ModuleType:
    return importlib.import_module(f"rdv_tui.cli.commands.{name}")


def build_parser() -> argparse.ArgumentParser:
    """The full ``rdv`` argument parser."""
    from rdv_core import __version__

    parser = argparse.ArgumentParser(
        prog="rdv",
        description="Relay-assisted peer-to-peer TCP: see why two machines can or cannot "
        "talk directly, then chat and move files between them. "
        "With no command, opens the app on an embedded local server.",
    )
    parser.add_argument("--version", action="version", version=f"rdv {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        _command_module(name).add_parser(subparsers)
    return parser


def _fill_closed_std_fds() -> None:
    """Put ``/dev/null`` where a standard descriptor is closed (``2>&-``, ``>&-``).

    With fd 2 closed, Python's ``sys.stderr`` is None and ``print(..., file=None)``
    writes to stdout: ``rdv accept URL T > copy.iso 2>&-`` wrote "peer connected: ..."
    into the copy, and ``rdv send`` ended on a traceback nobody saw. And the first socket
    or file opened took the free number, so anything meant for fd 2 went into it. The
    messages of a closed stderr are dropped, as its user asked; ``sys.stdin`` and
    ``sys.stdout`` stay None, which the commands read as "closed" and say so.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stderr is None:
        # /dev/null now; for the whole run, never closed.
        sys.stderr = open(  # noqa: SIM115
            2, "w", encoding="utf-8", errors="backslashreplace", closefd=False
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rdv`` console script."""
    _fill_closed_std_fds()
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(args_list or ["tui"])
    if args.command is None:
        args = parser.parse_args(["tui", *args_list])
    module = _command_module(args.command)
    try:
        code: int = module.run(args)
        if sys.stdout is not None:  # None when started with stdout closed (>&-)
            sys.stdout.flush()  # here, so that a closed stdout is met inside the try
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # ``rdv doctor --every 60 | head -1``: the reader took what it wanted and left.
        # Python ignores SIGPIPE, so the next write raises; end quietly as a Unix tool
        # killed by SIGPIPE does. Only for stdout: a broken socket is a bug to show.
        if not _stdout_gone():
            raise
        _stdout_to_devnull()  # the flush at exit would raise again
        return EXIT_STDOUT_GONE
    except OSError as exc:
        if exc.errno not in _NO_ROOM:
            raise
        # `rdv lab list > /dev/full`: one line, not a traceback. The commands that write
        # files say which (`rdv receive`, `--events`); this is the fallback for the rest.
        _stdout_to_devnull()  # the flush at exit would fail again
        print(f"rdv {args.command}: a write failed: {exc.strerror}", file=sys.stderr)
        return 1
    return code


def _stdout_to_devnull() -> None:
    if sys.stdout is None:
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _stdout_gone() -> bool:
    """Has stdout's reader gone (a pipe or socket with nobody at the other end)?"""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError):
        return False


if __name__ == "__main__":
    sys.exit(main())
