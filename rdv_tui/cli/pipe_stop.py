"""SIGTERM and SIGHUP for ``rdv dial`` / ``rdv accept``: the end Ctrl-C gets.

Ctrl-C cancels the pump, which resets the conn (:func:`rdv_tui.cli.pipe.abort`), so
the peer never takes a cut stream for a whole one. The same for the signals here.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, Final

#: What ends pipe mode as Ctrl-C does (a reset conn, not a FIN): ``kill``, and the terminal
#: or ssh link closing. A getattr: Windows has no SIGHUP.
STOPPING_SIGNALS: Final = tuple(
    s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s
)


async def terminable(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main``; SIGTERM or SIGHUP cancels it as Ctrl-C does, and the exit code says so
    (128 + the signal's number).

    Left to its default, SIGTERM ended the process at once and the kernel closed the conn
    with a FIN: ``timeout 60 rdv dial ... < disk.iso`` then left the peer a truncated copy
    and exit 0. So did SIGHUP, the terminal closed or the ssh link dropped under ``ssh host
    rdv dial ... < disk.iso``. Cancelled, the pump resets the conn instead (:func:`abort`).
    Under ``nohup`` (SIGHUP ignored from the start) SIGHUP stays ignored.
    """
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    stopped_by: list[int] = []

    def on_signal(signum: int) -> None:
        stopped_by.append(signum)
        if task is not None:
            task.cancel()

    handled: list[int] = []
    for signum in STOPPING_SIGNALS:
        if signal.getsignal(signum) == signal.SIG_IGN:  # nohup: the user wants it ignored
            continue
        try:
            loop.add_signal_handler(signum, on_signal, signum)
        except (NotImplementedError, RuntimeError, ValueError):  # no signals here: as before
            continue
        handled.append(signum)
    try:
        return await main
    except asyncio.CancelledError:
        if stopped_by:
            return 128 + stopped_by[0]
        raise
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
